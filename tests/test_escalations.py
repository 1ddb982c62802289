"""bot.escalations: the life of an escalation, driven by the engine, officers and the clock."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import (
    MONDAY_10,
    OFFICERS,
    SATURDAY_03,
    SELF_HARM,
    TRADE_WASTE,
    UNMATCHED,
    Clock,
    Recorder,
    Talk,
    config_data,
    outbox,
)

from bot import replies
from bot.config import Config, parse
from bot.engine import Engine
from bot.escalations import Desk, DeskError
from bot.messages import IncomingMessage
from bot.officer_cli import cli_sender
from bot.outbox import Dispatcher
from bot.store import Store

REFERENCE = re.compile(r"^CB-[A-HJ-NP-Z2-9]{6}$")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in the week of Monday 15 January 2024 (London is on GMT, so UTC)."""
    return datetime(2024, 1, day, hour, minute, tzinfo=UTC)


def escalation(store: Store, ref: str) -> dict:
    (row,) = store.db.query("select * from escalations where ref = ?", [ref])
    return row


def notes(store: Store, ref: str) -> list[dict]:
    return list(store.db.query("select * from escalation_notes where ref = ? order by id", [ref]))


def count(store: Store, table: str) -> int:
    return store.db[table].count


# -- the whole life ------------------------------------------------------------------------


def test_whole_life_of_an_escalation(talk: Talk, state: Store, desk: Desk, clock: Clock) -> None:
    # A question the bot cannot answer: passed to the named duty officer.
    outcome = talk(UNMATCHED)
    assert outcome.action == "escalate"
    assert outcome.officer == "duty"
    ref = outcome.reference
    assert ref is not None and REFERENCE.match(ref)
    assert "Dana Price" in outcome.text
    assert "Customer Services duty officer" in outcome.text
    assert ref in outcome.text
    assert "by 10am on Wednesday 17 January" in outcome.text  # 16 working hours from Monday 10:00

    row = escalation(state, ref)
    assert row["status"] == "open"
    assert row["officer"] == "duty"
    assert (row["platform"], row["user"], row["conversation"]) == ("web", "res-1", "chat-res-1")
    assert row["question"] == UNMATCHED
    assert row["urgent"] == 0
    assert datetime.fromisoformat(row["due_at"]) == at(17, 10)

    (notify,) = outbox(state)
    assert notify["purpose"] == "notify"
    assert (notify["platform"], notify["conversation"], notify["ref"]) == ("cli", "duty", ref)
    assert notify["status"] == "pending"
    assert UNMATCHED in notify["text"] and ref in notify["text"]

    # The command-line inbox receives the notification.
    inbox = Dispatcher(state, {"cli": cli_sender(state, clock)}, clock)
    assert inbox.run_once() == 1
    (delivered,) = state.db.query("select * from officer_inbox")
    assert delivered["officer"] == "duty"
    assert ref in delivered["text"] and UNMATCHED in delivered["text"]
    assert delivered["read"] == 0
    assert outbox(state)[0]["status"] == "sent"
    assert inbox.run_once() == 0

    # The officer claims it and replies; the reply goes to the resident's chat.
    clock.advance(minutes=20)
    claimed = desk.claim(ref, "duty")
    assert (claimed["status"], claimed["claimed_by"]) == ("claimed", "duty")
    clock.advance(minutes=20)
    answered = desk.reply(ref, "duty", "The capital of Australia is Canberra.")
    assert answered["status"] == "answered"
    (relay,) = outbox(state, purpose="relay")
    assert (relay["platform"], relay["conversation"], relay["ref"]) == ("web", "chat-res-1", ref)
    assert relay["text"].startswith("Dana Price")
    assert "Canberra" in relay["text"]

    web = Recorder()
    assert Dispatcher(state, {"web": web}, clock).run_once() == 1
    (sent,) = web.sent
    assert (sent.platform, sent.conversation) == ("web", "chat-res-1")
    assert sent.text == relay["text"]
    assert outbox(state, purpose="relay")[0]["status"] == "sent"

    # Closed with a note.
    clock.advance(minutes=5)
    closed = desk.close(ref, "duty", "Answered; nothing more to do.")
    assert closed["status"] == "closed"
    assert closed["close_note"] == "Answered; nothing more to do."
    assert datetime.fromisoformat(closed["closed_at"]) == clock.now
    assert [n["kind"] for n in notes(state, ref)] == ["question", "claim", "reply", "close"]
    assert desk.visible("duty") == []
    assert [r["ref"] for r in desk.visible("duty", "closed")] == [ref]


def test_preview_plans_but_writes_nothing(bot: Engine, state: Store) -> None:
    outcome = bot.preview(UNMATCHED)
    assert outcome.action == "escalate"
    assert outcome.officer == "duty"
    assert "Dana Price" in outcome.text
    assert count(state, "escalations") == 0
    assert count(state, "outbox") == 0


def test_notification_carries_the_conversation_so_far(talk: Talk, state: Store) -> None:
    talk("hello")
    ref = talk(UNMATCHED).reference
    (notify,) = outbox(state, purpose="notify", ref=ref)
    assert "resident: hello" in notify["text"]
    assert "bot: Hello!" in notify["text"]


# -- the resident while it is open ------------------------------------------------------------


def test_follow_up_is_added_not_a_new_escalation(talk: Talk, state: Store) -> None:
    ref = talk(UNMATCHED).reference
    follow = talk("It is for my daughter's school project about Oceania")
    assert ref in follow.text
    assert "Dana Price" in follow.text
    assert count(state, "escalations") == 1
    added = notes(state, ref)
    assert [(n["author"], n["kind"]) for n in added] == [("resident", "question"), ("resident", "detail")]
    assert added[1]["text"] == "It is for my daughter's school project about Oceania"
    last = outbox(state, purpose="notify")[-1]
    assert (last["conversation"], last["ref"]) == ("duty", ref)
    assert "school project" in last["text"]


def test_asking_for_a_person_again_adds_to_the_open_one(talk: Talk, state: Store) -> None:
    ref = talk(UNMATCHED).reference
    again = talk("talk to a person")
    assert ref in again.text
    assert count(state, "escalations") == 1
    assert [n["kind"] for n in notes(state, ref)] == ["question", "detail"]


def test_a_safety_message_is_never_swallowed_as_detail(talk: Talk, state: Store) -> None:
    first = talk(UNMATCHED).reference
    urgent = talk(SELF_HARM)
    assert urgent.urgent is True
    assert urgent.reference not in (None, first)
    assert escalation(state, urgent.reference)["urgent"] == 1
    assert [n["kind"] for n in notes(state, first)] == ["question"]


def test_ordinary_questions_are_still_answered_while_open(talk: Talk, state: Store) -> None:
    ref = talk(UNMATCHED).reference
    assert talk("hello").text == "Hello!"
    assert [n["kind"] for n in notes(state, ref)] == ["question"]


@pytest.mark.parametrize("text", ["any update?", "Any news?", "is there an update on my question", "update"])
def test_any_update_gives_the_status(talk: Talk, state: Store, text: str) -> None:
    ref = talk(UNMATCHED).reference
    before = (count(state, "escalations"), count(state, "outbox"), len(notes(state, ref)))
    status = talk(text)
    assert status.action == "answer"
    assert ref in status.text
    assert "Dana Price" in status.text
    assert "by 10am on Wednesday 17 January" in status.text
    assert (count(state, "escalations"), count(state, "outbox"), len(notes(state, ref))) == before


def test_status_follows_the_escalation(talk: Talk, desk: Desk, clock: Clock) -> None:
    ref = talk(UNMATCHED).reference
    assert "waiting for Dana Price" in talk("any update?").text
    clock.advance(days=1)  # Tuesday: the reply is now due "tomorrow"
    waiting = talk("any update?").text
    assert "waiting for Dana Price" in waiting and "by 10am tomorrow" in waiting
    desk.claim(ref, "duty")
    working = talk("any update?").text
    assert "Dana Price" in working and "working on" in working and "by 10am tomorrow" in working
    desk.reply(ref, "duty", "Canberra.")
    assert "has replied" in talk("any update?").text
    desk.close(ref, "duty", "done")
    assert "closed" in talk(f"any update on {ref}?").text


@pytest.mark.parametrize("form", ["{ref}", "{lower}", "{bare}"])
def test_any_update_on_a_reference(talk: Talk, state: Store, form: str) -> None:
    ref = talk(UNMATCHED).reference
    asked = form.format(ref=ref, lower=ref.lower(), bare=ref.replace("-", ""))
    status = talk(f"any update on {asked} please")
    assert status.action == "answer"
    assert ref in status.text
    assert "Dana Price" in status.text
    assert count(state, "escalations") == 1


def test_another_persons_reference_is_not_revealed(talk: Talk, state: Store) -> None:
    theirs = talk(TRADE_WASTE, user="res-1").reference
    mine = talk(UNMATCHED, user="res-2").reference
    before = count(state, "outbox")
    answer = talk(f"any update on {theirs}?", user="res-2")
    assert answer.text == replies.unknown_reference(theirs)
    assert "Wyn Jones" not in answer.text
    assert "waste" not in answer.text.lower()
    assert count(state, "escalations") == 2
    assert count(state, "outbox") == before
    assert [n["kind"] for n in notes(state, theirs)] == ["question"]
    assert [n["kind"] for n in notes(state, mine)] == ["question"]


def test_same_user_on_another_platform_cannot_see_it(talk: Talk, bot: Engine) -> None:
    ref = talk(UNMATCHED, user="res-1").reference
    outcome = bot.handle(IncomingMessage("telegram", "res-1", f"any update on {ref}", event_id="t1"))
    assert outcome is not None
    assert outcome.replies[-1].text == replies.unknown_reference(ref)


def test_follow_up_quoting_the_reference_is_added(talk: Talk, state: Store) -> None:
    # People repeat the reference they were given when they add something.
    ref = talk(UNMATCHED).reference
    talk(f"Re {ref}: it is for my daughter's school project about Oceania")
    assert count(state, "escalations") == 1
    details = [n["text"] for n in notes(state, ref) if n["kind"] == "detail"]
    assert len(details) == 1 and "school project about Oceania" in details[0]
    assert any("school project" in n["text"] for n in outbox(state, purpose="notify", ref=ref))


@pytest.mark.parametrize(
    "form",
    ["{ref} i feel suicidal", "about {ref}, i want to hurt myself", "any update? i feel suicidal"],
    ids=["reference-first", "reference-inside", "update-question"],
)
def test_a_safety_message_with_a_reference_or_update_question_is_still_urgent(
    talk: Talk, state: Store, form: str
) -> None:
    ref = talk(UNMATCHED).reference
    outcome = talk(form.format(ref=ref))
    assert outcome.urgent is True
    assert "116 123" in outcome.text
    urgent = list(state.db.query("select * from escalations where urgent = 1"))
    assert len(urgent) == 1
    assert urgent[0]["officer"] == "safe"


def test_any_update_after_closing_gives_the_status_not_a_new_escalation(talk: Talk, desk: Desk, state: Store) -> None:
    ref = talk(UNMATCHED).reference
    desk.reply(ref, "duty", "Canberra.")
    desk.close(ref, "duty", "answered")
    before = (count(state, "escalations"), count(state, "outbox"))
    status = talk("any update?")
    assert ref in status.text
    assert "closed" in status.text
    assert (count(state, "escalations"), count(state, "outbox")) == before


def test_after_closing_a_new_question_is_a_new_escalation(talk: Talk, desk: Desk, state: Store) -> None:
    first = talk(UNMATCHED).reference
    desk.close(first, "duty", "answered by phone")
    second = talk("Who won the 1966 world cup final?")
    assert second.action == "escalate"
    assert second.reference not in (None, first)
    assert count(state, "escalations") == 2


def test_duplicate_event_is_not_answered_twice(bot: Engine, state: Store) -> None:
    message = IncomingMessage("web", "res-1", UNMATCHED, conversation="chat-res-1", event_id="evt-7")
    first = bot.handle(message)
    assert first is not None and first.action == "escalate"
    before = {t: count(state, t) for t in ("escalations", "outbox", "messages", "escalation_notes")}
    assert bot.handle(message) is None
    assert {t: count(state, t) for t in before} == before
    assert before["escalations"] == 1


# -- timers ----------------------------------------------------------------------------------


def test_reminder_after_working_hours_once_only(talk: Talk, desk: Desk, clock: Clock, state: Store) -> None:
    ref = talk(TRADE_WASTE).reference
    assert len(outbox(state, purpose="notify")) == 1
    clock.now = at(15, 13, 59)
    assert desk.tick() == []
    assert len(outbox(state, purpose="notify")) == 1
    clock.now = at(15, 14, 0)  # 4 working hours after Monday 10:00
    (line,) = desk.tick()
    assert ref in line and "waste" in line
    reminders = outbox(state, purpose="notify")
    assert len(reminders) == 2
    assert (reminders[-1]["platform"], reminders[-1]["conversation"], reminders[-1]["ref"]) == ("cli", "waste", ref)
    assert "Reminder" in reminders[-1]["text"]
    for later in (at(15, 14, 1), at(15, 14, 30), at(15, 16, 0)):
        clock.now = later
        assert desk.tick() == []
    assert len(outbox(state, purpose="notify")) == 2
    assert escalation(state, ref)["officer"] == "waste"


def test_reminder_counts_working_hours_only(talk: Talk, desk: Desk, clock: Clock, state: Store) -> None:
    clock.now = at(19, 15, 0)  # Friday 15:00: two hours left this week
    ref = talk(TRADE_WASTE).reference
    for moment in (at(19, 17, 0), at(20, 12, 0), at(21, 23, 0), at(22, 10, 59)):
        clock.now = moment
        assert desk.tick() == [], moment
    clock.now = at(22, 11, 0)  # Monday 11:00 is 4 working hours later
    (line,) = desk.tick()
    assert ref in line


def test_claimed_escalations_get_no_reminder_or_reassignment(
    talk: Talk, desk: Desk, clock: Clock, state: Store
) -> None:
    ref = talk(TRADE_WASTE).reference
    desk.claim(ref, "waste")
    before = count(state, "outbox")
    for moment in (at(15, 14), at(16, 10), at(18, 10)):
        clock.now = moment
        assert desk.tick() == []
    assert count(state, "outbox") == before
    assert escalation(state, ref)["officer"] == "waste"


def test_reassigned_to_the_backup_when_unclaimed(talk: Talk, desk: Desk, clock: Clock, state: Store) -> None:
    ref = talk(TRADE_WASTE).reference
    clock.now = at(15, 14)
    desk.tick()  # the reminder
    clock.now = at(16, 9, 59)
    assert desk.tick() == []
    assert escalation(state, ref)["officer"] == "waste"
    clock.now = at(16, 10)  # 8 working hours after Monday 10:00
    (line,) = desk.tick()
    assert ref in line and "duty" in line
    row = escalation(state, ref)
    assert row["officer"] == "duty"
    assert row["status"] == "open"
    assert row["claimed_by"] == ""
    assert row["reassigned_at"]
    last = outbox(state, purpose="notify")[-1]
    assert (last["platform"], last["conversation"], last["ref"]) == ("cli", "duty", ref)
    assert TRADE_WASTE in last["text"]
    # The reply time is unchanged (Wednesday 10:00 either way), so the resident is not bothered.
    assert outbox(state, purpose="update") == []
    assert datetime.fromisoformat(row["due_at"]) == at(17, 10)
    # The backup can now act on it.
    assert [r["ref"] for r in desk.visible("duty")] == [ref]
    assert desk.claim(ref, "duty")["claimed_by"] == "duty"


def test_resident_told_when_the_reply_time_changes(talk: Talk, desk: Desk, clock: Clock, state: Store) -> None:
    ref = talk(TRADE_WASTE).reference
    clock.now = at(16, 15)  # Tuesday 15:00: the tick ran late; half the reply time is left from now
    lines = desk.tick()
    assert any(ref in line and "duty" in line for line in lines)
    row = escalation(state, ref)
    assert row["officer"] == "duty"
    new_due = datetime.fromisoformat(row["due_at"])
    assert new_due > at(17, 10)
    (update,) = outbox(state, purpose="update")
    assert (update["platform"], update["conversation"], update["ref"]) == ("web", "chat-res-1", ref)
    assert "Dana Price" in update["text"]
    assert ref in update["text"]
    assert "by 3pm tomorrow" in update["text"]
    status = talk("any update?")
    assert "Dana Price" in status.text and "by 3pm tomorrow" in status.text
    web = Recorder()
    Dispatcher(state, {"web": web}, clock).run_once()
    assert [m.text for m in web.sent] == [update["text"]]


def test_backup_is_reminded_in_turn(talk: Talk, desk: Desk, clock: Clock, state: Store) -> None:
    ref = talk(TRADE_WASTE).reference
    clock.now = at(16, 10)
    desk.tick()
    assert escalation(state, ref)["officer"] == "duty"
    clock.now = at(16, 14)  # 4 working hours after the backup got it
    lines = desk.tick()
    assert any(ref in line and "duty" in line for line in lines)
    last = outbox(state, purpose="notify")[-1]
    assert last["conversation"] == "duty" and "Reminder" in last["text"]


def test_without_a_backup_it_stays_and_is_reminded_once(tmp_path: Path, talk: Talk, state: Store, clock: Clock) -> None:
    officers = [dict(o) for o in OFFICERS]
    officers[1]["backup"] = ""
    desk = Desk(state, parse(config_data(officers=officers), "test", tmp_path), clock)
    ref = talk(TRADE_WASTE).reference
    clock.now = at(17, 10)  # long after both timers
    (line,) = desk.tick()
    assert "remind" in line and ref in line
    clock.now = at(19, 10)
    assert desk.tick() == []
    row = escalation(state, ref)
    assert (row["officer"], row["status"]) == ("waste", "open")
    assert len(outbox(state, purpose="notify")) == 2


def test_timers_survive_a_restart(talk: Talk, state: Store, state_path: Path, rota: Config, clock: Clock) -> None:
    ref = talk(TRADE_WASTE).reference
    state.close()  # the bot stops

    clock.now = at(15, 14)
    store = Store(state_path)
    try:
        (line,) = Desk(store, rota, clock).tick()
        assert ref in line
        assert len(outbox(store, purpose="notify")) == 2
    finally:
        store.close()

    clock.now = at(16, 10)
    store = Store(state_path)
    try:
        desk = Desk(store, rota, clock)
        (line,) = desk.tick()
        assert ref in line and "duty" in line
        assert escalation(store, ref)["officer"] == "duty"
        assert desk.tick() == []
    finally:
        store.close()


def test_urgent_escalations_are_never_closed_automatically(talk: Talk, desk: Desk, clock: Clock, state: Store) -> None:
    clock.now = SATURDAY_03
    ref = talk(SELF_HARM).reference
    for hours in (1, 5, 24, 24 * 7, 24 * 60):
        clock.advance(hours=hours)
        desk.tick()
        assert escalation(state, ref)["status"] != "closed"
        assert escalation(state, ref)["closed_at"] == ""


@pytest.mark.parametrize("note", ["", "   ", "\n"])
def test_urgent_escalation_cannot_be_closed_without_a_note(
    talk: Talk, desk: Desk, clock: Clock, state: Store, note: str
) -> None:
    clock.now = SATURDAY_03
    ref = talk(SELF_HARM).reference
    with pytest.raises(DeskError, match="note"):
        desk.close(ref, "safe", note)
    row = escalation(state, ref)
    assert row["status"] == "open"
    assert [n["kind"] for n in notes(state, ref)] == ["question"]
    closed = desk.close(ref, "safe", "Phoned the resident; referred to the crisis team.")
    assert closed["status"] == "closed"
    assert closed["close_note"] == "Phoned the resident; referred to the crisis team."


def test_ordinary_escalation_may_be_closed_without_a_note(talk: Talk, desk: Desk) -> None:
    ref = talk(TRADE_WASTE).reference
    assert desk.close(ref, "waste")["status"] == "closed"


# -- officers' actions --------------------------------------------------------------------


def test_reply_to_a_closed_escalation_is_refused(talk: Talk, desk: Desk, state: Store) -> None:
    ref = talk(TRADE_WASTE).reference
    desk.claim(ref, "waste")
    desk.close(ref, "waste", "duplicate of another question")
    before = outbox(state)
    with pytest.raises(DeskError, match="closed"):
        desk.reply(ref, "waste", "Here is your answer after all.")
    assert outbox(state) == before
    assert outbox(state, purpose="relay") == []
    assert "reply" not in [n["kind"] for n in notes(state, ref)]
    assert escalation(state, ref)["status"] == "closed"
    for action in (
        lambda: desk.claim(ref, "waste"),
        lambda: desk.close(ref, "waste", "again"),
        lambda: desk.reassign(ref, "waste", "duty"),
    ):
        with pytest.raises(DeskError, match="closed"):
            action()
    assert outbox(state) == before


def test_empty_reply_is_refused(talk: Talk, desk: Desk, state: Store) -> None:
    ref = talk(TRADE_WASTE).reference
    with pytest.raises(DeskError):
        desk.reply(ref, "waste", "   ")
    assert outbox(state, purpose="relay") == []
    assert escalation(state, ref)["status"] == "open"


def test_reply_when_someone_else_has_claimed_it(talk: Talk, desk: Desk, state: Store) -> None:
    ref = talk(TRADE_WASTE).reference
    desk.claim(ref, "duty")
    with pytest.raises(DeskError, match="Dana Price"):
        desk.reply(ref, "waste", "My answer")
    with pytest.raises(DeskError, match="Dana Price"):
        desk.claim(ref, "waste")
    assert outbox(state, purpose="relay") == []
    assert escalation(state, ref)["claimed_by"] == "duty"


ACTIONS = {
    "show": lambda desk, ref, who: desk.show(ref, who),
    "claim": lambda desk, ref, who: desk.claim(ref, who),
    "reply": lambda desk, ref, who: desk.reply(ref, who, "An answer"),
    "close": lambda desk, ref, who: desk.close(ref, who, "a note"),
    "reassign": lambda desk, ref, who: desk.reassign(ref, who, "tax"),
    "suggest": lambda desk, ref, who: desk.suggest(ref, who),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize(
    ("who", "why"), [("nobody", "not a configured officer"), ("tax", "can see"), ("safe", "can see")]
)
def test_unauthorised_officers_are_refused(
    talk: Talk, desk: Desk, state: Store, action: str, who: str, why: str
) -> None:
    ref = talk(TRADE_WASTE).reference
    before_row = escalation(state, ref)
    before_outbox = outbox(state)
    with pytest.raises(DeskError, match=why):
        ACTIONS[action](desk, ref, who)
    assert escalation(state, ref) == before_row
    assert outbox(state) == before_outbox
    assert [n["kind"] for n in notes(state, ref)] == ["question"]


def test_unconfigured_officer_cannot_list(desk: Desk) -> None:
    with pytest.raises(DeskError, match="nobody"):
        desk.visible("nobody")


def test_who_sees_what(talk: Talk, desk: Desk, clock: Clock) -> None:
    waste = talk(TRADE_WASTE, user="res-1").reference
    clock.advance(minutes=1)
    general = talk(UNMATCHED, user="res-2").reference
    clock.advance(minutes=1)
    urgent = talk(SELF_HARM, user="res-3").reference

    def refs(officer: str) -> list[str]:
        return [r["ref"] for r in desk.visible(officer)]

    assert refs("waste") == [waste]
    assert refs("tax") == []
    assert refs("safe") == [urgent]
    assert refs("duty") == [urgent, waste, general]  # backup of safeguarding and of waste; owns general
    assert refs("lead") == [urgent, waste, general]  # sees all, urgent first
    assert desk.show(waste, "duty")["ref"] == waste  # the backup may look before it is reassigned


def test_backup_and_team_leader_may_act(talk: Talk, desk: Desk, state: Store) -> None:
    ref = talk(TRADE_WASTE).reference
    assert desk.claim(ref, "duty")["claimed_by"] == "duty"
    other = talk("I need a trade waste skip for my cafe", user="res-9").reference
    assert desk.reply(other, "lead", "We will call you.")["status"] == "answered"


def test_show_includes_the_notes(talk: Talk, desk: Desk) -> None:
    ref = talk(UNMATCHED).reference
    talk("It is for a quiz")
    shown = desk.show(ref.lower(), "duty")
    assert shown["ref"] == ref
    assert [(n["author"], n["kind"], n["text"]) for n in shown["notes"]] == [
        ("resident", "question", UNMATCHED),
        ("resident", "detail", "It is for a quiz"),
    ]


def test_manual_reassign_notifies_the_new_officer(talk: Talk, desk: Desk, state: Store) -> None:
    ref = talk(TRADE_WASTE).reference
    desk.claim(ref, "waste")
    moved = desk.reassign(ref, "waste", "tax")
    assert moved["officer"] == "tax"
    assert moved["claimed_by"] == ""
    assert moved["status"] == "open"
    last = outbox(state, purpose="notify")[-1]
    assert (last["conversation"], last["ref"]) == ("tax", ref)
    assert "Wyn Jones" in last["text"]
    assert ref in [r["ref"] for r in desk.visible("tax")]
    with pytest.raises(DeskError, match="ghost"):
        desk.reassign(ref, "tax", "ghost")
    assert escalation(state, ref)["officer"] == "tax"


def test_claim_twice_by_the_same_officer_is_harmless(talk: Talk, desk: Desk) -> None:
    ref = talk(TRADE_WASTE).reference
    desk.claim(ref, "waste")
    assert desk.claim(ref, "waste")["claimed_by"] == "waste"


def claim_at_once(state_path: Path, config: Config, clock: Clock, ref: str, officers: list[str]) -> dict[str, str]:
    """Each officer claims ``ref`` from its own thread, connection and Desk, released together."""
    barrier = threading.Barrier(len(officers))
    results: dict[str, str] = {}

    def attempt(officer: str) -> None:
        store = Store(state_path)
        try:
            desk = Desk(store, config, clock)
            barrier.wait(timeout=10)
            try:
                desk.claim(ref, officer)
                results[officer] = "ok"
            except DeskError as error:
                results[officer] = f"refused: {error}"
        except Exception as error:  # a lock error or similar must fail the test, not hang it
            results[officer] = f"error: {type(error).__name__}: {error}"
        finally:
            store.close()

    threads = [threading.Thread(target=attempt, args=(officer,)) for officer in officers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_claims_exactly_one_wins(talk: Talk, state_path: Path, rota: Config, clock: Clock) -> None:
    refs = [talk(TRADE_WASTE, user=f"res-{n}").reference for n in range(6)]
    names = {"waste": "Wyn Jones", "duty": "Dana Price"}
    for ref in refs:
        results = claim_at_once(state_path, rota, clock, ref, list(names))
        assert sorted(results) == sorted(names), results
        winners = [o for o, r in results.items() if r == "ok"]
        assert len(winners) == 1, results
        (loser,) = set(names) - set(winners)
        assert results[loser].startswith("refused:"), results
        assert names[winners[0]] in results[loser]
        store = Store(state_path)
        try:
            assert escalation(store, ref)["claimed_by"] == winners[0]
            assert [n["author"] for n in notes(store, ref) if n["kind"] == "claim"] == winners
        finally:
            store.close()


# -- knowledge-base suggestions ----------------------------------------------------------------


def test_reply_with_add_to_kb_records_a_suggestion(talk: Talk, desk: Desk, clock: Clock) -> None:
    ref = talk(TRADE_WASTE).reference
    plain = talk("Who won the 1966 world cup final?", user="res-2").reference
    desk.reply(plain, "duty", "England.")
    assert desk.suggestions() == []
    desk.reply(ref, "waste", "Trade waste contracts start at 20 pounds a week.", add_to_kb=True)
    (suggestion,) = desk.suggestions()
    assert suggestion["ref"] == ref
    assert suggestion["topic"] == "waste"
    assert suggestion["question"] == TRADE_WASTE
    assert suggestion["answer"] == "Trade waste contracts start at 20 pounds a week."
    assert suggestion["officer"] == "waste"


def test_suggest_uses_the_last_reply(talk: Talk, desk: Desk) -> None:
    ref = talk(TRADE_WASTE).reference
    with pytest.raises(DeskError, match="no reply"):
        desk.suggest(ref, "waste")
    assert desk.suggestions() == []
    desk.reply(ref, "waste", "First answer.")
    desk.reply(ref, "waste", "Better answer.")
    desk.suggest(ref, "waste")
    assert [s["answer"] for s in desk.suggestions()] == ["Better answer."]


def test_monday_start_is_what_the_tests_assume() -> None:
    assert MONDAY_10.weekday() == 0 and MONDAY_10.hour == 10
    assert SATURDAY_03.weekday() == 5
