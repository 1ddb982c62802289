"""Turn raw chat text into a clean, comparable form.

Normalisation is the first step for every message: unicode is folded, case
and apostrophes are evened out, punctuation becomes space, control
characters vanish, and the council's synonyms (words and phrases) are
applied, so "Wen is ma RUBBISH collected??" and "when is my bin collected"
meet in the middle.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

_APOSTROPHES = dict.fromkeys(map(ord, "\u2018\u2019\u201b\u02bc\u0060\u00b4\u2032"), "'")
_QUOTES = dict.fromkeys(map(ord, "\u201c\u201d\u201e\u00ab\u00bb"), '"')
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"), "-")
_NON_WORD = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")
_MASKED_SWEAR = re.compile(r"\b([a-z])[*#@!$%]{2,}([a-z]*)")


def clean(text: str) -> str:
    """Fold unicode, drop control characters and squeeze white space.

    Keeps case and punctuation: this is the form shown back to people and
    stored, not the form compared.
    """
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" or ch in "\n\t" else " " for ch in text)
    return _SPACES.sub(" ", text).strip()


def fold(text: str) -> str:
    """Lower-case, unify apostrophes and dashes, strip accents and punctuation.

    "Don't" and "dont" become the same; "f***ing" keeps a trace ("fxxxing")
    so abuse detection still sees it.
    """
    text = clean(text).casefold()
    text = text.translate(_APOSTROPHES).translate(_QUOTES).translate(_DASHES)
    text = _MASKED_SWEAR.sub(lambda m: m.group(1) + "xxx" + m.group(2), text)
    text = text.replace("'", "")
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    text = text.replace("&", " and ").replace("£", " pounds ").replace("%", " percent ")
    text = _NON_WORD.sub(" ", text).replace("_", " ")
    return _SPACES.sub(" ", text).strip()


class Synonyms:
    """Replace words and multi-word phrases with their canonical form.

    ``mapping`` keys are folded phrases ("recycling centre"), values the
    words they become ("tip"). Longer phrases win over shorter ones.
    """

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.words: dict[str, str] = {}
        self.phrases: dict[tuple[str, ...], str] = {}
        for key, value in mapping.items():
            words = tuple(fold(key).split())
            target = fold(value)
            if len(words) == 1:
                self.words[words[0]] = target
            elif words:
                self.phrases[words] = target
        self.longest = max((len(p) for p in self.phrases), default=1)

    def apply(self, words: list[str]) -> list[str]:
        """Return ``words`` with every known phrase and word replaced."""
        out: list[str] = []
        i = 0
        while i < len(words):
            for size in range(min(self.longest, len(words) - i), 1, -1):
                target = self.phrases.get(tuple(words[i : i + size]))
                if target is not None:
                    out.extend(target.split())
                    i += size
                    break
            else:
                target = self.words.get(words[i])
                out.extend(target.split() if target is not None else [words[i]])
                i += 1
        return [w for w in out if w]


def normalise(text: str, synonyms: Synonyms | None = None) -> str:
    """Fold ``text`` and apply ``synonyms``: the form the matcher compares."""
    words = fold(text).split()
    if synonyms is not None:
        words = synonyms.apply(words)
    return " ".join(words)
