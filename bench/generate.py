"""Grow (or shrink) the bundled knowledge base to a given number of example questions.

Everything is deterministic for a given seed, so a re-run measures the same knowledge bases.

* Smaller than the bundled content: a round-robin sample, one question per intent per round (intents and
  questions in a seeded shuffled order), so the sample spreads over as many intents as it can.
* Larger: every bundled question is kept, then

  1. *variants* of the bundled intents' own questions are added, until each bundled intent has at most
     ``REAL_GROWTH`` times its bundled number of questions;
  2. beyond that, *synthetic intents* of ``SYNTHETIC_QUESTIONS`` questions each: a synthetic intent copies a
     bundled FAQ (its "seed") and swaps the seed's one or two most telling words (highest IDF over intents)
     in each question for the synthetic intent's own two key words, made-up words such as "brelkost"
     drawn from a pool of about 1.2 made-up words per synthetic intent (so key words are shared between
     synthetic intents, as "permit" is shared by real ones).

A variant is a question of the same intent with one or two of these changes: a synonym swapped in or out
(from the content's synonyms table, either direction), a typo (a letter dropped, doubled, swapped with its
neighbour or replaced by a keyboard neighbour), a word-order change (two neighbouring words swapped, or the
question's tail moved to the front), a recombination (the first half of one question of the intent joined
to the second half of another) or a courtesy word added ("hi", "thanks", "quick question"...). Half of the
synthetic questions get a variant change too. Every question is unique after folding, across the whole
knowledge base, so the result also passes ``councilbot kb check``.

``heldout`` makes messages the same way but never puts them in the knowledge base: they are the queries
that reach the generated (and synthetic) intents in the latency runs.
"""

from __future__ import annotations

import math
import random
import string
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import tomli_w

from intents.normalise import fold
from intents.stopwords import STOPWORDS
from knowledge import content as content_module
from knowledge.content import Content, Entry

REAL_GROWTH = 3
"""A bundled intent grows to at most this many times its bundled number of questions."""

SYNTHETIC_QUESTIONS = 25
"""Questions per synthetic intent (the bundled content averages about 23)."""

KEYWORD_POOL_SHARE = 1.2
"""Made-up key words per synthetic intent."""

SYNTHETIC_TYPO_SHARE = 0.5
"""Share of synthetic questions that also get one variant change."""

_FRONT = ["hi", "hello", "please", "quick question", "can you tell me", "i was wondering", "sorry to bother you but"]
_BACK = ["thanks", "please", "cheers", "thank you", "?"]
_KEYBOARD = {
    "a": "qswz",
    "b": "vghn",
    "c": "xdfv",
    "d": "serfcx",
    "e": "wsdr",
    "f": "drtgvc",
    "g": "ftyhbv",
    "h": "gyujnb",
    "i": "ujko",
    "j": "huikmn",
    "k": "jiolm",
    "l": "kop",
    "m": "njk",
    "n": "bhjm",
    "o": "iklp",
    "p": "ol",
    "q": "wa",
    "r": "edft",
    "s": "awedxz",
    "t": "rfgy",
    "u": "yhji",
    "v": "cfgb",
    "w": "qase",
    "x": "zsdc",
    "y": "tghu",
    "z": "asx",
}
_ONSETS = "b br bl c cr cl d dr f fl fr g gr gl h j k l m n p pl pr qu r s sh sk sl sp st t tr th v w z".split()
_VOWELS = "a e i o u ai ea oo ou ie".split()
_CODAS = ["", "", "n", "r", "l", "st", "nd", "rk", "m", "x", "ck", "lt", "sh"]


def bundled(folder: Path | None = None) -> Content:
    """The content the generated knowledge bases start from (the bundled folder by default)."""
    loaded = content_module.load(folder or content_module.BUNDLED)
    if loaded.problems:
        raise ValueError(f"the content has problems, first: {loaded.problems[0]}")
    return loaded


def question_count(content: Content) -> int:
    """How many example questions ``content`` has."""
    return sum(len(e.questions) for e in content.entries)


@lru_cache(maxsize=200_000)
def _fold_word(word: str) -> str:
    return fold(word)


class _Perturber:
    """The variant changes, sharing one seeded random generator."""

    def __init__(self, rng: random.Random, synonyms: dict[str, str]) -> None:
        self.rng = rng
        self.forward = {k: v for k, v in synonyms.items() if " " not in k and v and " " not in v}
        self.backward: dict[str, list[str]] = defaultdict(list)
        for key, value in sorted(self.forward.items()):
            self.backward[value].append(key)
        self.operations: list[tuple[str, float, Callable[[list[str], list[str]], list[str]]]] = [
            ("synonym", 0.25, self.synonym),
            ("typo", 0.25, self.typo),
            ("order", 0.2, self.order),
            ("recombine", 0.15, self.recombine),
            ("courtesy", 0.15, self.courtesy),
        ]

    def vary(self, text: str, siblings: list[str], changes: int) -> str:
        words = text.split()
        for _ in range(changes):
            names = [op for _name, _weight, op in self.operations]
            weights = [weight for _name, weight, _op in self.operations]
            operation = self.rng.choices(names, weights)[0]
            words = operation(words, siblings) or words
        return " ".join(words)

    def synonym(self, words: list[str], _siblings: list[str]) -> list[str]:
        spots = [i for i, w in enumerate(words) if _fold_word(w) in self.backward or _fold_word(w) in self.forward]
        if not spots:
            return words
        i = self.rng.choice(spots)
        word = _fold_word(words[i])
        swapped = self.rng.choice(self.backward[word]) if word in self.backward else self.forward[word]
        return [*words[:i], swapped, *words[i + 1 :]]

    def typo(self, words: list[str], _siblings: list[str]) -> list[str]:
        spots = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
        if not spots:
            return words
        i = self.rng.choice(spots)
        word = words[i]
        at = self.rng.randrange(1, len(word) - 1)
        kind = self.rng.randrange(4)
        if kind == 0:
            word = word[:at] + word[at + 1 :]
        elif kind == 1:
            word = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
        elif kind == 2:
            word = word[:at] + word[at] + word[at:]
        else:
            near = _KEYBOARD.get(word[at].lower(), string.ascii_lowercase)
            word = word[:at] + self.rng.choice(near) + word[at + 1 :]
        return [*words[:i], word, *words[i + 1 :]]

    def order(self, words: list[str], _siblings: list[str]) -> list[str]:
        if len(words) < 4:
            return words
        if self.rng.random() < 0.5:
            i = self.rng.randrange(len(words) - 1)
            return [*words[:i], words[i + 1], words[i], *words[i + 2 :]]
        cut = self.rng.randrange(2, len(words) - 1)
        return words[cut:] + words[:cut]

    def recombine(self, words: list[str], siblings: list[str]) -> list[str]:
        others = [s.split() for s in siblings if len(s.split()) >= 3]
        if len(words) < 3 or not others:
            return words
        other = self.rng.choice(others)
        return words[: len(words) // 2] + other[len(other) // 2 :]

    def courtesy(self, words: list[str], _siblings: list[str]) -> list[str]:
        if self.rng.random() < 0.5:
            return self.rng.choice(_FRONT).split() + words
        return words + self.rng.choice(_BACK).split()


def _pseudo_words(rng: random.Random, count: int, avoid: set[str]) -> list[str]:
    words: list[str] = []
    seen = set(avoid)
    while len(words) < count:
        word = "".join(
            rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(rng.choice((2, 2, 3)))
        )
        if 5 <= len(word) <= 11 and word not in seen:
            seen.add(word)
            words.append(word)
    return words


def _content_words(text: str) -> list[str]:
    return [w for w in fold(text).split() if w not in STOPWORDS and len(w) > 3 and not w.isdigit()]


def _sample(base: Content, size: int, rng: random.Random) -> list[Entry]:
    queues = []
    for entry in base.entries:
        questions = list(entry.questions)
        rng.shuffle(questions)
        queues.append((entry, questions))
    rng.shuffle(queues)
    chosen: dict[str, list[str]] = defaultdict(list)
    taken = 0
    depth = 0
    while taken < size:
        progressed = False
        for entry, questions in queues:
            if depth < len(questions) and taken < size:
                chosen[entry.id].append(questions[depth])
                taken += 1
                progressed = True
        if not progressed:
            break
        depth += 1
    return [replace(e, questions=chosen[e.id]) for e in base.entries if chosen.get(e.id)]


def _unique(key: str, seen: set[str]) -> bool:
    if not key or key in seen:
        return False
    seen.add(key)
    return True


def grow(size: int, base: Content | None = None, seed: int = 8) -> Content:
    """A knowledge base of exactly ``size`` example questions (fewer only if generation runs dry)."""
    base = base or bundled()
    rng = random.Random(seed)
    have = question_count(base)
    if size <= have:
        return Content(entries=_sample(base, size, rng), synonyms=dict(base.synonyms))
    seen = {fold(q) for e in base.entries for q in e.questions}
    entries = [replace(e, questions=list(e.questions)) for e in base.entries]
    perturb = _Perturber(rng, base.synonyms)
    real_target = min(size, have * REAL_GROWTH)
    total = have
    stalls = 0
    while total < real_target and stalls < 50:
        added = 0
        for entry, original in zip(entries, base.entries, strict=True):
            if total >= real_target or len(entry.questions) >= len(original.questions) * REAL_GROWTH:
                continue
            text = perturb.vary(rng.choice(original.questions), original.questions, rng.choice((1, 1, 2)))
            if _unique(fold(text), seen):
                entry.questions.append(text)
                total += 1
                added += 1
        stalls = stalls + 1 if added == 0 else 0
    if total < size:
        entries += _synthetic(base, size - total, rng, perturb, seen)
    return Content(entries=entries, synonyms=dict(base.synonyms))


def _synthetic(base: Content, wanted: int, rng: random.Random, perturb: _Perturber, seen: set[str]) -> list[Entry]:
    seeds = [e for e in base.entries if e.kind == "faq" and len(e.questions) >= 3]
    folded = {e.id: [fold(q).split() for q in e.questions] for e in seeds}
    frequency: dict[str, int] = defaultdict(int)
    for entry in base.entries:
        for word in {w for q in entry.questions for w in _content_words(q)}:
            frequency[word] += 1
    intents = math.ceil(wanted / SYNTHETIC_QUESTIONS)
    known = {w for e in base.entries for q in e.questions for w in fold(q).split()}
    pool = _pseudo_words(rng, max(4, int(intents * KEYWORD_POOL_SHARE)), known)
    all_pairs = len(pool) * (len(pool) - 1) // 2
    pairs: set[tuple[str, str]] = set()
    entries: list[Entry] = []
    made = 0
    tries = 0
    while made < wanted and tries < intents * 3 + 10:
        tries += 1
        first, second = sorted(rng.sample(pool, 2))
        while (first, second) in pairs and len(pairs) < all_pairs:
            first, second = sorted(rng.sample(pool, 2))
        pairs.add((first, second))
        seed_entry = rng.choice(seeds)
        goal = math.ceil((wanted - made) / max(intents - len(entries), 1))
        questions = _synthetic_questions(folded[seed_entry.id], (first, second), goal, frequency, rng, perturb, seen)
        if not questions:
            continue
        made += len(questions)
        entries.append(
            Entry(
                id=f"synthetic.s{len(entries):05d}",
                kind="faq",
                topic=seed_entry.topic,
                audience=seed_entry.audience,
                questions=questions,
                answer=f"Synthetic answer {len(entries)} ({first} {second}), generated for benchmarks.",
                title=f"Synthetic {first} {second}",
                source="synthetic.toml",
            )
        )
    return entries


def _synthetic_questions(
    seed_questions: list[list[str]],
    keywords: tuple[str, str],
    goal: int,
    frequency: dict[str, int],
    rng: random.Random,
    perturb: _Perturber,
    seen: set[str],
) -> list[str]:
    """Up to ``goal`` of the seed's (folded) questions with their most telling words swapped for ``keywords``."""
    first, second = keywords
    questions: list[str] = []
    attempts = 0
    while len(questions) < goal and attempts < goal * 20:
        attempts += 1
        words = list(rng.choice(seed_questions))
        telling = sorted(
            {w for w in words if w not in STOPWORDS and len(w) > 3 and not w.isdigit()},
            key=lambda w: (frequency.get(w, 0), w),
        )
        if telling:
            swap = {telling[0]: first}
            if len(telling) > 1:
                swap[telling[1]] = second
            else:
                words.append(second)
            words = [swap.get(w, w) for w in words]
        else:
            words += [first, second]
        text = " ".join(words)
        if rng.random() < SYNTHETIC_TYPO_SHARE or attempts > goal * 2:
            text = perturb.vary(text, [], 1 if attempts <= goal * 2 else 2)
        if _unique(fold(text), seen):
            questions.append(text)
    return questions


def heldout(content: Content, count: int, seed: int = 88) -> list[tuple[str, str]]:
    """``count`` new ``(intent, message)`` pairs made like the variants, none of them in ``content``."""
    rng = random.Random(seed)
    perturb = _Perturber(rng, content.synonyms)
    seen = {fold(q) for e in content.entries for q in e.questions}
    pool = [e for e in content.entries if e.questions]
    out: list[tuple[str, str]] = []
    attempts = 0
    while len(out) < count and attempts < count * 50 and pool:
        attempts += 1
        entry = rng.choice(pool)
        text = perturb.vary(rng.choice(entry.questions), entry.questions, rng.choice((1, 2)))
        if _unique(fold(text), seen):
            out.append((entry.id, text))
    return out


def write_folder(content: Content, folder: Path) -> Path:
    """Write ``content`` as a content folder that ``councilbot kb build`` reads (one file per source)."""
    folder.mkdir(parents=True, exist_ok=True)
    by_file: dict[str, list[dict]] = defaultdict(list)
    for entry in content.entries:
        data = {k: v for k, v in entry.as_dict().items() if v not in ("", [])}
        by_file[Path(entry.source).name or "generated.toml"].append(data)
    for name, entries in by_file.items():
        (folder / name).write_text(tomli_w.dumps({"entry": entries}, multiline_strings=True), encoding="utf-8")
    synonyms = {"all": dict(sorted(content.synonyms.items()))}
    (folder / content_module.SYNONYMS_FILE).write_text(tomli_w.dumps(synonyms), encoding="utf-8")
    return folder
