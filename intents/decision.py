"""What the matcher concludes: answer, clarify or escalate, and how sure."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Thresholds:
    """Where scores (0 to 1) turn into decisions. Defaults suit the bundled KB."""

    answer: float = 0.3
    clarify: float = 0.2
    margin: float = 0.04
    clarify_band: float = 0.12
    max_options: int = 3
    safety: float = 0.45


@dataclass(frozen=True)
class Candidate:
    """One intent's score for a message, with the example that scored best."""

    intent: str
    score: float
    example: str = ""


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
    if best.score >= limits.answer and best.score - runner_up >= limits.margin:
        return Decision("answer", best.intent, confidence, candidates=evidence)
    floor = max(limits.clarify, best.score - limits.clarify_band)
    close = [c.intent for c in ranked[: limits.max_options] if c.score >= floor]
    if len(close) >= 2:
        return Decision("clarify", None, confidence, tuple(close), evidence)
    return Decision("escalate", None, confidence, candidates=evidence)
