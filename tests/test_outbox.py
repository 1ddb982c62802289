"""bot.outbox: messages owed to other people are kept until delivered, exactly once."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import TRADE_WASTE, UNMATCHED, Clock, Recorder

from bot import escalations as escalations_module
from bot.config import Config
from bot.engine import Engine
from bot.escalations import Desk
from bot.messages import IncomingMessage, Option, OutgoingMessage
from bot.officer_cli import cli_sender
from bot.outbox import MAX_ATTEMPTS, DeliveryError, Dispatcher, as_message, enqueue, problems, retry
from bot.store import Store
from bot.wiring import make_matcher
from knowledge.base import KnowledgeBase


class Flaky:
    """A sender that raises the given errors in turn, then delivers."""

    def __init__(self, *errors: DeliveryError | Exception) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.sent: list[OutgoingMessage] = []

    def __call__(self, message: OutgoingMessage) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(message)


class Down:
    """A sender whose platform is always down."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, message: OutgoingMessage) -> None:
        self.calls += 1
        raise DeliveryError("503 service unavailable")


def row(store: Store, row_id: int) -> dict:
    (found,) = store.db.query("select * from outbox where id = ?", [row_id])
    return found


def put(store: Store, clock: Clock, platform: str = "slack", conversation: str = "U0WASTE1", text: str = "hi") -> int:
    with store.transaction():
        return enqueue(store, OutgoingMessage(platform, conversation, text), "notify", "CB-TEST23", clock())


# -- enqueue ---------------------------------------------------------------------------------


def test_enqueue_keeps_the_whole_message(state: Store, clock: Clock) -> None:
    message = OutgoingMessage("telegram", "-100200", "Choose one", (Option("a.b", "First"), Option("c", "Second")))
    with state.transaction():
        row_id = enqueue(state, message, "relay", "CB-ABCDEF", clock())
    stored = row(state, row_id)
    assert stored["status"] == "pending"
    assert stored["attempts"] == 0
    assert (stored["purpose"], stored["ref"]) == ("relay", "CB-ABCDEF")
    assert datetime.fromisoformat(stored["next_attempt_at"]) == clock.now
    assert as_message(stored) == dataclasses.replace(message, purpose="relay", ref="CB-ABCDEF")


def test_nothing_is_enqueued_when_the_change_fails(
    kb_small: KnowledgeBase, rota: Config, state: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine(kb_small, make_matcher(kb_small, rota), rota, state, clock=clock)
    message = IncomingMessage("web", "res-1", UNMATCHED, conversation="chat-res-1", event_id="evt-1")

    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(escalations_module, "enqueue", broken)
    with pytest.raises(RuntimeError):
        engine.handle(message)
    for table in ("escalations", "outbox", "escalation_notes", "inbox", "messages"):
        assert state.db[table].count == 0, table
    monkeypatch.undo()
    # The platform's retry of the same event is answered this time, once.
    outcome = engine.handle(message)
    assert outcome is not None and outcome.action == "escalate"
    assert state.db["escalations"].count == 1
    assert state.db["outbox"].count == 1


# -- exactly once across a crash -----------------------------------------------------------------


def test_crash_between_commit_and_send_delivers_exactly_once(
    kb_small: KnowledgeBase, rota: Config, state_path: Path, clock: Clock
) -> None:
    store = Store(state_path)
    engine = Engine(kb_small, make_matcher(kb_small, rota), rota, store, clock=clock)
    first = engine.handle(IncomingMessage("web", "res-1", UNMATCHED, conversation="chat-1", event_id="a"))
    second = engine.handle(IncomingMessage("web", "res-2", TRADE_WASTE, conversation="chat-2", event_id="b"))
    assert first is not None and second is not None
    desk = Desk(store, rota, clock)
    desk.reply(first.reference, "duty", "Canberra.")
    store.close()  # the process dies here: committed, nothing sent yet

    clock.advance(minutes=5)
    store = Store(state_path)
    try:
        assert store.db["outbox"].count == 3
        web = Recorder()
        officers = Recorder()
        dispatcher = Dispatcher(store, {"cli": officers, "web": web}, clock)
        assert dispatcher.run_once() == 3
        assert sorted(m.conversation for m in officers.sent) == ["duty", "waste"]
        assert [m.conversation for m in web.sent] == ["chat-1"]
        assert "Canberra." in web.sent[0].text
        assert dispatcher.run_once() == 0
        clock.advance(hours=1)
        assert dispatcher.run_once() == 0
    finally:
        store.close()

    store = Store(state_path)  # and a second restart sends nothing again
    try:
        again = Recorder()
        assert Dispatcher(store, {"cli": again, "web": again}, clock).run_once() == 0
        assert again.sent == []
        statuses = [(r["status"], r["attempts"]) for r in store.db.query("select * from outbox")]
        assert statuses == [("sent", 1)] * 3
    finally:
        store.close()
    assert len(officers.sent) + len(web.sent) == 3


def test_two_dispatchers_at_once_send_each_message_once(state: Store, state_path: Path, clock: Clock) -> None:
    # Two officers run a command at the same moment: each command delivers the inbox.
    # The second dispatcher starts while the first is still sending.
    row_id = put(state, clock, platform="cli", conversation="waste", text="New question CB-TEST23")
    other = Store(state_path)
    try:
        second = Recorder()
        overlapping = Dispatcher(other, {"cli": second}, clock)
        first: list[OutgoingMessage] = []

        def slow_send(message: OutgoingMessage) -> None:
            # The other command (another process in life) runs while this send is in progress.
            other_command = threading.Thread(target=overlapping.run_once)
            other_command.start()
            other_command.join()
            first.append(message)

        Dispatcher(state, {"cli": slow_send}, clock).run_once()
        assert len(first) + len(second.sent) == 1, (first, second.sent)
        assert row(state, row_id)["status"] == "sent"
    finally:
        other.close()


def test_cli_sender_fills_the_officer_inbox(state: Store, clock: Clock) -> None:
    row_id = put(state, clock, platform="cli", conversation="waste", text="New question CB-TEST23")
    assert Dispatcher(state, {"cli": cli_sender(state, clock)}, clock).run_once() == 1
    (delivered,) = state.db.query("select * from officer_inbox")
    assert (delivered["officer"], delivered["text"], delivered["read"]) == ("waste", "New question CB-TEST23", 0)
    assert row(state, row_id)["status"] == "sent"


# -- retries -------------------------------------------------------------------------------------


def test_five_failures_then_success_with_back_off(state: Store, clock: Clock) -> None:
    flaky = Flaky(*(DeliveryError(f"503 number {n}") for n in range(1, 6)))
    row_id = put(state, clock)
    dispatcher = Dispatcher(state, {"slack": flaky}, clock)
    waits = []
    for attempt in range(1, 6):
        assert dispatcher.run_once() == 0
        assert flaky.calls == attempt
        stored = row(state, row_id)
        assert stored["status"] == "pending"
        assert stored["attempts"] == attempt
        assert f"503 number {attempt}" in stored["last_error"]
        due = datetime.fromisoformat(stored["next_attempt_at"])
        waits.append(due - clock.now)
        assert due > clock.now
        # Before the back-off is over nothing is tried again.
        assert dispatcher.run_once() == 0
        clock.now = due - timedelta(seconds=0.5)
        assert dispatcher.run_once() == 0
        assert flaky.calls == attempt
        clock.now = due
    assert dispatcher.run_once() == 1  # the sixth attempt
    assert flaky.calls == 6
    assert len(flaky.sent) == 1
    stored = row(state, row_id)
    assert (stored["status"], stored["attempts"], stored["last_error"]) == ("sent", 6, "")
    assert datetime.fromisoformat(stored["sent_at"]) == clock.now
    assert all(later == 2 * earlier for earlier, later in itertools.pairwise(waits)), waits
    clock.advance(days=1)
    assert dispatcher.run_once() == 0
    assert flaky.calls == 6


def test_retry_after_is_honoured(state: Store, clock: Clock) -> None:
    flaky = Flaky(DeliveryError("429 too many requests", retry_after=90))
    row_id = put(state, clock)
    dispatcher = Dispatcher(state, {"slack": flaky}, clock)
    start = clock.now
    assert dispatcher.run_once() == 0
    assert datetime.fromisoformat(row(state, row_id)["next_attempt_at"]) == start + timedelta(seconds=90)
    clock.now = start + timedelta(seconds=89)
    assert dispatcher.run_once() == 0
    assert flaky.calls == 1
    clock.now = start + timedelta(seconds=90)
    assert dispatcher.run_once() == 1
    assert flaky.calls == 2


def test_long_retry_after_beats_the_usual_back_off(state: Store, clock: Clock) -> None:
    flaky = Flaky(DeliveryError("429", retry_after=3600))
    put(state, clock)
    dispatcher = Dispatcher(state, {"slack": flaky}, clock)
    dispatcher.run_once()
    clock.advance(minutes=59)
    assert dispatcher.run_once() == 0
    clock.advance(minutes=1)
    assert dispatcher.run_once() == 1


def test_permanent_error_blocks_and_is_not_retried(state: Store, clock: Clock) -> None:
    flaky = Flaky(DeliveryError("403 bot was blocked by the user", permanent=True))
    row_id = put(state, clock, platform="telegram", conversation="123")
    dispatcher = Dispatcher(state, {"telegram": flaky}, clock)
    assert dispatcher.run_once() == 0
    stored = row(state, row_id)
    assert stored["status"] == "blocked"
    assert stored["attempts"] == 1
    assert "blocked by the user" in stored["last_error"]
    for days in (1, 7, 30):
        clock.advance(days=days)
        assert dispatcher.run_once() == 0
    assert flaky.calls == 1
    assert [p["id"] for p in problems(state)] == [row_id]
    # An officer can put it back once the resident unblocks the bot.
    assert retry(state, row_id, clock.now) is True
    assert dispatcher.run_once() == 1
    assert row(state, row_id)["status"] == "sent"
    assert problems(state) == []


def test_failed_after_max_attempts_then_requeued(state: Store, clock: Clock) -> None:
    down = Down()
    row_id = put(state, clock)
    dispatcher = Dispatcher(state, {"slack": down}, clock)
    for _ in range(MAX_ATTEMPTS + 3):
        dispatcher.run_once()
        clock.advance(hours=1)
    assert down.calls == MAX_ATTEMPTS
    stored = row(state, row_id)
    assert stored["status"] == "failed"
    assert stored["attempts"] == MAX_ATTEMPTS
    assert "503" in stored["last_error"]
    (problem,) = problems(state)
    assert problem["id"] == row_id
    assert dispatcher.run_once() == 0

    assert retry(state, row_id, clock.now) is True
    requeued = row(state, row_id)
    assert (requeued["status"], requeued["attempts"]) == ("pending", 0)
    assert problems(state) == []
    working = Recorder()
    assert Dispatcher(state, {"slack": working}, clock).run_once() == 1
    assert [m.text for m in working.sent] == ["hi"]
    assert retry(state, row_id, clock.now) is False  # already delivered
    assert retry(state, 9999, clock.now) is False


def test_max_attempts_can_be_set(state: Store, clock: Clock) -> None:
    down = Down()
    row_id = put(state, clock)
    dispatcher = Dispatcher(state, {"slack": down}, clock, max_attempts=3)
    for _ in range(6):
        dispatcher.run_once()
        clock.advance(hours=1)
    assert down.calls == 3
    assert row(state, row_id)["status"] == "failed"


def test_a_broken_sender_does_not_stop_the_others(state: Store, clock: Clock) -> None:
    first = put(state, clock, platform="slack", text="one")
    second = put(state, clock, platform="telegram", conversation="42", text="two")
    fine = Recorder()
    broken = Flaky(KeyError("token"))
    dispatcher = Dispatcher(state, {"slack": broken, "telegram": fine}, clock)
    assert dispatcher.run_once() == 1
    assert [m.text for m in fine.sent] == ["two"]
    assert row(state, first)["status"] == "pending"
    assert "KeyError" in row(state, first)["last_error"]
    assert row(state, second)["status"] == "sent"


def test_dispatcher_serves_only_its_platforms_and_conversation(state: Store, clock: Clock) -> None:
    slack_row = put(state, clock, platform="slack")
    mine = put(state, clock, platform="terminal", conversation="alice", text="for alice")
    theirs = put(state, clock, platform="terminal", conversation="bob", text="for bob")
    seen = Recorder()
    assert Dispatcher(state, {"terminal": seen}, clock, conversation="alice").run_once() == 1
    assert [m.text for m in seen.sent] == ["for alice"]
    assert row(state, mine)["status"] == "sent"
    assert row(state, theirs)["status"] == "pending"
    assert row(state, slack_row)["status"] == "pending"
    assert Dispatcher(state, {}, clock).run_once() == 0
    assert problems(state) == []  # waiting for a platform is not a problem


def test_messages_are_sent_in_order(state: Store, clock: Clock) -> None:
    for n in range(5):
        put(state, clock, text=f"message {n}")
    seen = Recorder()
    assert Dispatcher(state, {"slack": seen}, clock).run_once() == 5
    assert [m.text for m in seen.sent] == [f"message {n}" for n in range(5)]


def test_future_rows_wait_for_their_time(state: Store, clock: Clock) -> None:
    with state.transaction():
        row_id = enqueue(state, OutgoingMessage("slack", "U1", "later"), "notify", "", clock.now + timedelta(hours=1))
    seen = Recorder()
    dispatcher = Dispatcher(state, {"slack": seen}, clock)
    assert dispatcher.run_once() == 0
    clock.advance(hours=1)
    assert dispatcher.run_once() == 1
    assert row(state, row_id)["status"] == "sent"
