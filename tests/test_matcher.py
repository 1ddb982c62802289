"""intents.matcher, intents.decision and intents.safety.

Decision tables run over a small knowledge base built here, so tuning the
bundled content does not move them.
"""

from __future__ import annotations

import pytest

from intents import safety
from intents.decision import Candidate, Decision, Thresholds, decide
from intents.matcher import Matcher
from intents.normalise import fold
from knowledge import content

SMALL_KB: dict[str, list[str]] = {
    "service.bins.missed": [
        "bin collection missed",
        "my bin was missed",
        "the bin men skipped my street",
        "report a missed bin",
    ],
    "service.bins.collection-day": [
        "bin collection day",
        "when is my bin day",
        "which day are bins collected",
        "what day do the bin men come",
    ],
    "service.counciltax.pay": [
        "how do I pay my council tax",
        "pay council tax online",
        "council tax payment",
        "can I pay council tax by direct debit",
    ],
    "service.roads.pothole": [
        "report a pothole",
        "there is a pothole in my road",
        "huge hole in the road surface",
        "pothole damaged my car",
    ],
    "smalltalk.greeting": ["hi", "hello", "good morning", "hiya there"],
    "safety.self-harm": [
        "i want to hurt myself",
        "i feel suicidal",
        "thinking of ending my life",
        "i cant cope any more",
    ],
}
EXAMPLES = [(intent, q) for intent, questions in SMALL_KB.items() for q in questions]
SYNONYMS = {"rubbish": "bin", "wheelie bin": "bin"}


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(EXAMPLES, SYNONYMS)


def _check_invariants(decision: Decision) -> None:
    assert decision.action in ("answer", "clarify", "escalate")
    assert 0.0 <= decision.confidence <= 1.0
    if decision.action == "answer":
        assert decision.intent is not None
        assert decision.options == ()
    elif decision.action == "clarify":
        assert decision.intent is None
        assert len(decision.options) >= 2
        assert len(set(decision.options)) == len(decision.options)
    else:
        assert decision.intent is None
        assert decision.options == ()
    scores = [c.score for c in decision.candidates]
    assert scores == sorted(scores, reverse=True)


# -- decision table over the small KB ------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("how do I pay council tax", "service.counciltax.pay"),
        ("Can I pay my COUNCIL TAX by direct debit?", "service.counciltax.pay"),
        ("when is my bin day", "service.bins.collection-day"),
        ("report a missed bin", "service.bins.missed"),
        ("there's a pothole in my road", "service.roads.pothole"),
        ("hello", "smalltalk.greeting"),
    ],
)
def test_clear_question_is_answered(matcher: Matcher, text: str, intent: str) -> None:
    decision = matcher.match(text)
    _check_invariants(decision)
    assert decision.action == "answer"
    assert decision.intent == intent
    assert decision.safety is False
    assert decision.likeliest == intent


@pytest.mark.parametrize("text", ["bin collection", "bin collection?", "Bin Collection"])
def test_question_close_to_two_intents_is_clarified(matcher: Matcher, text: str) -> None:
    decision = matcher.match(text)
    _check_invariants(decision)
    assert decision.action == "clarify"
    assert {"service.bins.missed", "service.bins.collection-day"} <= set(decision.options)
    assert len(decision.options) <= Thresholds().max_options


def test_clarify_with_custom_thresholds_lists_both() -> None:
    # Two intents whose examples share the same distinctive words.
    examples = [
        ("a.garden", "garden waste bin collection"),
        ("a.garden", "garden waste subscription"),
        ("a.garden", "brown bin garden waste"),
        ("a.garden", "garden waste collection dates"),
        ("b.food", "food waste bin collection"),
        ("b.food", "food waste caddy"),
        ("b.food", "food waste caddy collection"),
        ("b.food", "food waste collection dates"),
    ]
    limits = Thresholds(answer=0.95, clarify=0.2, margin=0.2, clarify_band=0.5)
    decision = Matcher(examples, {}, thresholds=limits).match("waste collection")
    _check_invariants(decision)
    assert decision.action == "clarify"
    assert set(decision.options) == {"a.garden", "b.food"}


@pytest.mark.parametrize(
    "text",
    [
        "what's the capital of australia",
        "xyzzy plugh frobnicate",
        "who won the football last night",
        "qwertyuiop",
    ],
)
def test_unrelated_or_nonsense_is_escalated(matcher: Matcher, text: str) -> None:
    decision = matcher.match(text)
    _check_invariants(decision)
    assert decision.action == "escalate"
    assert decision.intent is None
    assert decision.safety is False


@pytest.mark.parametrize("text", ["", "   ", "?!?", "\U0001f642", "\x00\x01"])
def test_empty_messages_are_escalated_not_raised(matcher: Matcher, text: str) -> None:
    decision = matcher.match(text)
    _check_invariants(decision)
    assert decision.action == "escalate"
    assert decision.candidates == ()


def test_typo_is_repaired(matcher: Matcher) -> None:
    assert matcher.repair(["pothle"]) == ["pothole"]
    assert matcher.repair(["payment"]) == ["payment"]  # known words stay
    assert matcher.repair(["australia"]) == ["australia"]  # nothing near it
    decision = matcher.match("report a pothle")
    assert decision.action == "answer"
    assert decision.intent == "service.roads.pothole"


def test_typo_repair_leaves_short_words_and_numbers(matcher: Matcher) -> None:
    assert matcher.repair(["bim", "12345", "the"]) == ["bim", "12345", "the"]


def test_synonyms_are_applied() -> None:
    with_synonyms = Matcher(EXAMPLES, {"ctax": "council tax"})
    without = Matcher(EXAMPLES, {})
    assert with_synonyms.analyser.words("pay my ctax") == ["pay", "my", "council", "tax"]
    decided = with_synonyms.match("ctax")
    assert decided.action == "answer"
    assert decided.intent == "service.counciltax.pay"
    assert without.match("ctax").intent != "service.counciltax.pay"


def test_phrase_synonym_reaches_same_ranking(matcher: Matcher) -> None:
    assert matcher.rank("when is my wheelie bin day") == matcher.rank("when is my bin day")
    assert matcher.rank("rubbish collection day") == matcher.rank("bin collection day")


@pytest.mark.parametrize("text", ["bin", "bins", "Bin?"])
def test_one_word_query_is_not_a_confident_answer(matcher: Matcher, text: str) -> None:
    # The WRatio trap: "bin" is contained in every bin example, but says little.
    decision = matcher.match(text)
    _check_invariants(decision)
    assert decision.action != "answer" or decision.confidence < 1.0


def test_safety_example_is_answered_as_safety_by_ranking(matcher: Matcher) -> None:
    decision = matcher.match("thinking of ending my life")
    assert decision.action == "answer"
    assert decision.intent == "safety.self-harm"
    assert decision.safety is True
    assert decision.confidence == 1.0


def test_safety_wins_over_a_better_ordinary_match(matcher: Matcher) -> None:
    decision = matcher.match("hello, I want to kill myself")
    assert decision.safety is True
    assert decision.intent == "safety.self-harm"


def test_safety_intents_can_be_given() -> None:
    # An id not listed as a safety intent is never answered as safety by ranking.
    m = Matcher(EXAMPLES, SYNONYMS, safety_intents=())
    decision = m.match("thinking of ending my life")
    assert decision.safety is (safety.detect(fold("thinking of ending my life")) is not None)


def test_match_is_pure_and_repeatable(matcher: Matcher) -> None:
    first = [matcher.match(t) for t in ("bin collection", "pay council tax", "nonsense words")]
    second = [matcher.match(t) for t in ("bin collection", "pay council tax", "nonsense words")]
    assert first == second


def test_rank_lists_only_intents_sharing_a_term(matcher: Matcher) -> None:
    ranked = matcher.rank("council tax")
    assert [c.intent for c in ranked] == ["service.counciltax.pay"]
    assert ranked[0].example in SMALL_KB["service.counciltax.pay"]
    assert matcher.rank("capital of australia") == []


# -- decide(): the thresholds as a table -----------------------------------------


def _ranked(*pairs: tuple[str, float]) -> list[Candidate]:
    return [Candidate(i, s) for i, s in pairs]


@pytest.mark.parametrize(
    ("ranked", "action", "intent", "options"),
    [
        ([], "escalate", None, ()),
        (_ranked(("a", 0.9)), "answer", "a", ()),
        (_ranked(("a", 0.9), ("b", 0.5)), "answer", "a", ()),
        (_ranked(("a", 0.9), ("b", 0.88)), "clarify", None, ("a", "b")),
        (_ranked(("a", 0.45), ("b", 0.40)), "clarify", None, ("a", "b")),
        (_ranked(("a", 0.45), ("b", 0.1)), "escalate", None, ()),
        (_ranked(("a", 0.2), ("b", 0.19)), "escalate", None, ()),
        (_ranked(("a", 0.7), ("b", 0.69), ("c", 0.68), ("d", 0.67)), "clarify", None, ("a", "b", "c")),
        (_ranked(("a", 0.9), ("b", 0.85), ("c", 0.4)), "clarify", None, ("a", "b")),
    ],
)
def test_decide_table(ranked: list[Candidate], action: str, intent: str | None, options: tuple[str, ...]) -> None:
    decision = decide(ranked, Thresholds(answer=0.5, clarify=0.35, margin=0.08, clarify_band=0.12, max_options=3))
    assert (decision.action, decision.intent, decision.options) == (action, intent, options)
    _check_invariants(decision)
    assert decision.likeliest == (ranked[0].intent if ranked else None)


def test_decide_clamps_confidence() -> None:
    assert decide(_ranked(("a", 1.7)), Thresholds()).confidence == 1.0


# -- safety.detect on folded text ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("i want to kill myself", "safety.self-harm"),
        ("I want to kill myself.", "safety.self-harm"),
        ("I\u2019ve been thinking about suicide", "safety.self-harm"),
        ("my husband hits me", "safety.domestic-abuse"),
        ("My boyfriend won\u2019t let me leave the house", "safety.domestic-abuse"),
        ("theres a fire in the flats", "safety.emergency"),
        ("There's a FIRE in the flats!!", "safety.emergency"),
        ("I can smell gas in the kitchen", "safety.emergency"),
        ("im 13 and my stepdad hits me", "safety.child-at-risk"),
        ("I'm 13 and my step-dad hits me", "safety.child-at-risk"),
        ("the carer is stealing money from my nan who has dementia", "safety.adult-at-risk"),
        ("I know where that officer lives", "safety.threat-or-abuse"),
    ],
)
def test_safety_detects(text: str, intent: str) -> None:
    found = safety.detect(fold(text))
    assert found is not None, text
    assert found in safety.SAFETY_INTENTS
    assert found == intent


@pytest.mark.parametrize(
    "text",
    [
        "when is my bin day",
        "how do I pay council tax",
        "my dad had a stroke last year, can he get a blue badge",
        "report a pothole on the high street",
        "can I get a parking permit",
        "my bin was not collected again",
        "how do I register a death",
        "how do councillors deal with abuse on twitter",
        "fire safety advice for landlords",
        "hello",
    ],
)
def test_safety_quiet_on_ordinary_questions(text: str) -> None:
    assert safety.detect(fold(text)) is None


def test_bundled_non_safety_examples_do_not_trigger_safety() -> None:
    loaded = content.load()
    assert loaded.entries, loaded.problems
    offenders = [
        f"{entry.id}: {question!r} -> {found}"
        for entry in loaded.entries
        if entry.kind != "safety"
        for question in entry.questions
        if (found := safety.detect(fold(question))) is not None
    ]
    assert offenders == []


def test_bundled_safety_examples_are_answered_as_safety() -> None:
    # High recall: a Matcher over the bundled content flags every example of
    # every safety entry (by pattern or by ranking).
    loaded = content.load()
    examples = [(e.id, q) for e in loaded.entries for q in e.questions]
    safety_ids = [e.id for e in loaded.entries if e.kind == "safety"]
    assert safety_ids
    m = Matcher(examples, loaded.synonyms, safety_ids)
    missed = [
        f"{entry.id}: {question!r} -> {decision.action} {decision.intent}"
        for entry in loaded.entries
        if entry.kind == "safety"
        for question in entry.questions
        if not (decision := m.match(question)).safety
    ]
    assert missed == []
