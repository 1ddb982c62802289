"""``python -m bench``: run the benchmarks and write ``bench/REPORT.md`` (and ``bench/results.json``).

Sections: ``matcher`` (latency, throughput, memory and profile per knowledge-base size), ``accuracy`` (ours
against rapidfuzz and TF-IDF on the development set), ``e2e`` (the web chat under 50 and 500 concurrent
residents) and ``startup`` (``councilbot ask`` to first answer, ``kb build``). ``--only`` re-runs some
sections (and ``--sizes`` some sizes) and merges them into the existing results, so the report stays whole.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import common, generate, report

HERE = Path(__file__).resolve().parent
SIZES = (100, 1_000, 10_000, 100_000)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated sections to run (default all: {','.join(report.SECTIONS)})")
    parser.add_argument("--sizes", help="matcher sizes, comma-separated (default 100,1000,10000,100000)")
    parser.add_argument("--levels", help="concurrent residents for e2e, comma-separated (default 50,500)")
    parser.add_argument("--e2e-seconds", type=float, default=45.0, help="time limit per e2e level (default 45)")
    parser.add_argument("--passes", type=int, default=3, help="timed passes per matcher size (default 3)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of timed matching per size (default 60)")
    parser.add_argument("--large", type=int, default=100_000, help="size for the large kb build (0: skip)")
    parser.add_argument("--seed", type=int, default=8, help="seed of the generated knowledge bases (default 8)")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and short runs, to check the benchmarks work (minutes)"
    )
    parser.add_argument("--out", type=Path, help="folder for REPORT.md and results.json (default bench/)")
    parser.add_argument("--fresh", action="store_true", help="do not merge with the results already in --out")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder (its path is printed)")
    return parser


def _ints(text: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(x.replace("_", "")) for x in text.split(",")) if text else default


def _run_section(section: str, workspace: common.Workspace, args: argparse.Namespace, sizes, levels) -> dict:
    if section == "matcher":
        from bench import matcher_bench

        return matcher_bench.run(
            workspace,
            list(sizes),
            passes=1 if args.quick else args.passes,
            budget_seconds=5.0 if args.quick else args.budget,
            per_kind=60 if args.quick else matcher_bench.QUERIES_PER_KIND,
            profile_messages=20 if args.quick else 100,
        )
    if section == "accuracy":
        from bench import accuracy

        return accuracy.run(workspace, limit=60 if args.quick else None, passes=1 if args.quick else 3)
    if section == "e2e":
        from bench import e2e

        return e2e.run(
            workspace,
            levels,
            limit_seconds=15.0 if args.quick else args.e2e_seconds,
            sizes=(2, 3) if args.quick else (5, 10),
        )
    from bench import startup

    quick = {"warm_runs": 2, "cold_runs": 1, "build_runs": 1, "phase_runs": 1} if args.quick else {}
    bundled = generate.question_count(workspace.bundled())
    large = (bundled + 200 if args.quick else args.large) or None
    return startup.run(workspace, large_size=large, **quick)


def merge(old: dict, new: dict) -> dict:
    """Results of this run over those of earlier runs; matcher sizes merge one by one."""
    merged = {**old, **new}
    if "sizes" in old.get("matcher", {}) and "sizes" in new.get("matcher", {}):
        sizes = {r["size"]: r for r in old["matcher"].get("sizes", [])}
        sizes.update({r["size"]: r for r in new["matcher"]["sizes"]})
        merged["matcher"] = {**new["matcher"], "sizes": [sizes[k] for k in sorted(sizes)]}
    return merged


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections, merge, write the report."""
    args = _parser().parse_args(argv)
    sections = [s.strip() for s in (args.only or ",".join(report.SECTIONS)).split(",") if s.strip()]
    unknown = [s for s in sections if s not in report.SECTIONS]
    if unknown:
        print(f"unknown section(s): {', '.join(unknown)} (known: {', '.join(report.SECTIONS)})", file=sys.stderr)
        return 2
    if not common.DEV_SET.is_file():
        print(f"the development set is missing: {common.DEV_SET}", file=sys.stderr)
        return 2
    sizes = _ints(args.sizes, (100, 1_000) if args.quick else SIZES)
    levels = _ints(args.levels, (5, 20) if args.quick else (50, 500))
    out = args.out or (HERE / "quick" if args.quick else HERE)
    out.mkdir(parents=True, exist_ok=True)
    started, began = common.now(), time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="councilbot-bench-"))
    workspace = common.Workspace(folder, seed=args.seed)
    results: dict = {"machine": common.machine()}
    print(f"councilbot benchmarks: {', '.join(sections)} (work folder {folder})", file=sys.stderr, flush=True)
    try:
        for section in sections:
            print(f"{section} ...", file=sys.stderr, flush=True)
            try:
                results[section] = _run_section(section, workspace, args, sizes, levels)
            except Exception as error:  # one section failing must not lose the others
                traceback.print_exc()
                results[section] = {"ran_at": common.now(), "error": f"{type(error).__name__}: {error}"[:2000]}
    finally:
        if args.keep:
            print(f"work folder kept: {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    results["last_run"] = {
        "started": started,
        "seconds": round(time.perf_counter() - began, 1),
        "sections": sections,
        "command": " ".join(
            [".venv/bin/python -m bench", *map(shlex.quote, argv if argv is not None else sys.argv[1:])]
        ),
    }
    path = out / "results.json"
    if path.is_file() and not args.fresh:
        results = merge(json.loads(path.read_text(encoding="utf-8")), results)
    path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (out / "REPORT.md").write_text(report.render(results), encoding="utf-8")
    print(f"wrote {out / 'REPORT.md'} and {path} in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    return 0
