"""Shared fixtures for the escalation tests: a clock the test moves, a small
rota of officers, a small knowledge base built in tmp_path, and an engine
over a state.db in tmp_path.

Fixture names are chosen not to collide with the module-level fixtures of
the older test files (``config``, ``kb``, ``store``, ``engine``, ``say``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Config, parse
from bot.engine import Engine
from bot.escalations import Desk
from bot.messages import IncomingMessage, Outcome, OutgoingMessage
from bot.store import Store
from bot.wiring import make_matcher
from knowledge import build
from knowledge.base import KnowledgeBase
from knowledge.content import Content, Entry

MONDAY_10 = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
"""Monday 15 January 2024, 10:00 in London (GMT, so the same as UTC)."""

SATURDAY_03 = datetime(2024, 1, 20, 3, 0, tzinfo=UTC)
"""Saturday 20 January 2024, 03:00 in London: nobody's working hours but safeguarding's."""

COUNCIL = "Testshire Council"
PHONE = "01632 123456"
RESIDENT_PLATFORM = "web"

OFFICERS = [
    {
        "id": "duty",
        "name": "Dana Price",
        "role": "Customer Services duty officer",
        "topics": ["general"],
        "contact": "cli",
        "hours": "Mon-Fri 09:00-17:00",
        "backup": "lead",
    },
    {
        "id": "waste",
        "name": "Wyn Jones",
        "role": "Waste Services officer",
        "topics": ["waste"],
        "contact": "cli",
        "hours": "Mon-Fri 09:00-17:00",
        "backup": "duty",
    },
    {
        "id": "tax",
        "name": "Tara Khan",
        "role": "Council Tax officer",
        "topics": ["council-tax"],
        "contact": "cli",
        "hours": "Mon-Fri 09:00-17:00",
        "backup": "duty",
    },
    {
        "id": "safe",
        "name": "Sol Reid",
        "role": "Safeguarding lead",
        "topics": ["safeguarding"],
        "contact": "cli",
        "hours": "Mon-Sun 00:00-23:59",
        "backup": "duty",
    },
    {
        "id": "lead",
        "name": "Lee Grant",
        "role": "Team leader",
        "topics": [],
        "contact": "cli",
        "hours": "Mon-Fri 09:00-17:00",
        "backup": "duty",
        "sees_all": True,
    },
]

ESCALATION = {
    "default_officer": "duty",
    "safeguarding_officer": "safe",
    "reply_within_hours": 16,
    "remind_after_hours": 4,
    "reassign_after_hours": 8,
    "timezone": "Europe/London",
}


def config_data(**sections: object) -> dict:
    """Configuration as parsed TOML: the test council, the rota above, overrides on top."""
    data: dict = {
        "council": {"name": COUNCIL, "phone": PHONE},
        "storage": {"knowledge_db": "data/knowledge.db", "state_db": "data/state.db"},
        "escalation": dict(ESCALATION),
        "officers": [dict(o) for o in OFFICERS],
    }
    data.update(sections)
    return data


def entry(entry_id: str, kind: str, topic: str, questions: list[str], answer: str, title: str = "") -> Entry:
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
    entry("smalltalk.greeting", "smalltalk", "general", ["hi", "hello", "good morning", "hiya there"], "Hello!"),
    entry(
        "service.bins.missed",
        "faq",
        "waste",
        ["bin collection missed", "my bin was missed", "the bin men skipped my street", "report a missed bin"],
        "Report a missed bin at {page.missed_bin}.",
        title="Missed bin",
    ),
    entry(
        "service.counciltax.pay",
        "faq",
        "council-tax",
        ["how do I pay my council tax", "pay council tax online", "council tax payment", "pay council tax by card"],
        "Pay at {page.council_tax_pay}.",
        title="Paying council tax",
    ),
    entry(
        "route.waste.commercial",
        "route",
        "waste",
        [
            "commercial waste collection contract",
            "trade waste for my shop",
            "business rubbish collection contract",
            "skip for trade waste from my cafe",
        ],
        "Trade waste is arranged by our waste team.",
        title="Trade waste",
    ),
    entry(
        "route.licensing.taxi",
        "route",
        "licensing",
        [
            "taxi driver licence",
            "how do i become a taxi driver",
            "private hire driver badge application",
            "renewing my hackney carriage licence",
        ],
        "Taxi licences are dealt with by our licensing team.",
        title="Taxi licensing",
    ),
    entry(
        "handoff.human",
        "handoff",
        "general",
        ["talk to a person", "speak to a human", "can I talk to someone real", "put me through to an advisor"],
        "I will pass you to a person.",
        title="Talk to a person",
    ),
    entry(
        "safety.self-harm",
        "safety",
        "safeguarding",
        ["i want to hurt myself", "i feel suicidal", "thinking of ending my life", "i cant cope any more"],
        "Please call Samaritans on 116 123, or our out of hours line {council.out_of_hours_phone}.",
        title="Urgent help",
    ),
]

UNMATCHED = "What is the capital of Australia?"
TRADE_WASTE = "I need a commercial waste collection contract for my shop"
TAXI = "how do i become a taxi driver"
SELF_HARM = "i feel suicidal"


class Clock:
    """A clock the test moves by hand: call it for the time, set or advance ``now``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


class Recorder:
    """A fake platform sender that keeps what it was given."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    def __call__(self, message: OutgoingMessage) -> None:
        self.sent.append(message)


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY_10)


@pytest.fixture
def rota(tmp_path: Path) -> Config:
    return parse(config_data(), "test", tmp_path)


@pytest.fixture(scope="session")
def kb_small(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    """Built once: the knowledge base is read-only at run time."""
    target = tmp_path_factory.mktemp("kb") / "knowledge.db"
    build.build(Content(list(ENTRIES), {"rubbish": "bin"}), target)
    return KnowledgeBase(target)


@pytest.fixture
def state_path(rota: Config) -> Path:
    return rota.path(rota.storage.state_db)


@pytest.fixture
def state(state_path: Path) -> Iterator[Store]:
    store = Store(state_path)
    yield store
    store.close()


@pytest.fixture
def bot(kb_small: KnowledgeBase, rota: Config, state: Store, clock: Clock) -> Engine:
    return Engine(kb_small, make_matcher(kb_small, rota), rota, state, clock=clock)


@pytest.fixture
def desk(state: Store, rota: Config, clock: Clock) -> Desk:
    return Desk(state, rota, clock)


Talk = Callable[..., Outcome]


@pytest.fixture
def talk(bot: Engine) -> Talk:
    """Send one message from a resident on the web chat; every call is a new event."""
    counter = itertools.count(1)

    def send(text: str, user: str = "res-1", conversation: str | None = None) -> Outcome:
        message = IncomingMessage(
            RESIDENT_PLATFORM, user, text, conversation=conversation or f"chat-{user}", event_id=f"ev{next(counter)}"
        )
        outcome = bot.handle(message)
        assert outcome is not None
        return outcome

    return send


def outbox(store: Store, **where: str) -> list[dict]:
    """Outbox rows, oldest first, optionally filtered by column values."""
    rows = list(store.db.query("select * from outbox order by id"))
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


@pytest.fixture
def outbox_rows() -> Callable[..., list[dict]]:
    return outbox
