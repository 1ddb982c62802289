"""Start-up: from ``councilbot ask "hello"`` starting to its first answer, and ``kb build`` times.

Every run is a fresh ``councilbot`` process (the console script of this environment) with its storage in a
temporary folder. Times are wall-clock from starting the process to the first line of the answer on its
standard output. *Warm* runs find ``knowledge.db`` already built (and the index the product caches beside it,
which the first start after a build writes: that first start is measured separately); *cold* runs delete
knowledge.db first, so the process checks and builds the bundled content, and the index, before answering.
The runs hide numpy and pandas, as on a production install: sqlite-utils imports them whenever they are
installed (the ``bench`` extra installs numpy for scikit-learn), and a few warm runs with them visible show
what that costs. A child process (``python -m bench.phases CONFIG``) times the phases of a warm start
in-process. ``kb build`` is also timed with every SQLite connection set to ``synchronous = OFF`` (a
diagnostic: how much of it is waiting for fsync).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench import common, generate

WARM_RUNS = 7
COLD_RUNS = 3
BUILD_RUNS = 3
PHASE_RUNS = 3


def write_config(folder: Path, content_dir: Path | None = None) -> Path:
    """A configuration keeping knowledge.db and state.db in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    lines = ["[storage]", 'knowledge_db = "data/knowledge.db"', 'state_db = "data/state.db"']
    if content_dir is not None:
        lines.append(f"content_dir = {json.dumps(str(content_dir))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def first_answer(config: Path, env: dict, text: str = "hello") -> dict:
    """Seconds from starting ``councilbot ask TEXT`` to its first line of output, and to its exit."""
    command = [*common.councilbot_command(), "--config", str(config), "ask", text]
    caches_before = _caches(config)
    cpu_before = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    first = time.perf_counter() - started
    _out, err = proc.communicate(timeout=600)
    total = time.perf_counter() - started
    if proc.returncode != 0 or not line.strip():
        raise RuntimeError(f"councilbot ask failed ({proc.returncode}): {err[-2000:]}")
    cpu = _children_cpu() - cpu_before
    return {"first_answer": first, "exit": total, "cpu": cpu, "wrote_index_cache": _caches(config) != caches_before}


def _caches(config: Path) -> dict[str, int]:
    """The index caches beside knowledge.db and their modification times (to see whether a run rewrote one)."""
    return {p.name: p.stat().st_mtime_ns for p in config.parent.rglob("*.pickle")}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def kb_build(config: Path, env: dict) -> tuple[float, float]:
    """Wall-clock and CPU seconds ``councilbot kb build`` takes."""
    command = [*common.councilbot_command(), "--config", str(config), "kb", "build"]
    cpu_before = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, stdin=subprocess.DEVNULL)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"councilbot kb build failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-2000:]}")
    return took, _children_cpu() - cpu_before


def _summary(runs: list[dict]) -> dict:
    return {
        "runs": len(runs),
        "first_answer_median_s": round(common.median([r["first_answer"] for r in runs]), 3),
        "first_answer_min_s": round(min(r["first_answer"] for r in runs), 3),
        "first_answer_max_s": round(max(r["first_answer"] for r in runs), 3),
        "exit_median_s": round(common.median([r["exit"] for r in runs]), 3),
        "cpu_median_s": round(common.median([r["cpu"] for r in runs]), 3),
        "runs_that_wrote_the_index_cache": sum(r["wrote_index_cache"] for r in runs),
    }


def run(
    workspace: common.Workspace,
    warm_runs: int = WARM_RUNS,
    cold_runs: int = COLD_RUNS,
    build_runs: int = BUILD_RUNS,
    phase_runs: int = PHASE_RUNS,
    large_size: int | None = 100_000,
) -> dict:
    """Every start-up measurement."""
    folder = workspace.folder / "startup"
    config = write_config(folder)
    db = folder / "data" / "knowledge.db"
    load_before = common.load_average()
    production = common.child_env(hide_in=workspace.folder)
    installed = common.child_env()
    builds = [kb_build(config, production) for _ in range(build_runs)]
    sync_off = common.child_env(hide_in=workspace.folder, extra=(common.synchronous_folder(workspace.folder, "OFF"),))
    builds_off = [kb_build(config, sync_off) for _ in range(build_runs)]
    first = first_answer(config, production)  # the first start after a build also builds the index cache
    warm = [first_answer(config, production) for _ in range(warm_runs)]
    with_numpy = [first_answer(config, installed) for _ in range(max(1, warm_runs // 2))]
    cold = []
    for _ in range(cold_runs):
        db.unlink(missing_ok=True)
        cold.append(first_answer(config, production))
    phase_runs_data = []
    for _ in range(phase_runs):
        command = [sys.executable, "-m", "bench.phases", str(config)]
        phase_runs_data.append(common.run_json(command, timeout=300, env=production))
    names = [k for k in phase_runs_data[0] if k != "wall_seconds"] if phase_runs_data else []
    result = {
        "ran_at": common.now(),
        "load_average_before": load_before,
        "bundled_questions": generate.question_count(workspace.bundled()),
        "kb_build_bundled": {
            "runs": len(builds),
            "median_s": round(common.median([b[0] for b in builds]), 3),
            "cpu_median_s": round(common.median([b[1] for b in builds]), 3),
        },
        "kb_build_bundled_sync_off": {
            "runs": len(builds_off),
            "median_s": round(common.median([b[0] for b in builds_off]), 3),
            "cpu_median_s": round(common.median([b[1] for b in builds_off]), 3),
        },
        "first_after_build": _summary([first]),
        "warm": _summary(warm),
        "warm_with_numpy_visible": _summary(with_numpy),
        "cold": _summary(cold),
        "phases_median_s": {n: round(common.median([p[n] for p in phase_runs_data]), 4) for n in names},
    }
    if large_size:
        content = workspace.content(large_size)
        large_folder = folder / f"large-{large_size}"
        started = time.perf_counter()
        generate.write_folder(content, large_folder / "content")
        written = time.perf_counter() - started
        large_config = write_config(large_folder, large_folder / "content")
        took_off, cpu_off = kb_build(large_config, sync_off)
        took, cpu = kb_build(large_config, production)
        result["kb_build_large"] = {
            "questions": generate.question_count(content),
            "entries": len(content.entries),
            "seconds": round(took, 2),
            "cpu_seconds": round(cpu, 2),
            "sync_off_seconds": round(took_off, 2),
            "sync_off_cpu_seconds": round(cpu_off, 2),
            "content_files_written_in_s": round(written, 2),
        }
        result["first_after_build_large"] = _summary([first_answer(large_config, production)])
        result["warm_large"] = _summary([first_answer(large_config, production)])
    result["load_average_after"] = common.load_average()
    print(
        f"  start-up: warm {result['warm']['first_answer_median_s']} s, cold {result['cold']['first_answer_median_s']}"
        f" s, kb build {result['kb_build_bundled']['median_s']} s",
        file=sys.stderr,
        flush=True,
    )
    return result
