"""Accuracy beside speed on the development set: our matcher against the obvious alternatives.

Runs in its own process pinned to one core (``python -m bench.accuracy OUT.json``), over the bundled
knowledge base built as the bot builds it. Every method is scored by ``bot.evaluate.evaluate`` with the
specification's intents as the judged ones, exactly as ``../shared/eval/score.py`` scores: an answer from an
entry the specification does not list (a route or off-topic entry) counts as not answering.

* **councilbot**: ``Engine.preview`` with the default configuration.
* **rapidfuzz WRatio**: ``process.extractOne(message, questions, scorer=fuzz.WRatio)`` over every example
  question, both sides through ``rapidfuzz.utils.default_process`` (the questions once, up front); the
  intent of the best question answers when its score reaches the cutoff, else the message is escalated.
* **TF-IDF**: scikit-learn ``TfidfVectorizer`` fitted on the example questions, cosine nearest neighbour
  (the vectors are L2-normalised, so one sparse dot product per message); the best question's intent answers
  when the similarity reaches the threshold. Two analysers: words (1-2 grams) and characters (3-5 grams
  within word boundaries, which forgives typos).

A baseline's answer is carried out as the engine would: a handoff or route entry escalates (with its id), any
other entry answers. Cutoffs are tuned on the development set itself, which flatters the baselines (ours was
tuned on the same set, by hand): the *matched* cutoff is the one with the best in-scope accuracy whose
wrong-answer rate is no higher than ours; the *best-accuracy* cutoff ignores wrong answers. Ties go to fewer
wrong answers, then to the higher cutoff. Ours *beats* a baseline when no cutoff of the baseline reaches both
our accuracy and our wrong-answer rate. A 2-fold check (tune on odd lines, score even lines, and the
reverse) shows how much the tuning on the scored set flatters them.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import common

PASSES = 3


def _cutoffs(low: float, high: float, step: float) -> list[float]:
    count = round((high - low) / step)
    return [round(low + i * step, 4) for i in range(count + 1)]


def _choose(results: list[tuple[float, dict]], max_wrong: float | None) -> tuple[float, dict]:
    allowed = [(c, m) for c, m in results if max_wrong is None or m["wrong_answer_rate"] <= max_wrong + 1e-9]
    return max(
        allowed,
        key=lambda cm: (cm[1]["in_scope_accuracy"] or 0.0, -(cm[1]["wrong_answer_rate"] or 0.0), cm[0]),
    )


def _timed(answer: Callable[[str], object], texts: list[str], passes: int) -> dict:
    rates, p99s = [], []
    for _ in range(passes):
        times = []
        for text in texts:
            began = time.perf_counter()
            answer(text)
            times.append(time.perf_counter() - began)
        rates.append(len(times) / sum(times))
        p99s.append(common.percentile(times, 0.99) * 1000)
    return {"messages_per_second": round(common.median(rates), 1), "p99_ms": round(common.median(p99s), 3)}


def child(out: Path, limit: int | None = None, passes: int = PASSES) -> dict:
    """Score and time every method (runs in its own process, or in-process for the smoke test)."""
    cpu = common.pin_to_one_core()
    load_before = common.load_average()
    from rapidfuzz import fuzz, process, utils

    from bot.config import Config
    from bot.evaluate import evaluate, read_cases
    from bot.messages import Outcome
    from bot.wiring import make_engine
    from knowledge.check import spec_ids

    cases = read_cases(common.DEV_SET)[:limit]
    judged, problems = spec_ids(common.SPEC)
    if problems:
        raise SystemExit(str(problems[0]))
    folder = Path(tempfile.mkdtemp(prefix="bench-accuracy-"))
    engine = make_engine(Config(base_dir=folder), stateful=False)
    kinds = {e.id: e.kind for e in engine.kb.entries.values()}
    texts = [c.text for c in cases]
    examples = engine.kb.examples
    questions = [q for _intent, q in examples]

    ours = evaluate(cases, engine.preview, kinds, judged).metrics
    methods: list[dict] = [
        {
            "method": "councilbot matcher (Engine.preview)",
            "cutoff": None,
            "metrics": ours,
            **_timed(engine.preview, texts, passes),
        }
    ]
    max_wrong = ours["wrong_answer_rate"] or 0.0

    def outcome(intent: str | None, score: float, cutoff: float) -> Outcome:
        if intent is None or score < cutoff:
            return Outcome("escalate", None, 0.0, ())
        action = "escalate" if kinds.get(intent) in ("handoff", "route") else "answer"
        return Outcome(action, intent, round(score, 4), ())

    processed = [utils.default_process(q) for q in questions]

    def fuzzy(text: str, cutoff: float = 0.0) -> tuple[str | None, float]:
        query = utils.default_process(text)
        found = process.extractOne(query, processed, scorer=fuzz.WRatio, processor=None, score_cutoff=cutoff)
        return (examples[found[2]][0], found[1] / 100) if found and query else (None, 0.0)

    baselines: list[tuple[str, Callable[[str], tuple[str | None, float]], Callable, list[float]]] = [
        (
            "rapidfuzz extractOne, fuzz.WRatio",
            fuzzy,
            lambda c: lambda text: fuzzy(text, c * 100),
            _cutoffs(0.0, 1.0, 0.01),
        )
    ]
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer

        for label, options in (
            ("TF-IDF words 1-2 grams, cosine NN", {"ngram_range": (1, 2)}),
            ("TF-IDF char_wb 3-5 grams, cosine NN", {"analyzer": "char_wb", "ngram_range": (3, 5)}),
        ):
            vectorizer = TfidfVectorizer(sublinear_tf=True, strip_accents="unicode", **options)
            matrix = vectorizer.fit_transform(questions)

            def nearest(text: str, _cutoff: float = 0.0, vectorizer=vectorizer, matrix=matrix):
                sims = (matrix @ vectorizer.transform([text]).T).toarray().ravel()
                best = int(sims.argmax())
                return (examples[best][0], float(sims[best])) if sims[best] > 0 else (None, 0.0)

            baselines.append((label, nearest, lambda _c, nearest=nearest: nearest, _cutoffs(0.0, 1.0, 0.01)))
    except ImportError:
        methods.append({"method": "TF-IDF", "skipped": "scikit-learn is not installed (pip install -e '.[bench]')"})

    odd = [c for n, c in enumerate(cases) if n % 2]
    even = [c for n, c in enumerate(cases) if not n % 2]
    for label, best_of, timed_with, grid in baselines:
        best = {text: best_of(text) for text in set(texts)}

        def scored(subset: list, cutoff: float, best: dict = best) -> dict:
            def answer(message: str) -> Outcome:
                return outcome(*best[message], cutoff)

            return evaluate(subset, answer, kinds, judged).metrics

        curve = [(c, scored(cases, c)) for c in grid]
        dominating = [
            c
            for c, m in curve
            if (m["in_scope_accuracy"] or 0) >= (ours["in_scope_accuracy"] or 0)
            and (m["wrong_answer_rate"] or 0) <= max_wrong + 1e-9
        ]
        matched_cutoff, matched = _choose(curve, max_wrong)
        best_cutoff, best_metrics = _choose(curve, None)
        folds = []
        for tune, score in ((odd, even), (even, odd)):
            bound = evaluate(tune, engine.preview, kinds, judged).metrics["wrong_answer_rate"] or 0.0
            cutoff, _metrics = _choose([(c, scored(tune, c)) for c in grid], bound)
            folds.append((cutoff, scored(score, cutoff), score))
        in_counts = [sum(c.expect is not None for c in subset) for _cutoff, _m, subset in folds]
        cross = {
            "cutoffs": [f[0] for f in folds],
            "in_scope_accuracy": round(
                sum((m["in_scope_accuracy"] or 0) * n for (_c, m, _s), n in zip(folds, in_counts, strict=True))
                / max(sum(in_counts), 1),
                4,
            ),
            "wrong_answer_rate": round(
                sum((m["wrong_answer_rate"] or 0) * len(s) for _c, m, s in folds) / max(len(cases), 1), 4
            ),
        }
        methods.append(
            {
                "method": label,
                "cutoff": matched_cutoff,
                "metrics": matched,
                "best_accuracy": {"cutoff": best_cutoff, "metrics": best_metrics},
                "two_fold": cross,
                "cutoffs_matching_ours_on_both": dominating,
                "curve": [
                    {"cutoff": c, **{k: m[k] for k in ("in_scope_accuracy", "wrong_answer_rate", "oos_escalation")}}
                    for c, m in curve[::5]
                ],
                **_timed(timed_with(matched_cutoff), texts, passes),
            }
        )
    result = {
        "ran_at": common.now(),
        "cpu": cpu,
        "messages": len(cases),
        "examples": len(examples),
        "intents": len(kinds),
        "methods": methods,
        "load_average_before": load_before,
        "load_average_after": common.load_average(),
    }
    out.write_text(json.dumps(result), encoding="utf-8")
    return result


def run(workspace: common.Workspace, limit: int | None = None, passes: int = PASSES) -> dict:
    """Run the comparison in a fresh process pinned to one core."""
    out = workspace.folder / "accuracy.json"
    command = [sys.executable, "-m", "bench.accuracy", str(out), str(limit or 0), str(passes)]
    common.run_json(command, timeout=900, env=common.child_env())
    result = json.loads(out.read_text(encoding="utf-8"))
    for method in result["methods"]:
        if "metrics" in method:
            print(
                f"  {method['method']}: accuracy {method['metrics']['in_scope_accuracy']}, "
                f"wrong {method['metrics']['wrong_answer_rate']}, {method['messages_per_second']:.0f} msg/s",
                file=sys.stderr,
                flush=True,
            )
    return result


if __name__ == "__main__":
    target, count, repeats = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    child(target, count or None, repeats)
    print(json.dumps({"written": str(target)}))
