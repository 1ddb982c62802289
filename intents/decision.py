"""What the matcher concludes: answer, clarify or escalate, and how sure."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Thresholds:
    """Where scores (0 to 1) turn into decisions. Defaults suit the bundled KB.

    An answer also needs evidence: a matched word that appears in at least
    ``min_evidence`` of the intent's examples, or an overlap of at least
    ``close_example`` with one example, so one incidental word ("cat" in
    "it's all cat videos") never carries an answer alone.
    """

    answer: float = 0.3
    clarify: float = 0.2
    margin: float = 0.04
    clarify_band: float = 0.12
    max_options: int = 3
    safety: float = 0.45
    min_evidence: int = 2
    close_example: float = 0.5


@dataclass(frozen=True)
class Candidate:
    """One intent's score for a message, with the example that scored best."""

    intent: str
    score: float
    example: str = ""
    closeness: float = 1.0
    """Overlap (0-1) with the intent's closest example question."""
    evidence: int = 99
    """How many of the intent's examples share its best-supported matched word."""

    def well_founded(self, limits: Thresholds) -> bool:
        """Whether the match rests on more than one incidental word."""
        return self.evidence >= limits.min_evidence or self.closeness >= limits.close_example


@dataclass(frozen=True)
class Decision:
    """The matcher's verdict on one message.

    ``intent`` is set for ``answer`` only; ``options`` for ``clarify`` only;
    ``candidates`` always holds the ranked evidence, so an escalation can
    still be routed by its likeliest topic.
    """

    action: str
    intent: str | None
    confidence: float
    options: tuple[str, ...] = ()
    candidates: tuple[Candidate, ...] = field(default=(), repr=False)
    safety: bool = False

    @property
    def likeliest(self) -> str | None:
        """The best-scoring intent, even when it was not good enough to answer."""
        return self.candidates[0].intent if self.candidates else self.intent


def decide(ranked: list[Candidate], limits: Thresholds) -> Decision:
    """Turn candidates ranked best first into a decision."""
    if not ranked:
        return Decision("escalate", None, 0.0)
    best = ranked[0]
    runner_up = ranked[1].score if len(ranked) > 1 else 0.0
    confidence = round(min(max(best.score, 0.0), 1.0), 4)
    evidence = tuple(ranked[:5])
    if best.score >= limits.answer and best.score - runner_up >= limits.margin and best.well_founded(limits):
        return Decision("answer", best.intent, confidence, candidates=evidence)
    floor = max(limits.clarify, best.score - limits.clarify_band)
    close = [c.intent for c in ranked[: limits.max_options] if c.score >= floor and c.well_founded(limits)]
    if len(close) >= 2:
        return Decision("clarify", None, confidence, tuple(close), evidence)
    return Decision("escalate", None, confidence, candidates=evidence)
