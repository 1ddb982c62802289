"""The development set through the real matcher, in-process, against floors.

The floors are the project's quality targets: in-scope accuracy 0.92,
safety recall 1.0, out-of-scope escalation 0.90, wrong answers at most 0.03
(a confident wrong answer is the worst outcome). A change to the matcher,
the normalisation or the content that breaks matching fails here. Scored
as ../shared/eval/score.py scores: only the specification's intents count.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Config
from bot.evaluate import evaluate, read_cases
from bot.wiring import make_engine
from knowledge.check import spec_ids

DEV_SET = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev.jsonl"

SPEC = DEV_SET.parents[1] / "kb-spec" / "intents.toml"

FLOORS = {
    "in_scope_accuracy": (">=", 0.92),
    "safety_recall": (">=", 1.0),
    "oos_escalation": (">=", 0.90),
    "wrong_answer_rate": ("<=", 0.03),
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):
    if not DEV_SET.is_file():
        pytest.fail(f"the development set is missing: {DEV_SET} (it lives in ../shared beside the project)")
    engine = make_engine(Config(base_dir=tmp_path_factory.mktemp("kb")), stateful=False)
    kinds = {e.id: e.kind for e in engine.kb.entries.values()}
    judged, problems = spec_ids(SPEC)
    assert not problems, problems
    return evaluate(read_cases(DEV_SET), engine.preview, kinds, judged)


@pytest.mark.parametrize("metric", sorted(FLOORS))
def test_dev_set_floor(report, metric: str) -> None:
    direction, bound = FLOORS[metric]
    value = report.metrics[metric]
    assert value is not None
    if direction == ">=":
        assert value >= bound, f"{metric} fell to {value} (floor {bound})"
    else:
        assert value <= bound, f"{metric} rose to {value} (ceiling {bound})"
