"""bot.privacy and the engine's residents'-data features: the first-contact notice,
"my data", "delete my data", retention purges, the audit trail and state.db's permissions."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import COUNCIL, MONDAY_10, UNMATCHED, Clock, Recorder, config_data

from bot import privacy
from bot.config import Config, parse
from bot.engine import Engine
from bot.escalations import Desk, DeskError
from bot.messages import IncomingMessage, Outcome, OutgoingMessage
from bot.officer_cli import cli_sender
from bot.outbox import Dispatcher, enqueue
from bot.runner import Runner
from bot.store import Store
from bot.wiring import make_matcher
from knowledge.base import KnowledgeBase

NOTICE_URL = "https://testshire.example.gov.uk/privacy/chatbot"
NOTICE_MARK = "Privacy:"

# Two residents with words nobody else uses, so a leak is easy to see.
ALICE_QUESTION = "Why did an aardvark trample the petunias outside my flat?"
ALICE_DETAIL = "The aardvark is called Montmorency and it came back this morning"
ALICE_WORDS = ("aardvark", "petunias", "Montmorency")
BOB_QUESTION = "Is the xylophone quokka parade still happening on Saturday?"
BOB_WORDS = ("xylophone", "quokka")
OFFICER_REPLY = "Our wildlife warden Zanzibar will visit on Thursday."


@dataclass
class Site:
    """An engine, its store and configuration, in a folder of tmp_path."""

    engine: Engine
    store: Store
    config: Config
    clock: Clock
    events: Iterator[int]

    def say(
        self,
        text: str,
        user: str = "alice",
        platform: str = "web",
        conversation: str | None = None,
        deliver_later: bool = False,
    ) -> Outcome:
        """One message from a person; every call is a new event."""
        message = IncomingMessage(
            platform, user, text, conversation=conversation or user, event_id=f"ev{next(self.events)}"
        )
        outcome = self.engine.handle(message, deliver_later=deliver_later)
        assert outcome is not None
        return outcome

    @property
    def desk(self) -> Desk:
        return self.engine.desk

    def reopen(self) -> Store:
        """Close state.db and open it again, as after a restart."""
        self.store.close()
        self.store = Store(self.config.path(self.config.storage.state_db))
        self.engine.store = self.store
        self.engine.desk.store = self.store
        return self.store


MakeSite = Callable[..., Site]


@pytest.fixture
def make_site(tmp_path: Path, kb_small: KnowledgeBase) -> Iterator[MakeSite]:
    """Build a site with the test council's configuration plus ``sections`` on top."""
    made: list[Site] = []

    def make(name: str = "site", now: datetime = MONDAY_10, **sections: object) -> Site:
        data = config_data(**sections)
        data["council"] = {"privacy_notice_url": NOTICE_URL, **data["council"]}
        config = parse(data, "test", tmp_path / name)
        store = Store(config.path(config.storage.state_db))
        clock = Clock(now)
        engine = Engine(kb_small, make_matcher(kb_small, config), config, store, clock=clock)
        site = Site(engine, store, config, clock, itertools.count(1))
        made.append(site)
        return site

    yield make
    for site in made:
        site.store.close()


@pytest.fixture
def site(make_site: MakeSite) -> Site:
    return make_site()


def rows(store: Store, table: str, **where: object) -> list[dict]:
    found = list(store.db.query(f"select * from {table}"))
    return [r for r in found if all(r[k] == v for k, v in where.items())]


def escalation(store: Store, ref: str) -> dict:
    (row,) = rows(store, "escalations", ref=ref)
    return row


def everything(store: Store, skip: tuple[str, ...] = ()) -> str:
    """Every row of every table as one string, for looking for words that must not be there."""
    tables = [t for t in store.db.table_names() if t not in skip]
    return json.dumps({t: list(store.db.query(f"select * from {t}")) for t in tables}, ensure_ascii=False)


def where(store: Store, word: str) -> list[str]:
    """The tables (and row ids) holding ``word``, for failure messages."""
    found = []
    for table in store.db.table_names():
        for row in store.db.query(f"select * from {table}"):
            if word in json.dumps(row, ensure_ascii=False):
                found.append(f"{table} {row.get('id', '')} {row.get('purpose', '')} {row.get('status', '')}".rstrip())
    return found


def person(store: Store, platform: str, user: str) -> dict:
    """Everything stored about one person, straight from the tables."""
    refs = [r["ref"] for r in rows(store, "escalations", platform=platform, user=user)]
    return {
        "messages": rows(store, "messages", platform=platform, user=user),
        "conversations": rows(store, "conversations", platform=platform, user=user),
        "escalations": [escalation(store, ref) for ref in refs],
        "notes": [n for n in rows(store, "escalation_notes") if n["ref"] in refs],
        "web": rows(store, "web_messages", session=user) if platform == "web" else [],
    }


def exported(outcome: Outcome) -> dict:
    """The JSON document in a "my data" reply (after the notice, on first contact)."""
    text = outcome.text
    start = text.index("\n\n{") + 2
    data, end = json.JSONDecoder().raw_decode(text, start)
    assert text[end:].strip() == ""
    return data


def alice_with_history(site: Site) -> str:
    """Alice: an answered question, an escalation with a detail, a claim and an officer's reply."""
    site.say("my bin was missed")
    outcome = site.say(ALICE_QUESTION)
    assert outcome.action == "escalate"
    ref = outcome.reference
    assert ref
    site.say(ALICE_DETAIL)
    site.desk.claim(ref, "duty")
    site.desk.reply(ref, "duty", OFFICER_REPLY)
    return ref


def bob_with_history(site: Site) -> str:
    outcome = site.say(BOB_QUESTION, user="bob")
    assert outcome.action == "escalate"
    assert outcome.reference
    site.say("my bin was missed", user="bob")
    return outcome.reference


# -- the first-contact notice ------------------------------------------------------------------


def test_first_reply_carries_the_privacy_notice(site: Site) -> None:
    first = site.say("hello")
    text = first.replies[0].text  # the first message the person sees
    assert text.startswith(NOTICE_MARK)
    assert COUNCIL in text
    assert "90 days" in text
    assert "'my data'" in text
    assert "'delete my data'" in text
    assert NOTICE_URL in text
    assert first.text.endswith("Hello!")  # the answer itself still follows the notice
    assert first.text.count(NOTICE_MARK) == 1


def test_notice_only_once_per_conversation(site: Site) -> None:
    assert NOTICE_MARK in site.say("hello").text
    second = site.say("my bin was missed")
    assert NOTICE_MARK not in second.text
    assert NOTICE_URL not in second.text
    assert NOTICE_MARK not in site.say(UNMATCHED).text


def test_every_new_person_and_channel_gets_the_notice(site: Site) -> None:
    assert NOTICE_MARK in site.say("hello", user="alice").text
    assert NOTICE_MARK not in site.say("hello", user="alice").text
    assert NOTICE_MARK in site.say("hello", user="bob").text
    for platform, user, conversation in (("telegram", "12345", "12345"), ("slack", "U0ALICE", "D0ALICE")):
        first = site.say("hello", user=user, platform=platform, conversation=conversation)
        assert NOTICE_MARK in first.text and NOTICE_URL in first.text
        assert first.replies[0].text.startswith(NOTICE_MARK)
        assert {(r.platform, r.conversation) for r in first.replies} == {(platform, conversation)}
        assert NOTICE_MARK not in site.say("hello", user=user, platform=platform, conversation=conversation).text
    # The same id on another platform is another person.
    assert NOTICE_MARK in site.say("hello", user="alice", platform="terminal").text


def test_notice_on_an_escalation_as_first_contact(site: Site) -> None:
    first = site.say(ALICE_QUESTION)
    assert first.action == "escalate"
    assert first.text.startswith(NOTICE_MARK)
    assert first.reference in first.text


def test_notice_uses_the_configured_retention_and_council(make_site: MakeSite) -> None:
    site = make_site(
        council={"name": "Borsetshire District Council", "privacy_notice_url": "https://borsetshire.example/p"},
        privacy={"retain_messages_days": 30},
    )
    text = site.say("hello").text
    assert "Borsetshire District Council" in text
    assert "30 days" in text and "90 days" not in text
    assert "https://borsetshire.example/p" in text


def test_notice_goes_out_first_through_the_outbox(site: Site) -> None:
    site.say("hello", user="777", platform="telegram", deliver_later=True)
    site.say("hello", user="777", platform="telegram", deliver_later=True)
    queued = rows(site.store, "outbox", platform="telegram", conversation="777")
    assert queued[0]["text"].startswith(NOTICE_MARK)
    assert sum(NOTICE_MARK in r["text"] for r in queued) == 1
    assert queued[-1]["text"] == "Hello!"
    assert site.store.state("telegram", "777")["noticed"] is True


# -- "my data" ----------------------------------------------------------------------------------


def test_my_data_is_valid_json_with_everything_about_the_person(site: Site) -> None:
    ref = alice_with_history(site)
    outcome = site.say("my data")
    assert outcome.action == "answer"
    assert COUNCIL in outcome.text and NOTICE_URL in outcome.text
    data = exported(outcome)
    assert set(data) == {"about", "conversation_state", "messages", "web_chat_transcript", "escalations"}
    assert data["about"] == {"platform": "web", "user": "alice"}
    # Their messages, both directions, in order.
    ins = [m["text"] for m in data["messages"] if m["direction"] == "in"]
    outs = [m["text"] for m in data["messages"] if m["direction"] == "out"]
    assert ins == ["my bin was missed", ALICE_QUESTION, ALICE_DETAIL]
    assert len(outs) == 3 and "Report a missed bin" in outs[0] and ref in outs[1]
    # Conversation state.
    (conversation,) = data["conversation_state"]
    assert conversation["state"]["noticed"] is True
    assert conversation["updated_at"]
    # The escalation with its notes, including the officer's reply.
    (esc,) = data["escalations"]
    assert esc["ref"] == ref
    assert esc["question"] == ALICE_QUESTION
    assert esc["status"] == "answered" and esc["officer"] == "duty" and esc["claimed_by"] == "duty"
    kinds = [(n["author"], n["kind"], n["text"]) for n in esc["notes"]]
    assert ("resident", "question", ALICE_QUESTION) in kinds
    assert ("resident", "detail", ALICE_DETAIL) in kinds
    assert ("duty", "reply", OFFICER_REPLY) in kinds
    assert [k for _, k, _ in kinds] == ["question", "detail", "claim", "reply"]


def test_my_data_goes_to_the_person_on_their_own_channel(site: Site) -> None:
    site.say("hello", user="555", platform="telegram")
    outcome = site.say("my data", user="555", platform="telegram", deliver_later=True)
    (reply,) = outcome.replies
    assert (reply.platform, reply.conversation) == ("telegram", "555")
    (queued,) = rows(site.store, "outbox", purpose="reply", platform="telegram", conversation="555")[-1:]
    assert queued["text"] == reply.text
    assert exported(outcome)["about"] == {"platform": "telegram", "user": "555"}
    # Nobody else was sent anything.
    assert {(r["platform"], r["conversation"]) for r in rows(site.store, "outbox")} == {("telegram", "555")}


def test_my_data_contains_nothing_about_anyone_else(site: Site) -> None:
    bob_ref = bob_with_history(site)
    site.desk.reply(bob_ref, "duty", "Bob's parade reply from Quentin")
    alice_ref = alice_with_history(site)
    outcome = site.say("my data")
    text = outcome.text
    for word in (*BOB_WORDS, "bob", "Quentin", bob_ref):
        assert word not in text, word
    data = exported(outcome)
    assert [e["ref"] for e in data["escalations"]] == [alice_ref]
    # Bob's export, likewise, has nothing of Alice.
    bob = site.say("my data", user="bob").text
    for word in (*ALICE_WORDS, "alice", alice_ref, "Zanzibar"):
        assert word not in bob, word
    assert BOB_QUESTION in bob


def test_my_data_includes_the_web_chat_transcript_of_that_session_only(site: Site) -> None:
    for session, text in (("sess-alice", ALICE_QUESTION), ("sess-bob", BOB_QUESTION)):
        site.store.db["web_messages"].insert(
            {"session": session, "role": "resident", "text": text, "options": "[]", "at": MONDAY_10.isoformat()}
        )
        site.store.db["web_messages"].insert(
            {"session": session, "role": "bot", "text": f"reply to {session}", "options": "[]", "at": "x"}
        )
    data = exported(site.say("my data", user="sess-alice", platform="web"))
    assert [(w["role"], w["text"]) for w in data["web_chat_transcript"]] == [
        ("resident", ALICE_QUESTION),
        ("bot", "reply to sess-alice"),
    ]
    assert "quokka" not in json.dumps(data)
    # A session id is only a web transcript on the web: someone with that id elsewhere gets none.
    other = exported(site.say("my data", user="sess-alice", platform="telegram"))
    assert other["web_chat_transcript"] == []
    assert "aardvark" not in json.dumps(other)


def test_my_data_as_the_very_first_message(site: Site) -> None:
    outcome = site.say("my data")
    assert outcome.text.startswith(NOTICE_MARK)
    data = exported(outcome)
    assert data["messages"] == [] and data["escalations"] == [] and data["conversation_state"] == []


def test_my_data_is_recorded_in_the_audit_trail_without_content(site: Site) -> None:
    alice_with_history(site)
    site.clock.advance(minutes=3)
    site.say("my data")
    (row,) = rows(site.store, "audit", action="export")
    assert row["actor"] == "resident"
    assert row["subject"] == privacy.subject("web", "alice")
    assert datetime.fromisoformat(row["at"]) == site.clock.now
    assert "alice" not in json.dumps(row) and "aardvark" not in json.dumps(row)


def test_subject_is_a_stable_pseudonym() -> None:
    one = privacy.subject("web", "alice")
    assert one == privacy.subject("web", "alice")
    assert one.startswith("person:") and "alice" not in one
    assert one != privacy.subject("telegram", "alice")
    assert one != privacy.subject("web", "alicf")


def test_export_function_matches_the_tables(site: Site) -> None:
    ref = alice_with_history(site)
    bob_with_history(site)
    data = privacy.export(site.store, "web", "alice")
    stored = person(site.store, "web", "alice")
    assert len(data["messages"]) == len(stored["messages"]) == 6
    assert [e["ref"] for e in data["escalations"]] == [ref]
    assert len(data["escalations"][0]["notes"]) == len(stored["notes"])
    json.dumps(data)  # plain data throughout
    assert privacy.export(site.store, "web", "nobody") == {
        "about": {"platform": "web", "user": "nobody"},
        "conversation_state": [],
        "messages": [],
        "web_chat_transcript": [],
        "escalations": [],
    }


# -- "delete my data" -----------------------------------------------------------------------------


def test_delete_my_data_asks_first_and_erases_nothing(site: Site) -> None:
    alice_with_history(site)
    before = person(site.store, "web", "alice")
    outcome = site.say("delete my data")
    assert outcome.action == "clarify"
    assert "'yes'" in outcome.text and "'no'" in outcome.text
    after = person(site.store, "web", "alice")
    assert after["escalations"] == before["escalations"]
    assert after["notes"] == before["notes"]
    assert len(after["messages"]) == len(before["messages"]) + 2
    assert rows(site.store, "audit", action="erase") == []


def test_no_cancels_and_a_later_yes_does_not_erase(site: Site) -> None:
    ref = alice_with_history(site)
    site.say("delete my data")
    cancelled = site.say("no")
    assert "haven't deleted" in cancelled.text
    assert "confirm_erase" not in site.store.state("web", "alice")
    site.say("yes")
    assert escalation(site.store, ref)["question"] == ALICE_QUESTION
    assert any(m["text"] == ALICE_QUESTION for m in rows(site.store, "messages", user="alice"))
    assert rows(site.store, "audit", action="erase") == []


def test_another_message_instead_of_yes_drops_the_request(site: Site) -> None:
    ref = alice_with_history(site)
    site.say("delete my data")
    assert "Report a missed bin" in site.say("my bin was missed").text
    site.say("yes")
    assert escalation(site.store, ref)["user"] == "alice"
    assert rows(site.store, "audit", action="erase") == []


def test_yes_erases_the_person_and_only_them(site: Site) -> None:
    bob_ref = bob_with_history(site)
    ref = alice_with_history(site)
    bob_before = person(site.store, "web", "bob")
    site.say("delete my data")
    outcome = site.say("yes")
    assert outcome.action == "answer"
    assert "deleted" in outcome.text
    assert "8 message(s)" in outcome.text  # 3 questions + 1 "delete my data", and the bot's 4 replies

    assert rows(site.store, "messages", user="alice") == []
    assert rows(site.store, "conversations", user="alice") == []
    assert site.store.state("web", "alice") == {}
    row = escalation(site.store, ref)
    for field in ("platform", "user", "conversation", "question"):
        assert row[field] == "", field
    assert rows(site.store, "escalation_notes", ref=ref, author="resident") == []
    notes = json.dumps(rows(site.store, "escalation_notes", ref=ref))
    assert "Montmorency" not in notes and "Zanzibar" not in notes
    # Bob is untouched.
    assert person(site.store, "web", "bob") == bob_before
    assert escalation(site.store, bob_ref)["question"] == BOB_QUESTION


def test_the_erase_turn_leaves_nothing_behind(site: Site) -> None:
    alice_with_history(site)
    site.say("delete my data")
    site.say("yes", deliver_later=True)
    assert rows(site.store, "messages", platform="web", user="alice") == []
    assert rows(site.store, "conversations", platform="web", user="alice") == []
    (analytics,) = rows(site.store, "analytics")[-1:]
    assert analytics["text"] == ""
    # A new conversation afterwards starts afresh, with the notice again.
    assert site.say("hello").text.startswith(NOTICE_MARK)


def test_erasure_strips_escalations_to_the_kept_fields(site: Site) -> None:
    ref = alice_with_history(site)
    site.desk.close(ref, "duty", "Visited; no further action")
    before = escalation(site.store, ref)
    site.say("delete my data")
    site.say("yes")
    after = escalation(site.store, ref)
    kept = ("ref", "topic", "intent", "urgent", "status", "officer", "created_at", "closed_at")
    for field in kept:
        assert after[field] == before[field], field
    assert after["status"] == "closed" and after["officer"] == "duty" and after["closed_at"]
    for field in ("platform", "user", "conversation", "question", "claimed_by", "due_at", "close_note"):
        assert before[field], field
        assert after[field] == "", field
    notes = rows(site.store, "escalation_notes", ref=ref)
    assert [n["kind"] for n in notes] == ["claim", "reply", "close"]
    (reply,) = [n for n in notes if n["kind"] == "reply"]
    assert OFFICER_REPLY not in reply["text"]


def test_a_council_can_keep_fewer_fields(make_site: MakeSite) -> None:
    site = make_site(privacy={"keep_after_erasure": ["ref", "topic"]})
    ref = alice_with_history(site)
    site.desk.close(ref, "duty", "Rang back; Gertrude at number 4 has the animal now")
    site.say("delete my data")
    site.say("yes")
    after = escalation(site.store, ref)
    assert after["ref"] == ref
    assert after["topic"] == "general"
    for field in (
        "platform",
        "user",
        "conversation",
        "question",
        "intent",
        "status",
        "officer",
        "claimed_by",
        "created_at",
        "due_at",
        "closed_at",
        "close_note",
    ):
        assert after[field] in ("", None), field
    # The close note is not kept, so its text must not survive in the escalation's notes either.
    assert "Gertrude" not in everything(site.store), where(site.store, "Gertrude")


def test_officer_is_told_when_an_open_escalation_is_erased(site: Site) -> None:
    ref = alice_with_history(site)
    before = {r["id"] for r in rows(site.store, "outbox")}
    site.say("delete my data")
    site.say("yes")
    new = [r for r in rows(site.store, "outbox") if r["id"] not in before]
    (notice,) = [r for r in new if r["purpose"] == "notify"]
    assert (notice["platform"], notice["conversation"], notice["ref"]) == ("cli", "duty", ref)
    assert ref in notice["text"] and "erased" in notice["text"]
    assert notice["status"] == "pending"
    for word in ALICE_WORDS:
        assert word not in notice["text"]


def test_no_officer_message_when_the_escalation_is_closed(site: Site) -> None:
    ref = alice_with_history(site)
    site.desk.close(ref, "duty", "done")
    before = max((r["id"] for r in rows(site.store, "outbox")), default=0)
    site.say("delete my data")
    site.say("yes")
    assert [r for r in [r for r in rows(site.store, "outbox") if r["id"] > before] if r["purpose"] == "notify"] == []


def test_erasure_is_audited_without_the_erased_content(site: Site) -> None:
    alice_with_history(site)
    site.clock.advance(minutes=7)
    site.say("delete my data")
    site.say("yes")
    (row,) = rows(site.store, "audit", action="erase")
    assert row["actor"] == "resident"
    assert row["subject"] == privacy.subject("web", "alice")
    assert datetime.fromisoformat(row["at"]) == site.clock.now
    assert "message(s)" in row["detail"]
    text = json.dumps(row)
    for word in ("alice", *ALICE_WORDS, "Zanzibar", "bin"):
        assert word not in text, word


def test_erasure_survives_a_restart(site: Site) -> None:
    ref = alice_with_history(site)
    site.say("delete my data")
    site.say("yes")
    store = site.reopen()
    assert rows(store, "messages", user="alice") == []
    assert rows(store, "conversations", user="alice") == []
    assert escalation(store, ref)["question"] == ""
    assert store.state("web", "alice") == {}
    assert rows(store, "escalation_notes", ref=ref, author="resident") == []
    assert rows(store, "audit", action="erase")[0]["subject"] == privacy.subject("web", "alice")


def test_erasing_twice_removes_nothing_more(site: Site) -> None:
    ref = alice_with_history(site)
    bob_with_history(site)
    with site.store.transaction():
        first = privacy.erase(site.store, site.config, "web", "alice", site.clock(), "duty")
    assert first.messages == 6 and first.conversations == 1 and first.escalations_stripped == 1
    assert first.notes == 2 and first.open_escalations == (ref,)
    snapshot = everything(site.store, skip=("audit",))
    with site.store.transaction():
        second = privacy.erase(site.store, site.config, "web", "alice", site.clock(), "duty")
    assert (second.messages, second.conversations, second.web_messages, second.notes) == (0, 0, 0, 0)
    assert second.open_escalations == ()
    assert everything(site.store, skip=("audit",)) == snapshot
    assert len(rows(site.store, "audit", action="erase")) == 2


def test_erasing_someone_unknown_is_harmless(site: Site) -> None:
    bob_with_history(site)
    snapshot = everything(site.store, skip=("audit",))
    with site.store.transaction():
        result = privacy.erase(site.store, site.config, "web", "nobody", site.clock(), "cli")
    assert result == privacy.Erased(0, 0, 0, 0, 0, ())
    assert everything(site.store, skip=("audit",)) == snapshot


def test_erasure_removes_the_web_chat_transcript(site: Site) -> None:
    for session in ("sess-alice", "sess-bob"):
        site.store.db["web_messages"].insert(
            {"session": session, "role": "resident", "text": f"{session} petunias", "options": "[]", "at": "x"}
        )
    with site.store.transaction():
        result = privacy.erase(site.store, site.config, "web", "sess-alice", site.clock(), "cli")
    assert result.web_messages == 1
    assert [r["session"] for r in rows(site.store, "web_messages")] == ["sess-bob"]
    with site.store.transaction():
        privacy.erase(site.store, site.config, "telegram", "sess-bob", site.clock(), "cli")
    assert [r["session"] for r in rows(site.store, "web_messages")] == ["sess-bob"]


def test_erasure_clears_officer_notifications_not_yet_delivered(site: Site) -> None:
    # The officer's channel is down, so the notifications with her question and detail are still queued.
    ref = alice_with_history(site)
    queued = rows(site.store, "outbox", purpose="notify", ref=ref, status="pending")
    assert any("Montmorency" in r["text"] for r in queued)
    site.say("delete my data")
    site.say("yes")
    outbox = json.dumps(rows(site.store, "outbox"))
    for word in ALICE_WORDS:
        assert word not in outbox, (word, where(site.store, word))


def test_erasure_reaches_officers_command_line_inbox(site: Site) -> None:
    # The duty officer works from the terminal: the notification with the question was delivered there.
    ref = alice_with_history(site)
    Dispatcher(site.store, {"cli": cli_sender(site.store, site.clock)}, site.clock).run_once()
    assert any(ALICE_QUESTION in r["text"] for r in rows(site.store, "officer_inbox"))
    site.say("delete my data")
    site.say("yes")
    inbox = json.dumps(rows(site.store, "officer_inbox"))
    for word in ALICE_WORDS:
        assert word not in inbox, (word, where(site.store, word))
    assert escalation(site.store, ref)["question"] == ""


def test_erasure_removes_replies_sent_to_a_slack_dm(site: Site) -> None:
    # On Slack the conversation (a DM channel) is not the user id; every reply went through the outbox.
    talk = {"user": "U0ALICE", "platform": "slack", "conversation": "D0ALICE", "deliver_later": True}
    site.say(ALICE_QUESTION, **talk)
    site.say("my data", **talk)
    slack = Recorder()
    Dispatcher(site.store, {"slack": slack, "cli": cli_sender(site.store, site.clock)}, site.clock).run_once()
    assert any("petunias" in m.text for m in slack.sent)
    site.say("delete my data", **talk)
    site.say("yes", **talk)
    outbox = json.dumps(rows(site.store, "outbox", platform="slack"))
    for word in ALICE_WORDS[:2]:
        assert word not in outbox, (word, where(site.store, word))


def test_erasure_leaves_no_trace_of_the_person_outside_analytics(site: Site) -> None:
    ref = alice_with_history(site)
    bob_with_history(site)
    site.say("my data")
    Dispatcher(site.store, {"cli": cli_sender(site.store, site.clock), "web": Recorder()}, site.clock).run_once()
    site.say("delete my data")
    site.say("yes")
    Dispatcher(site.store, {"cli": cli_sender(site.store, site.clock), "web": Recorder()}, site.clock).run_once()
    text = everything(site.store, skip=("analytics", "inbox"))
    for word in (*ALICE_WORDS, "alice", OFFICER_REPLY):
        assert word not in text, (word, where(site.store, word))
    assert ref in text  # the council keeps the reference
    assert "xylophone" in text  # and Bob's data


# -- retention ------------------------------------------------------------------------------------

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def message(store: Store, text: str, at: str) -> None:
    """A logged message from ``text`` (also the user's id) at ``at``."""
    store.db["messages"].insert(
        {"platform": "web", "user": text, "direction": "in", "text": text, "action": "", "intent": "", "at": at}
    )


def seed(store: Store) -> None:
    """Rows either side of the default retention periods (90 days for messages, 365 for closed escalations)."""
    db = store.db
    for label, age in (("old", 91), ("new", 89)):
        message(store, label, days_ago(age))
        db["web_messages"].insert(
            {"session": label, "role": "resident", "text": label, "options": "[]", "at": days_ago(age)}
        )
        db["conversations"].insert({"platform": "web", "user": label, "state": "{}", "updated_at": days_ago(age)})
        db["analytics"].insert(
            {"at": days_ago(age), "platform": "web", "action": "answer", "intent": "", "confidence": 1.0, "text": label}
        )
        db["inbox"].insert({"platform": "web", "event_id": label, "received_at": days_ago(age)})
        sent = enqueue(store, OutgoingMessage("web", label, f"sent {label}"), "reply", "", NOW - timedelta(days=age))
        db.execute("update outbox set status = 'sent', sent_at = ? where id = ?", [days_ago(age), sent])
    # A message never delivered is kept whatever its age.
    enqueue(store, OutgoingMessage("web", "stuck", "pending old"), "reply", "", NOW - timedelta(days=400))
    for ref, status, created, closed in (
        ("CB-OLDCLS", "closed", 500, 366),
        ("CB-NEWCLS", "closed", 400, 364),
        ("CB-OLDOPN", "open", 1000, None),
        ("CB-OLDANS", "answered", 800, None),
    ):
        db["escalations"].insert(
            {
                "ref": ref,
                "platform": "web",
                "user": ref.lower(),
                "conversation": ref.lower(),
                "topic": "general",
                "intent": "",
                "question": f"question {ref}",
                "urgent": 0,
                "status": status,
                "created_at": days_ago(created),
                "officer": "duty",
                "claimed_by": "",
                "closed_at": days_ago(closed) if closed else "",
                "close_note": "",
            }
        )
        db["escalation_notes"].insert(
            {"ref": ref, "author": "resident", "kind": "question", "text": "q", "at": days_ago(created)}
        )
        enqueue(store, OutgoingMessage("cli", "duty", f"notify {ref}"), "notify", ref, NOW - timedelta(days=created))


def test_purge_removes_what_is_past_retention_and_keeps_the_rest(site: Site) -> None:
    seed(site.store)
    with site.store.transaction():
        result = privacy.purge(site.store, site.config, NOW)
    assert result == privacy.Purged(
        messages=1, web_messages=1, conversations=1, escalations=1, outbox=1, inbox=1, analytics=1
    )
    db = site.store
    assert [r["text"] for r in rows(db, "messages")] == ["new"]
    assert [r["text"] for r in rows(db, "web_messages")] == ["new"]
    assert [r["user"] for r in rows(db, "conversations")] == ["new"]
    assert [r["text"] for r in rows(db, "analytics")] == ["new"]
    assert [r["event_id"] for r in rows(db, "inbox")] == ["new"]
    assert sorted(r["ref"] for r in rows(db, "escalations")) == ["CB-NEWCLS", "CB-OLDANS", "CB-OLDOPN"]
    assert sorted(r["ref"] for r in rows(db, "escalation_notes")) == ["CB-NEWCLS", "CB-OLDANS", "CB-OLDOPN"]
    texts = sorted(r["text"] for r in rows(db, "outbox"))
    assert texts == ["notify CB-NEWCLS", "notify CB-OLDANS", "notify CB-OLDOPN", "pending old", "sent new"]


def test_purge_is_audited_with_counts(site: Site) -> None:
    seed(site.store)
    with site.store.transaction():
        result = privacy.purge(site.store, site.config, NOW)
    (row,) = rows(site.store, "audit", action="purge")
    assert row["actor"] == "system"
    assert row["at"] == NOW.isoformat()
    assert row["detail"] == result.summary()
    assert "messages: 1" in row["detail"] and "escalations: 1" in row["detail"]


def test_purging_again_removes_nothing(site: Site) -> None:
    seed(site.store)
    with site.store.transaction():
        privacy.purge(site.store, site.config, NOW)
    with site.store.transaction():
        again = privacy.purge(site.store, site.config, NOW)
    assert again == privacy.Purged(0, 0, 0, 0, 0, 0, 0)


def test_purge_follows_the_configured_periods(make_site: MakeSite) -> None:
    site = make_site(privacy={"retain_messages_days": 30, "retain_closed_escalations_days": 400})
    seed(site.store)
    with site.store.transaction():
        result = privacy.purge(site.store, site.config, NOW)
    # 89 and 91 days are both past 30; a closed escalation 366 days old is within 400.
    assert result.messages == 2 and result.web_messages == 2 and result.analytics == 2 and result.inbox == 2
    assert result.escalations == 0
    assert {r["ref"] for r in rows(site.store, "escalations")} == {"CB-OLDCLS", "CB-NEWCLS", "CB-OLDOPN", "CB-OLDANS"}


def test_purge_with_the_clock_removes_a_real_conversation(make_site: MakeSite) -> None:
    site = make_site(now=datetime.now(UTC).replace(microsecond=0))
    ref = alice_with_history(site)
    site.desk.close(ref, "duty", "done")
    site.clock.advance(days=89)
    with site.store.transaction():
        early = privacy.purge(site.store, site.config, site.clock())
    assert early == privacy.Purged(0, 0, 0, 0, 0, 0, 0)
    site.clock.advance(days=2)
    with site.store.transaction():
        due = privacy.purge(site.store, site.config, site.clock())
    assert due.messages == 6 and due.conversations == 1 and due.analytics == 3 and due.inbox == 3
    assert due.escalations == 0
    assert escalation(site.store, ref)["status"] == "closed"
    site.clock.advance(days=365)
    with site.store.transaction():
        late = privacy.purge(site.store, site.config, site.clock())
    assert late.escalations == 1
    assert rows(site.store, "escalations") == [] and rows(site.store, "escalation_notes") == []


def test_stored_times_follow_the_engine_clock(site: Site) -> None:
    # The test clock is January 2024: 91 days on, everything said then is past retention.
    site.say("my bin was missed")
    site.clock.advance(days=91)
    with site.store.transaction():
        result = privacy.purge(site.store, site.config, site.clock())
    assert (result.messages, result.conversations, result.inbox, result.analytics) == (2, 1, 1, 1)
    assert rows(site.store, "messages") == []


def test_the_runner_purges_on_its_own(
    tmp_path: Path, kb_small: KnowledgeBase, caplog: pytest.LogCaptureFixture
) -> None:
    # An empty content folder, so the shared test knowledge base is used as it is and never rebuilt.
    (tmp_path / "content").mkdir()
    data = config_data(
        storage={"content_dir": "content", "knowledge_db": str(kb_small.path), "state_db": "data/state.db"},
        web={"enabled": False},
        privacy={"purge_every_hours": 1000},
    )
    config = parse(data, "test", tmp_path)
    runner = Runner(config, env={})
    store = runner.services.engine.store
    now = datetime.now(UTC)
    message(store, "old", (now - timedelta(days=120)).isoformat())
    message(store, "new", (now - timedelta(days=1)).isoformat())
    assert runner._purge().messages == 1
    assert [r["text"] for r in rows(store, "messages")] == ["new"]

    message(store, "old2", (now - timedelta(days=200)).isoformat())

    async def loop_once() -> None:
        task = asyncio.create_task(runner._purge_loop())
        for _ in range(200):
            if len(rows(store, "audit", action="purge")) == 2:
                break
            await asyncio.sleep(0.01)
        runner.stop()
        await asyncio.wait_for(task, 5)

    with caplog.at_level(logging.INFO, logger="councilbot"):
        asyncio.run(loop_once())
    assert [r["text"] for r in rows(store, "messages")] == ["new"]
    assert len(rows(store, "audit", action="purge")) == 2
    (record,) = [r for r in caplog.records if r.getMessage() == "retention purge"]
    assert "messages: 1" in record.removed
    store.close()


# -- the audit trail of officers' actions --------------------------------------------------------


def test_every_officer_action_is_audited_with_actor_and_time(site: Site) -> None:
    ref = site.say(ALICE_QUESTION).reference
    assert ref
    steps = [
        ("view", "duty", lambda: site.desk.show(ref, "duty")),
        ("claim", "duty", lambda: site.desk.claim(ref, "duty")),
        ("reply", "duty", lambda: site.desk.reply(ref, "duty", OFFICER_REPLY)),
        ("reassign", "lead", lambda: site.desk.reassign(ref, "lead", "waste")),
        ("view", "waste", lambda: site.desk.show(ref, "waste")),
        ("close", "waste", lambda: site.desk.close(ref, "waste", "done")),
    ]
    times = []
    for _, _, act in steps:
        times.append(site.clock.advance(minutes=5))
        act()
    audit = rows(site.store, "audit", ref=ref)
    assert [(r["action"], r["actor"]) for r in audit] == [(a, who) for a, who, _ in steps]
    assert [datetime.fromisoformat(r["at"]) for r in audit] == times
    (reassign,) = [r for r in audit if r["action"] == "reassign"]
    assert reassign["detail"] == "to waste"
    text = json.dumps(audit)
    assert "aardvark" not in text and OFFICER_REPLY not in text


def test_a_refused_action_is_not_audited(site: Site) -> None:
    ref = site.say(ALICE_QUESTION).reference
    with pytest.raises(DeskError):
        site.desk.show(ref, "tax")  # not the council-tax officer's escalation
    with pytest.raises(DeskError):
        site.desk.claim(ref, "tax")
    assert rows(site.store, "audit") == []


# -- state.db permissions ------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A careless umask: the permissions must come from the bot, not the environment."""
    old = os.umask(0)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_db_is_private_to_its_owner(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "data" / "state.db"
    store = Store(path)
    try:
        store.db["messages"].insert({"platform": "web", "user": "u", "direction": "in", "text": "t", "at": "x"})
        assert mode(path.parent) == 0o700
        assert mode(path) == 0o600
        sidecars = [path.with_name(path.name + s) for s in ("-wal", "-shm")]
        assert any(p.exists() for p in sidecars)
        for sidecar in sidecars:
            if sidecar.exists():
                assert mode(sidecar) == 0o600, sidecar
    finally:
        store.close()
    reopened = Store(path)
    try:
        reopened.db["messages"].insert({"platform": "web", "user": "u", "direction": "in", "text": "t", "at": "x"})
        for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if candidate.exists():
                assert mode(candidate) == 0o600, candidate
    finally:
        reopened.close()


def test_an_existing_folder_is_left_as_it_is(tmp_path: Path, open_umask: None) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    store = Store(folder / "state.db")
    store.close()
    assert mode(folder) == 0o755
    assert mode(folder / "state.db") == 0o600


def test_a_loosened_state_db_is_tightened_on_open(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store(path).close()
    os.chmod(path, 0o644)
    store = Store(path)
    store.close()
    assert mode(path) == 0o600


def test_the_engine_site_state_db_is_private(site: Site) -> None:
    site.say("hello")
    path = site.config.path(site.config.storage.state_db)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
