"""The benchmarks still run: each one on a tiny size, checking the shape of its results, never its timings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is not an installed package; `python -m pytest` has it already
    sys.path.insert(0, str(ROOT))

from bench import common, e2e, generate, matcher_bench, report, startup  # noqa: E402
from bench import run as bench_run  # noqa: E402
from intents.normalise import fold  # noqa: E402
from knowledge import content as content_module  # noqa: E402
from knowledge.check import check  # noqa: E402
from knowledge.content import Content, Entry  # noqa: E402

pytestmark = pytest.mark.skipif(not common.DEV_SET.is_file(), reason="needs ../shared/eval/dev.jsonl")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> common.Workspace:
    return common.Workspace(tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def results(workspace: common.Workspace) -> dict:
    """Every section once, tiny, shared by the tests below."""
    from bench import accuracy

    bundled = generate.question_count(workspace.bundled())
    return {
        "machine": common.machine(),
        "matcher": matcher_bench.run(workspace, [60], passes=1, budget_seconds=2.0, per_kind=8, profile_messages=4),
        "accuracy": accuracy.run(workspace, limit=24, passes=1),
        "e2e": e2e.run(workspace, levels=(3,), limit_seconds=20.0, sizes=(2, 2), profile_residents=2),
        "startup": startup.run(
            workspace, warm_runs=1, cold_runs=1, build_runs=1, phase_runs=1, large_size=bundled + 30
        ),
    }


def _tiny() -> Content:
    entries = [
        Entry(
            id=f"faq.topic-{n}",
            kind="faq",
            topic="general",
            audience="resident",
            questions=[f"how do I apply for a {word} permit", f"{word} permit renewal", f"cost of a {word} licence"],
            answer="See the council website.",
            source="tiny.toml",
        )
        for n, word in enumerate(("parking", "fishing", "busking"))
    ]
    return Content(entries=entries, synonyms={"licence": "permit", "carpark": "parking"})


def test_generate_exact_sizes_unique_and_checkable(tmp_path: Path) -> None:
    base = _tiny()
    small = generate.grow(5, base)
    assert generate.question_count(small) == 5
    grown = generate.grow(80, base, seed=3)
    assert generate.question_count(grown) == 80
    assert any(e.id.startswith("synthetic.") for e in grown.entries), "beyond REAL_GROWTH come synthetic intents"
    folded = [fold(q) for e in grown.entries for q in e.questions]
    assert len(folded) == len(set(folded)), "every question is unique after folding"
    assert generate.grow(80, base, seed=3).entries == grown.entries, "generation is deterministic"
    folder = generate.write_folder(grown, tmp_path / "content")
    reloaded = content_module.load(folder)
    assert not check(reloaded, {}), "a generated knowledge base passes kb check"
    assert generate.question_count(reloaded) == 80
    held = generate.heldout(grown, 10)
    assert len(held) == 10
    assert not {fold(text) for _intent, text in held} & set(folded)


def test_matcher_results(results: dict) -> None:
    section = results["matcher"]
    (size,) = section["sizes"]
    assert size["size"] == size["questions"] == 60
    for key in ("p50_ms", "p99_ms", "cpu_p99_ms", "messages_per_second", "make_seconds", "stages_total_ms"):
        assert size[key] >= 0
    assert size["rss_mb"]["peak"] > 0
    assert size["passes"] and size["by_kind"].keys() == {"dev", "heldout"}
    assert size["profile"] and {"function", "calls", "own_seconds"} <= size["profile"][0].keys()
    stages = size["stages"]
    assert not stages["error"], stages["error"]
    assert stages["matches_real_matcher"], "update _staged_match in bench/matcher_bench.py to follow intents/matcher.py"
    assert size["build_stages"]["matches_real_index"], (
        "update _staged_build in bench/matcher_bench.py (intents/index.py)"
    )
    assert "postings traversal (examples)" in stages["ms_per_message"]
    assert section["generation"]["bundled_questions"] > 0


def test_accuracy_results(results: dict) -> None:
    section = results["accuracy"]
    assert section["messages"] == 24
    ours, *others = section["methods"]
    assert ours["method"].startswith("councilbot")
    assert 0 <= ours["metrics"]["in_scope_accuracy"] <= 1
    assert any(m["method"].startswith("rapidfuzz") for m in others)
    for method in others:
        if "skipped" in method:
            continue
        assert method["metrics"]["wrong_answer_rate"] <= ours["metrics"]["wrong_answer_rate"] + 1e-9
        assert method["messages_per_second"] > 0
        assert len(method["two_fold"]["cutoffs"]) == 2
        assert isinstance(method["cutoffs_matching_ours_on_both"], list)


def test_e2e_results(results: dict) -> None:
    (level,) = results["e2e"]["levels"]
    assert level["residents"] == 3
    assert level["answered"] == level["planned_messages"] == 6
    assert not level["errors"]
    assert level["responses_without_reply"] == 0
    assert level["later_with_exactly_one_reply"] == level["later_responses"]
    assert level["undelivered_after_stop"] == 0
    assert level["server_exit_code"] == 0
    assert level["state_db"]["logged_in"] == level["answered"] + level["warm_up_messages"]
    assert set(results["e2e"]["commit_ms"]) == {"FULL", "NORMAL"}
    profile = results["e2e"]["profiled"]["profile"]
    assert not profile.get("error"), profile.get("error")
    assert profile["categories"] and profile["top"]


def test_startup_results(results: dict) -> None:
    section = results["startup"]
    for case in (
        "warm",
        "cold",
        "warm_with_numpy_visible",
        "first_after_build",
        "first_after_build_large",
        "warm_large",
    ):
        assert section[case]["first_answer_median_s"] > 0
    assert section["kb_build_bundled"]["median_s"] > 0
    assert section["kb_build_bundled_sync_off"]["median_s"] > 0
    assert section["kb_build_large"]["sync_off_seconds"] > 0
    assert section["kb_build_large"]["questions"] == section["bundled_questions"] + 30
    assert any(name.startswith("make the matcher") for name in section["phases_median_s"])


def test_report_renders_every_section(results: dict) -> None:
    text = report.render({**results, "last_run": {"started": "now", "seconds": 1, "sections": list(report.SECTIONS)}})
    for heading in (
        "## Summary against the targets",
        "## Machine",
        "## 1. Matcher",
        "## 2. Accuracy",
        "## 3. End to end",
        "## 4. Start-up",
    ):
        assert heading in text
    assert "Accuracy: ours beats rapidfuzz and TF-IDF" in text


def test_merge_keeps_other_sections_and_sizes() -> None:
    old = {"accuracy": {"a": 1}, "matcher": {"sizes": [{"size": 100, "x": 1}, {"size": 1000, "x": 1}]}}
    new = {"matcher": {"sizes": [{"size": 1000, "x": 2}]}}
    merged = bench_run.merge(old, new)
    assert merged["accuracy"] == {"a": 1}
    assert [(s["size"], s["x"]) for s in merged["matcher"]["sizes"]] == [(100, 1), (1000, 2)]


def test_unknown_section_is_refused() -> None:
    assert bench_run.main(["--only", "nonsense"]) == 2


def test_report_lists_a_failed_section_and_renders_the_rest(results: dict) -> None:
    text = report.render({"accuracy": results["accuracy"], "matcher": {"ran_at": "now", "error": "RuntimeError: x"}})
    assert "## Sections that failed" in text and "RuntimeError: x" in text
    assert "## 2. Accuracy" in text and "## 1. Matcher" not in text
