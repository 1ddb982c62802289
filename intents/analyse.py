"""From normalised text to the terms the matcher weighs.

A term is a stemmed content word ("collected" and "collection" are both
"collect"). Stop words are dropped unless they are all a message has; greetings and
thanks are dropped only around a real question, so "hi" and "thanks" still
match the small-talk entries.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import pairwise

import snowballstemmer

from intents.normalise import Synonyms, normalise
from intents.stopwords import COURTESY, STOPWORDS

_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The English (Snowball) stem of one folded word; numbers stay as they are."""
    if word.isdigit() or len(word) <= 3:
        return word
    return _STEMMER.stemWord(word)


class Analyser:
    """Turns a message into matcher terms using the knowledge base's synonyms."""

    def __init__(self, synonyms: Synonyms) -> None:
        self.synonyms = synonyms

    def words(self, text: str) -> list[str]:
        """The normalised words of ``text`` (synonyms applied, nothing dropped)."""
        return normalise(text, self.synonyms).split()

    def terms(self, text: str) -> list[str]:
        """Content terms of ``text`` in order, without repeats."""
        return terms_of(self.words(text))


def terms_of(words: list[str]) -> list[str]:
    """Stemmed content terms of already-normalised ``words``, first occurrence kept."""
    content = [w for w in words if w not in STOPWORDS] or words
    substance = [w for w in content if w not in COURTESY]
    if len(substance) >= 2:
        content = substance
    seen: dict[str, None] = {}
    for word in content:
        seen.setdefault(stem(word), None)
    return list(seen)


def features(terms: list[str]) -> list[str]:
    """Terms plus each pair of neighbouring terms ("miss bin", "text relay").

    Pairs catch phrases whose words are common apart but telling together.
    """
    return terms + [f"{a} {b}" for a, b in pairwise(terms)]
