"""intents.normalise: clean, fold, Synonyms and normalise."""

from __future__ import annotations

import unicodedata

import pytest

from intents.normalise import Synonyms, clean, fold, normalise


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("WHEN is my Bin Day", "when is my bin day"),
        ("don\u2019t", "dont"),  # curly apostrophe
        ("don't", "dont"),
        ("Don\u2018t", "dont"),
        ("I\u02bcm", "im"),  # modifier letter apostrophe
        ("bins?!...", "bins"),
        ("missed   bin\t\n collection", "missed bin collection"),
        ("caf\u00e9 na\u00efve \u00dcber", "cafe naive uber"),
        ("Ysgol Gymraeg Bryn\u00e2t", "ysgol gymraeg brynat"),
        ("\uff42\uff49\uff4e", "bin"),  # full-width letters (NFKC)
        ("fish & chips", "fish and chips"),
        ("\u00a3100 fine", "pounds 100 fine"),
        ("50% off", "50 percent off"),
        ("well\u2014sort of", "well sort of"),
        ("\u201cquoted\u201d words", "quoted words"),
        ("snake_case_words", "snake case words"),
        ("  padded  ", "padded"),
    ],
)
def test_fold(raw: str, folded: str) -> None:
    assert fold(raw) == folded


@pytest.mark.parametrize(
    "raw",
    [
        "bin\x00day",
        "bin\x01\x02\x03day",
        "bin\x1b[31mday",
        "bin\u200bday",  # zero-width space (format character)
        "bin\x7fday",
        "bin\ufeffday",
    ],
)
def test_control_characters_removed(raw: str) -> None:
    for form in (clean(raw), fold(raw)):
        assert not any(unicodedata.category(ch)[0] == "C" for ch in form), repr(form)
        assert "\x00" not in form
    assert fold(raw).startswith("bin")
    assert fold(raw).endswith("day")


def test_nul_only_is_empty() -> None:
    assert clean("\x00\x00\x01") == ""
    assert fold("\x00\x00\x01") == ""


@pytest.mark.parametrize(
    "raw", ["\U0001f642", "\U0001f642\U0001f44d\U0001f3fd", "\u2764\ufe0f\u2764\ufe0f", "!!! ??? ...", ""]
)
def test_emoji_and_punctuation_only_fold_to_empty(raw: str) -> None:
    assert fold(raw) == ""
    assert normalise(raw, Synonyms({"x": "y"})) == ""


def test_clean_keeps_case_and_punctuation() -> None:
    assert clean("Hello, World!  Is my BIN day Tuesday?") == "Hello, World! Is my BIN day Tuesday?"


def test_clean_squeezes_white_space_and_strips() -> None:
    assert clean("  a\n\n b\t\tc  ") == "a b c"


@pytest.mark.parametrize(
    ("raw", "trace"),
    [
        ("f***ing useless", "fxxxing"),
        ("you're all f***ing useless", "fxxxing"),
        ("s***", "sxxx"),
        ("f#@!ing bins", "fxxxing"),
    ],
)
def test_masked_swearing_keeps_a_trace(raw: str, trace: str) -> None:
    folded = fold(raw)
    assert trace in folded.split()
    assert "*" not in folded


@pytest.mark.parametrize(
    "raw",
    ["Don\u2019t KNOW!!", "caf\u00e9 & b\u00e2r", "f***ing \u00a3100", "\x00 \U0001f642 hello \u2014 there"],
)
def test_fold_is_idempotent(raw: str) -> None:
    assert fold(fold(raw)) == fold(raw)


def test_synonyms_single_words() -> None:
    synonyms = Synonyms({"rubbish": "bin", "refuse": "bin"})
    assert synonyms.apply("my rubbish and refuse".split()) == ["my", "bin", "and", "bin"]


def test_multi_word_phrase_wins_over_single_word() -> None:
    synonyms = Synonyms({"recycling": "recycle", "recycling centre": "tip", "centre": "center"})
    assert synonyms.apply("where is the recycling centre".split()) == ["where", "is", "the", "tip"]
    assert synonyms.apply("recycling bin".split()) == ["recycle", "bin"]
    assert synonyms.apply("town centre".split()) == ["town", "center"]


def test_longest_phrase_wins() -> None:
    synonyms = Synonyms({"household waste": "rubbish", "household waste recycling centre": "tip"})
    assert synonyms.apply("the household waste recycling centre".split()) == ["the", "tip"]
    assert synonyms.apply("the household waste bin".split()) == ["the", "rubbish", "bin"]


def test_synonym_keys_and_values_are_folded() -> None:
    synonyms = Synonyms({"Wheelie-Bin": "BIN", "C\u2019tax": "Council Tax"})
    assert synonyms.apply(["wheelie", "bin"]) == ["bin"]
    assert synonyms.apply(["ctax"]) == ["council", "tax"]


def test_synonym_to_several_words() -> None:
    assert Synonyms({"ctax": "council tax"}).apply(["pay", "ctax"]) == ["pay", "council", "tax"]


def test_empty_synonyms_change_nothing() -> None:
    assert Synonyms({}).apply(["a", "b"]) == ["a", "b"]
    assert Synonyms({}).apply([]) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Wen is ma RUBBISH collected??", "wen is ma bin collected"),
        ("Where's the Recycling Centre?", "wheres the tip"),
        ("when is my bin day", "when is my bin day"),
    ],
)
def test_normalise_applies_fold_and_synonyms(raw: str, expected: str) -> None:
    synonyms = Synonyms({"rubbish": "bin", "recycling centre": "tip"})
    assert normalise(raw, synonyms) == expected


def test_normalise_without_synonyms_is_fold() -> None:
    assert normalise("Don\u2019t   STOP!") == fold("Don\u2019t   STOP!") == "dont stop"
