"""An inverted index over the knowledge base's example questions.

Each example becomes a set of terms; each term carries an IDF weight
computed over intents (a word that appears under one intent tells more than
one that appears under thirty). Only examples that share a term with the
query are ever scored, so cost grows with overlap, not with size.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from intents.analyse import Analyser, features, terms_of

SUPPORT_SHARE = 0.1
"""A term in this share of an intent's examples counts fully towards coverage;
a term in fewer counts in proportion, so one incidental word weighs little."""


PAIR_FACTOR = 0.5
"""Weight of a pair of neighbouring terms relative to a single term's."""

UNKNOWN_FACTOR = 0.6
"""Weight of a word the knowledge base has never seen, as a share of the
rarest known word's: unknown words are often place names, so less than 1."""


@dataclass(frozen=True)
class Example:
    """One example question of one intent, analysed."""

    intent: str
    text: str
    terms: frozenset[str]
    weight: float
    words: str = ""
    """The example's normalised words, to recognise a message that is exactly it."""


@dataclass
class Index:
    """Examples, their postings lists, per-intent vocabularies and term weights."""

    analyser: Analyser
    examples: list[Example] = field(default_factory=list)
    postings: dict[str, list[int]] = field(default_factory=dict)
    vocab: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    term_intents: dict[str, list[tuple[str, float, int]]] = field(default_factory=dict)
    """For each term: (intent, support 0-1, examples containing it) for every intent using it."""
    words_by_length: dict[int, list[str]] = field(default_factory=dict)
    exact: dict[str, str] = field(default_factory=dict)
    """Normalised example question -> its intent (when only one intent has it)."""
    idf: dict[str, float] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    unknown_weight: float = 1.0

    @classmethod
    def build(cls, analyser: Analyser, pairs: Iterable[tuple[str, str]]) -> Index:
        """Index ``(intent id, example question)`` pairs."""
        raw: list[tuple[str, str, frozenset[str], str]] = []
        vocab: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        sizes: dict[str, int] = defaultdict(int)
        words: set[str] = set()
        for intent, text in pairs:
            normal = analyser.words(text)
            words.update(w for w in normal if len(w) > 3 and not w.isdigit())
            terms = frozenset(features(terms_of(normal)))
            if terms:
                raw.append((intent, text, terms, " ".join(normal)))
                sizes[intent] += 1
                for term in terms:
                    vocab[intent][term] += 1
        document_frequency: dict[str, int] = defaultdict(int)
        for terms in vocab.values():
            for term in terms:
                document_frequency[term] += 1
        n = max(len(vocab), 1)
        idf = {
            t: math.log((n + 1) / (df + 0.5)) * (PAIR_FACTOR if " " in t else 1.0)
            for t, df in document_frequency.items()
        }
        index = cls(analyser=analyser, idf=idf, words=sorted(words))
        index.unknown_weight = UNKNOWN_FACTOR * math.log((n + 1) / 1.5)
        postings: dict[str, list[int]] = defaultdict(list)
        exact: dict[str, set[str]] = defaultdict(set)
        for intent, text, terms, normal_words in raw:
            position = len(index.examples)
            index.examples.append(Example(intent, text, terms, sum(idf[t] for t in terms), normal_words))
            exact[normal_words].add(intent)
            for term in terms:
                postings[term].append(position)
        index.postings = dict(postings)
        index.exact = {words: next(iter(intents)) for words, intents in exact.items() if len(intents) == 1}
        index.counts = {intent: dict(terms) for intent, terms in vocab.items()}
        by_term: dict[str, list[tuple[str, float, int]]] = defaultdict(list)
        index.vocab = {
            intent: {t: min(1.0, count / (SUPPORT_SHARE * sizes[intent])) for t, count in terms.items()}
            for intent, terms in vocab.items()
        }
        for intent, supports in index.vocab.items():
            for term, support in supports.items():
                by_term[term].append((intent, support, index.counts[intent][term]))
        index.term_intents = dict(by_term)
        for word in index.words:
            index.words_by_length.setdefault(len(word), []).append(word)
        return index

    def weight(self, term: str) -> float:
        """How much ``term`` tells; a term the index has never seen tells the most."""
        return self.idf.get(term, self.unknown_weight)
