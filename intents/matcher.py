"""Rank a knowledge base's intents for a message and decide what to do.

Scoring has three parts, all on normalised, stemmed terms:

1. Typo repair: a word the knowledge base has never seen is replaced by its
   closest known word when rapidfuzz's plain ``fuzz.ratio`` says they are
   near-identical. ``ratio`` is chosen on purpose: ``WRatio`` and
   ``token_set_ratio`` give a short string a high score against any longer
   text that contains it, which turns "bin" into a confident match for
   every bin question.
2. Closeness to the best example: an IDF-weighted Dice overlap between the
   message and each example question that shares a term with it.
3. Coverage: how much of the message's weight the intent's whole
   vocabulary explains. Words the knowledge base has never seen weigh the
   most, so "what time does Tesco close" is not taken for opening hours.

The matcher is pure: it reads what it was built from and nothing else.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping

from rapidfuzz import fuzz, process

from intents import safety
from intents.analyse import Analyser, features, stem, terms_of
from intents.decision import Candidate, Decision, Thresholds, decide
from intents.index import Index
from intents.normalise import Synonyms, fold
from intents.stopwords import STOPWORDS

CLOSENESS_WEIGHT = 0.3
"""Share of the score from the best single example; the rest is coverage."""

TOP_SAFETY = 0.2
"""A safety intent that ranks first needs only this score to count as safety."""

QUIET_SAFETY_LEAD = 0.1
"""Without any word of distress, how far a safety entry must lead the best other answer."""

TYPO_CUTOFF = 84.0
"""rapidfuzz ratio (0-100) above which an unknown word is taken as a typo."""


class Matcher:
    """Matches messages against example questions; build once, match many."""

    def __init__(
        self,
        examples: Iterable[tuple[str, str]],
        synonyms: Mapping[str, str],
        safety_intents: Iterable[str] = safety.SAFETY_INTENTS,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.analyser = Analyser(Synonyms(synonyms))
        self.index = Index.build(self.analyser, examples)
        self.safety_intents = frozenset(safety_intents)
        self.thresholds = thresholds or Thresholds()
        self._known_words = frozenset(self.index.words)

    def repair(self, words: list[str]) -> list[str]:
        """Replace unknown words by their near-identical known neighbours."""
        repaired = []
        for word in words:
            if (
                len(word) > 3
                and not word.isdigit()
                and word not in STOPWORDS
                and word not in self._known_words
                and stem(word) not in self.index.idf
            ):
                found = process.extractOne(
                    word, self._near_length(len(word)), scorer=fuzz.ratio, score_cutoff=TYPO_CUTOFF
                )
                if found is not None:
                    word = found[0]
            repaired.append(word)
        return repaired

    def _near_length(self, size: int) -> list[str]:
        """Known words whose length could reach the typo cutoff against a word of ``size`` letters.

        ``fuzz.ratio`` is at most 2*min/(a+b), so lengths further apart than this
        cannot score ``TYPO_CUTOFF``; skipping them keeps repair fast on large
        vocabularies.
        """
        spread = int(size * (200 - TYPO_CUTOFF) / TYPO_CUTOFF) + 1
        by_length = self.index.words_by_length
        return [w for n in range(max(1, size - spread), size + spread + 1) for w in by_length.get(n, ())]

    def rank(self, text: str, limit: int = 20) -> list[Candidate]:
        """The ``limit`` best intents sharing a term with ``text``, best first.

        Every candidate intent is scored; only the best few become Candidate objects.
        """
        words = self.repair(self.analyser.words(text))
        terms = features(terms_of(words))
        if not terms:
            return []
        exact = self.index.exact.get(" ".join(words))
        weights = {t: self.index.weight(t) for t in terms if " " not in t or t in self.index.idf}
        total = sum(weights.values())
        shared: dict[int, float] = defaultdict(float)
        for term, weight in weights.items():
            for position in self.index.postings.get(term, ()):
                shared[position] += weight
        best: dict[str, tuple[float, int]] = {}
        examples = self.index.examples
        for position, overlap in shared.items():
            example = examples[position]
            dice = 2 * overlap / (total + example.weight)
            if dice > best.get(example.intent, (0.0, -1))[0]:
                best[example.intent] = (dice, position)
        covered: dict[str, float] = defaultdict(float)
        evidence: dict[str, int] = defaultdict(int)
        for term, weight in weights.items():
            for intent, support, count in self.index.term_intents.get(term, ()):
                covered[intent] += weight * support
                if count > evidence[intent]:
                    evidence[intent] = count
        scored = (
            (
                1.0 if intent == exact else CLOSENESS_WEIGHT * dice + (1 - CLOSENESS_WEIGHT) * covered[intent] / total,
                intent,
                dice,
                position,
            )
            for intent, (dice, position) in best.items()
        )
        top = heapq.nsmallest(limit, scored, key=lambda s: (-round(s[0], 4), s[1]))
        ranked = [
            Candidate(
                intent,
                round(score, 4),
                examples[position].text,
                1.0 if intent == exact else round(dice, 4),
                evidence[intent],
            )
            for score, intent, dice, position in top
        ]
        return ranked

    def _safety_candidate(self, ranked: list[Candidate]) -> str | None:
        """A safety intent close to the top of the ranking, taken as safety (recall first).

        A safety entry need not win outright: among the best few, scoring at
        least ``thresholds.safety`` and within the clarification band of the
        best, it is enough for the emergency contacts to go out.
        """
        if not ranked:
            return None
        limits = self.thresholds
        if ranked[0].intent in self.safety_intents and ranked[0].score >= TOP_SAFETY and ranked[0].well_founded(limits):
            return ranked[0].intent
        floor = max(limits.safety, ranked[0].score - limits.clarify_band)
        for candidate in ranked[: limits.max_options]:
            if candidate.intent in self.safety_intents and candidate.score >= floor:
                return candidate.intent
        return None

    def match(self, text: str) -> Decision:
        """Decide what to do with one message: safety first, then the ranking."""
        ranked = self.rank(text)
        folded = fold(text)
        if safety.distress(folded):
            alarm = safety.detect(folded) or self._safety_candidate(ranked)
        else:
            # No word of harm or distress: a safety entry wins only clearly ahead of the best
            # service answer, so topic words alone ("my mum needs a carer") do not raise an alarm.
            alarm = safety.detect(folded)
            service = next((c for c in ranked if c.intent not in self.safety_intents), None)
            if ranked and ranked[0].intent in self.safety_intents:
                if service is not None and ranked[0].score - service.score < QUIET_SAFETY_LEAD:
                    ranked = [c for c in ranked if c.intent not in self.safety_intents]
                elif alarm is None and ranked[0].well_founded(self.thresholds):
                    alarm = ranked[0].intent
        if alarm == "safety.threat-or-abuse" and safety.councillor_asking(folded):
            alarm = None
        if alarm is not None:
            return Decision("answer", alarm, 1.0, candidates=tuple(ranked[:5]), safety=True)
        return decide(ranked, self.thresholds)
