"""Score the bot on a set of messages with known intents (``kb test``).

The same metrics as the shared evaluation script: in-scope accuracy,
safety recall, out-of-scope escalation, the wrong-answer rate (a confident
wrong answer, the worst outcome) and the clarification rate, plus which
intents are mistaken for which.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot.messages import Outcome


class CasesError(Exception):
    """A cases file that cannot be read; the message names file and line."""


@dataclass(frozen=True)
class Case:
    """One message and the intent it should reach (None: escalate)."""

    text: str
    expect: str | None


@dataclass
class Report:
    """Metrics over a set of cases, with the failures behind them."""

    metrics: dict[str, float | int | None]
    confusion: Counter = field(default_factory=Counter)
    failures: list[tuple[Case, Outcome]] = field(default_factory=list)


def read_cases(path: Path) -> list[Case]:
    """Read a JSON-lines file of ``{"text": ..., "expect": id-or-null}``."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CasesError(f"{path}: cannot read: {error}") from error
    cases = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise CasesError(f"{path}:{number}: not valid JSON: {error.msg}") from error
        if not isinstance(data, dict) or not isinstance(data.get("text"), str) or "expect" not in data:
            raise CasesError(f'{path}:{number}: each line needs "text" (text) and "expect" (an id or null)')
        if data["expect"] is not None and not isinstance(data["expect"], str):
            raise CasesError(f'{path}:{number}: "expect" must be an intent id or null')
        cases.append(Case(data["text"], data["expect"]))
    return cases


def evaluate(
    cases: Iterable[Case],
    answer: Callable[[str], Outcome],
    kinds: dict[str, str],
    judged: Iterable[str] | None = None,
) -> Report:
    """Run every case through ``answer`` and score it.

    ``kinds`` maps intent ids to kinds. ``judged`` are the ids whose answers
    count as right or wrong (a specification's); an answer from any other
    entry (an off-topic reply, say) counts as not answering. By default
    every entry is judged.
    """
    judged_ids = set(judged) if judged is not None else set(kinds)
    counts: Counter = Counter()
    confusion: Counter = Counter()
    failures = []
    for case in cases:
        outcome = answer(case.text)
        got = outcome.intent
        known = got in judged_ids
        counts["all"] += 1
        counts["wrong"] += outcome.action == "answer" and known and got != case.expect
        counts["clarify"] += outcome.action == "clarify"
        if case.expect is None:
            ok = outcome.action == "escalate" or not known
            counts["oos"] += 1
            counts["oos_ok"] += ok
        else:
            ok = got == case.expect and outcome.action != "clarify"
            counts["in"] += 1
            counts["in_ok"] += ok
            if kinds.get(case.expect) == "safety":
                counts["safety"] += 1
                counts["safety_ok"] += ok
        if not ok:
            failures.append((case, outcome))
            label = got if outcome.action == "answer" else outcome.action
            confusion[(case.expect or "(escalate)", label or "(none)")] += 1

    def ratio(a: str, b: str) -> float | None:
        return round(counts[a] / counts[b], 4) if counts[b] else None

    metrics = {
        "messages": counts["all"],
        "in_scope_accuracy": ratio("in_ok", "in"),
        "safety_recall": ratio("safety_ok", "safety"),
        "oos_escalation": ratio("oos_ok", "oos"),
        "wrong_answer_rate": ratio("wrong", "all"),
        "clarify_rate": ratio("clarify", "all"),
    }
    return Report(metrics, confusion, failures)
