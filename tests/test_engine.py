"""bot.engine: whole conversations over a small knowledge base built here."""

from __future__ import annotations

import itertools
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from bot import replies
from bot.config import Config, parse
from bot.engine import COMPLAINT, HANDOFF, Engine
from bot.messages import IncomingMessage, Outcome
from bot.store import MIGRATIONS, Store
from bot.wiring import make_matcher
from intents.normalise import clean
from knowledge import build
from knowledge.base import KnowledgeBase
from knowledge.content import Content, Entry

PHONE = "01632 123456"
COUNCIL = "Testshire Council"
BIN_PAGE = "https://testshire.example/bins"
REFERENCE = re.compile(r"\bCB-[A-Z0-9]{4,}\b")
TABLES = ("conversations", "inbox", "messages", "escalations")


def _entry(entry_id: str, kind: str, topic: str, questions: list[str], answer: str, title: str = "") -> Entry:
    return Entry(
        id=entry_id,
        kind=kind,
        topic=topic,
        audience="anyone",
        questions=questions,
        answer=answer,
        title=title,
        source="small.toml",
    )


ENTRIES = [
    _entry("smalltalk.greeting", "smalltalk", "general", ["hi", "hello", "good morning", "hiya there"], "Hello!"),
    _entry(
        "service.bins.missed",
        "faq",
        "waste",
        ["bin collection missed", "my bin was missed", "the bin men skipped my street", "report a missed bin"],
        "Report a missed bin at {page.missed_bin}.",
        title="Missed bin",
    ),
    _entry(
        "service.bins.collection-day",
        "faq",
        "waste",
        ["bin collection day", "when is my bin day", "which day are bins collected", "what day do the bin men come"],
        "Find your day at {page.bin_day} or call {council.phone}. {{Literal}} braces.",
        title="Bin collection day",
    ),
    _entry(
        "service.counciltax.pay",
        "faq",
        "council-tax",
        ["how do I pay my council tax", "pay council tax online", "council tax payment", "pay council tax by card"],
        "{council.name} takes payments at {page.council_tax_pay}.",
        title="Paying council tax",
    ),
    _entry(
        "service.roads.pothole",
        "faq",
        "highways",
        ["report a pothole", "there is a pothole in my road", "huge hole in the road surface", "pothole damage"],
        "Report it at {page.report_pothole}.",
        title="Potholes",
    ),
    _entry(
        COMPLAINT,
        "smalltalk",
        "general",
        ["that didn't help", "that was useless", "not helpful at all", "you are not helping me"],
        "Sorry that did not help.",
        title="That did not help",
    ),
    _entry(
        HANDOFF,
        "handoff",
        "general",
        ["talk to a person", "speak to a human", "can I talk to someone real", "put me through to an advisor"],
        "I will pass you to a person.",
        title="Talk to a person",
    ),
    _entry(
        "safety.self-harm",
        "safety",
        "safeguarding",
        ["i want to hurt myself", "i feel suicidal", "thinking of ending my life", "i cant cope any more"],
        "Please call Samaritans on 116 123, or our out of hours line {council.out_of_hours_phone}.",
        title="Urgent help",
    ),
]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return parse(
        {
            "council": {"name": COUNCIL, "phone": PHONE, "pages": {"bin_day": BIN_PAGE}},
            "storage": {"knowledge_db": "data/knowledge.db", "state_db": "data/state.db"},
        },
        "test",
        tmp_path,
    )


@pytest.fixture
def kb(config: Config) -> KnowledgeBase:
    target = config.path(config.storage.knowledge_db)
    build.build(Content(list(ENTRIES), {"rubbish": "bin"}), target)
    return KnowledgeBase(target)


@pytest.fixture
def store(config: Config) -> Store:
    store = Store(config.path(config.storage.state_db))
    yield store
    store.close()


@pytest.fixture
def engine(kb: KnowledgeBase, config: Config, store: Store) -> Engine:
    return Engine(kb, make_matcher(kb, config), config, store)


Say = Callable[..., Outcome]


@pytest.fixture
def say(engine: Engine) -> Say:
    counter = itertools.count(1)

    def send(text: str, user: str = "resident-1") -> Outcome:
        outcome = engine.handle(IncomingMessage("test", user, text, event_id=f"e{next(counter)}"))
        assert outcome is not None
        assert outcome.action in ("answer", "clarify", "escalate")
        assert outcome.text.strip()
        assert all(r.platform == "test" and r.conversation == user for r in outcome.replies)
        return outcome

    return send


def counts(store: Store) -> dict[str, int]:
    return {t: store.db[t].count for t in TABLES}


# -- ordinary conversation ----------------------------------------------------------


def test_greeting(say: Say) -> None:
    outcome = say("hello")
    assert outcome.action == "answer"
    assert outcome.intent == "smalltalk.greeting"
    assert outcome.replies[-1].text == "Hello!"
    assert "Privacy" in outcome.replies[0].text  # the first contact starts with the privacy notice
    assert outcome.urgent is False


def test_answer_fills_placeholders_from_config(say: Say) -> None:
    outcome = say("when is my bin day?")
    assert outcome.action == "answer"
    assert outcome.intent == "service.bins.collection-day"
    assert BIN_PAGE in outcome.text
    assert PHONE in outcome.text
    assert "{Literal} braces" in outcome.text
    assert "{page." not in outcome.text and "{council." not in outcome.text
    tax = say("how do I pay my council tax")
    assert tax.intent == "service.counciltax.pay"
    assert tax.text.startswith(COUNCIL)


def test_answer_is_logged(say: Say, store: Store) -> None:
    say("hello")
    rows = list(store.db.query("select direction, text, action, intent from messages order by id"))
    assert [r["direction"] for r in rows] == ["in", "out"]
    assert rows[0]["text"] == "hello"
    assert rows[1]["action"] == "answer"
    assert rows[1]["intent"] == "smalltalk.greeting"
    assert store.escalations() == []


def _clarify(say: Say) -> Outcome:
    outcome = say("bin collection")
    assert outcome.action == "clarify"
    assert set(outcome.options) == {"service.bins.missed", "service.bins.collection-day"}
    assert outcome.intent is None
    offered = outcome.replies[-1].options
    assert [o.id for o in offered][:2] == list(outcome.options)
    assert offered[-1].id == HANDOFF
    for n, option in enumerate(offered, 1):
        assert f"{n}. {option.label}" in outcome.text
    return outcome


@pytest.mark.parametrize("position", [1, 2])
def test_clarify_then_choose_by_number(say: Say, position: int) -> None:
    asked = _clarify(say)
    chosen = say(str(position))
    assert chosen.action == "answer"
    assert chosen.intent == asked.options[position - 1]


@pytest.mark.parametrize("reply", ["2.", "number 2", " 2 ", "option 2"])
def test_clarify_then_choose_by_number_variants(say: Say, reply: str) -> None:
    asked = _clarify(say)
    assert say(reply).intent == asked.options[1]


@pytest.mark.parametrize("position", [1, 2])
def test_clarify_then_choose_by_words(say: Say, position: int) -> None:
    asked = _clarify(say)
    label = asked.replies[-1].options[position - 1].label
    chosen = say(label.lower())
    assert chosen.action == "answer"
    assert chosen.intent == asked.options[position - 1]


def test_clarify_then_choose_person(say: Say, store: Store) -> None:
    asked = _clarify(say)
    handed = say(str(len(asked.replies[-1].options)))
    assert handed.action == "escalate"
    assert handed.intent == HANDOFF
    (row,) = store.escalations()
    assert row["question"] == "bin collection"


def test_bare_number_with_no_options(say: Say, store: Store) -> None:
    outcome = say("2")
    assert outcome.action == "clarify"
    assert outcome.intent is None
    assert outcome.replies[-1].text == replies.no_options()
    assert store.escalations() == []


def test_out_of_range_number_keeps_the_options(say: Say) -> None:
    asked = _clarify(say)
    offered = len(asked.replies[-1].options)
    for wrong in ("0", "9", str(offered + 1)):
        outcome = say(wrong)
        assert outcome.action == "clarify"
        assert outcome.text == replies.out_of_range(offered)
    assert say("1").intent == asked.options[0]


def test_options_are_forgotten_after_an_answer(say: Say) -> None:
    _clarify(say)
    say("1")
    assert say("2").text == replies.no_options()


def test_conversations_are_separate(say: Say) -> None:
    _clarify(say)
    assert say("1", user="someone-else").replies[-1].text == replies.no_options()


def test_that_did_not_help_then_yes_escalates(say: Say, store: Store) -> None:
    first = say("how do I pay my council tax")
    assert first.intent == "service.counciltax.pay"
    sorry = say("that didn't help")
    assert sorry.action == "answer"
    assert sorry.intent == COMPLAINT
    assert [o.id for o in sorry.replies[-1].options] == [HANDOFF]
    handed = say("yes")
    assert handed.action == "escalate"
    reference = REFERENCE.search(handed.text)
    assert reference is not None
    assert COUNCIL in handed.text
    rows = store.escalations()
    assert len(rows) == 1
    row = rows[0]
    assert row["ref"] == reference.group(0)
    assert row["platform"] == "test"
    assert row["user"] == "resident-1"
    assert row["topic"] == "council-tax"
    assert row["question"] == "how do I pay my council tax"
    assert row["urgent"] == 0
    assert row["status"] == "open"


def test_escalation_after_clarify_keeps_the_original_question(say: Say, store: Store) -> None:
    # The officer must see what the resident asked, not the "1" that picked an option.
    _clarify(say)
    say("1")
    say("that didn't help")
    handed = say("yes")
    assert handed.action == "escalate"
    (row,) = store.escalations()
    assert row["question"] == "bin collection"
    assert row["topic"] == "waste"


@pytest.mark.parametrize("text", ["talk to a person", "Can I speak to a human please?"])
def test_talk_to_a_person_escalates(say: Say, store: Store, text: str) -> None:
    outcome = say(text)
    assert outcome.action == "escalate"
    assert outcome.intent == HANDOFF
    assert REFERENCE.search(outcome.text)
    assert PHONE in outcome.text
    (row,) = store.escalations()
    assert row["intent"] == HANDOFF
    assert row["urgent"] == 0
    assert row["ref"] in outcome.text


def test_unmatched_question_is_escalated_with_its_text(say: Say, store: Store) -> None:
    question = "What's the capital of Australia?"
    outcome = say(question)
    assert outcome.action == "escalate"
    assert outcome.intent is None
    (row,) = store.escalations()
    assert row["question"] == question
    assert row["ref"] in outcome.text
    assert row["topic"] == "general"


def test_references_are_unique(say: Say, store: Store) -> None:
    for n in range(5):
        say(f"unrelated question number {n} about zebras", user=f"resident-{n}")
    refs = [r["ref"] for r in store.escalations()]
    assert len(refs) == len(set(refs)) == 5


@pytest.mark.parametrize("text", ["I want to kill myself", "thinking of ending my life", "hi, i feel suicidal"])
def test_safety_message_is_urgent(say: Say, store: Store, text: str) -> None:
    outcome = say(text)
    assert outcome.action == "answer"
    assert outcome.intent == "safety.self-harm"
    assert outcome.urgent is True
    assert "116 123" in outcome.text
    assert "01632 960999" in outcome.text  # default out-of-hours number, filled in
    (row,) = store.escalations()
    assert row["urgent"] == 1
    assert row["intent"] == "safety.self-harm"
    assert row["topic"] == "safeguarding"
    assert row["question"] == text
    assert row["ref"] in outcome.text


def test_safety_wins_while_options_are_pending(say: Say, store: Store) -> None:
    _clarify(say)
    outcome = say("i want to kill myself")
    assert outcome.urgent is True
    assert outcome.intent == "safety.self-harm"
    assert [r["urgent"] for r in store.escalations()] == [1]


# -- awkward input ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "actions"),
    [
        ("", {"clarify"}),
        ("   \n\t  ", {"clarify"}),
        ("x" * 20_000, {"clarify"}),
        ("bin " * 5_000, {"clarify"}),
        ("\x00", {"clarify"}),
        ("\x00\x01\x02\x1b[0m", {"clarify", "escalate"}),
        ("hello\x00 there", {"answer"}),
        ("\U0001f642\U0001f44d", {"clarify"}),
        ("\U0001f5d1\ufe0f\u2753", {"clarify"}),
        ("Pryd mae fy miniau\u2019n cael eu casglu?", {"escalate", "clarify"}),
        ("Sut ydw i\u2019n talu treth y cyngor?", {"escalate", "clarify", "answer"}),
        ("\u00bfCu\u00e1ndo recogen la basura?", {"escalate", "clarify"}),
        (
            "\u0645\u062a\u0649 \u064a\u062a\u0645 \u062c\u0645\u0639 \u0627\u0644\u0642\u0645\u0627\u0645\u0629",
            {"escalate"},
        ),
        ("\u6211\u7684\u5783\u573e\u6876\u4ec0\u4e48\u65f6\u5019\u6536", {"escalate"}),
        ("\ud800 broken surrogate", {"escalate", "clarify"}),
    ],
)
def test_awkward_messages_never_raise(say: Say, store: Store, text: str, actions: set[str]) -> None:
    outcome = say(text)
    assert outcome.action in actions
    if outcome.action == "escalate":
        (row,) = store.escalations()
        assert row["question"]
    if len(clean(text)) > 4000:
        assert outcome.replies[-1].text == replies.too_long(len(clean(text)), 4000)
    assert "\x00" not in outcome.text


def test_empty_message_gets_the_empty_reply(say: Say, store: Store) -> None:
    assert say("").replies[-1].text == replies.empty()
    assert say("\U0001f642").text == replies.empty()
    assert store.escalations() == []


def test_awkward_input_keeps_pending_options(say: Say) -> None:
    asked = _clarify(say)
    say("")
    say("x" * 20_000)
    assert say("2").intent == asked.options[1]


# -- the store -------------------------------------------------------------------


def test_duplicate_event_is_answered_once(engine: Engine, store: Store) -> None:
    message = IncomingMessage("test", "resident-1", "what is the capital of australia", event_id="evt-42")
    first = engine.handle(message)
    assert first is not None and first.action == "escalate"
    before = counts(store)
    assert engine.handle(message) is None
    assert counts(store) == before
    assert before["escalations"] == 1
    assert before["inbox"] == 1
    # The same event id on another platform is a different event.
    assert engine.handle(IncomingMessage("other", "resident-1", "hello", event_id="evt-42")) is not None


def test_messages_without_event_id_are_all_handled(engine: Engine, store: Store) -> None:
    for _ in range(2):
        assert engine.handle(IncomingMessage("test", "u", "hello")) is not None
    assert store.db["messages"].count == 4


@pytest.mark.parametrize("text", ["hello", "bin collection", "i want to kill myself", "capital of australia", ""])
def test_preview_writes_nothing(engine: Engine, store: Store, config: Config, text: str) -> None:
    engine.handle(IncomingMessage("test", "u", "hello", event_id="seed"))
    before = counts(store)
    state_before = store.state("test", "u")
    kb_path = config.path(config.storage.knowledge_db)
    kb_bytes = kb_path.read_bytes()
    outcome = engine.preview(text)
    assert outcome.action in ("answer", "clarify", "escalate")
    assert outcome.text
    assert counts(store) == before
    assert store.state("test", "u") == state_before
    assert kb_path.read_bytes() == kb_bytes


def test_preview_without_store(kb: KnowledgeBase, config: Config) -> None:
    engine = Engine(kb, make_matcher(kb, config), config)
    assert engine.preview("hello").intent == "smalltalk.greeting"
    assert engine.preview("i want to kill myself").urgent is True
    with pytest.raises(RuntimeError):
        engine.handle(IncomingMessage("test", "u", "hello"))


def test_state_db_is_private(engine: Engine, store: Store, config: Config) -> None:
    engine.handle(IncomingMessage("test", "u", "hello", event_id="1"))
    path = config.path(config.storage.state_db)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for sidecar in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if sidecar.exists():
            assert stat.S_IMODE(os.stat(sidecar).st_mode) & 0o077 == 0, sidecar


def test_state_db_reopens_with_state(engine: Engine, store: Store, config: Config, kb: KnowledgeBase) -> None:
    asked = engine.handle(IncomingMessage("test", "u", "bin collection", event_id="1"))
    assert asked is not None and asked.action == "clarify"
    store.close()
    reopened = Store(config.path(config.storage.state_db))
    try:
        again = Engine(kb, make_matcher(kb, config), config, reopened)
        chosen = again.handle(IncomingMessage("test", "u", "1", event_id="2"))
        assert chosen is not None and chosen.intent == asked.options[0]
        assert again.handle(IncomingMessage("test", "u", "1", event_id="1")) is None
        assert reopened.db["migrations"].count == len(MIGRATIONS)
    finally:
        reopened.close()
