"""bot.data_cli: ``councilbot data export|erase|purge`` and ``councilbot audit``,
against a config.toml and state.db in tmp_path."""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tomli_w
from conftest import MONDAY_10, Clock, config_data

from bot import privacy
from bot.cli import main
from bot.config import Config, load
from bot.engine import Engine
from bot.messages import IncomingMessage, OutgoingMessage
from bot.outbox import enqueue
from bot.store import Store
from bot.wiring import make_matcher
from knowledge.base import KnowledgeBase

ALICE_QUESTION = "Why did an aardvark trample the petunias outside my flat?"
ALICE_WORDS = ("aardvark", "petunias")
BOB_QUESTION = "Is the xylophone quokka parade still happening on Saturday?"
BOB_WORDS = ("xylophone", "quokka")
ALICE = ("telegram", "555001")
BOB = ("telegram", "555002")


@dataclass
class Site:
    """A config.toml in tmp_path, and the engine the residents talk to."""

    folder: Path
    config: Config
    engine: Engine
    store: Store
    clock: Clock
    events: Iterator[int]

    def say(self, who: tuple[str, str], text: str) -> str:
        platform, user = who
        outcome = self.engine.handle(IncomingMessage(platform, user, text, event_id=f"ev{next(self.events)}"))
        assert outcome is not None
        return outcome.reference or ""

    def cli(self, *args: str) -> int:
        return main(["--config", str(self.folder / "config.toml"), *args])

    def fresh(self) -> Store:
        """state.db as another process would see it now."""
        return Store(self.config.path(self.config.storage.state_db))


@pytest.fixture
def site(tmp_path: Path, kb_small: KnowledgeBase) -> Iterator[Site]:
    (tmp_path / "config.toml").write_text(tomli_w.dumps(config_data()), encoding="utf-8")
    config = load(str(tmp_path / "config.toml"))
    store = Store(config.path(config.storage.state_db))
    clock = Clock(MONDAY_10)
    engine = Engine(kb_small, make_matcher(kb_small, config), config, store, clock=clock)
    yield Site(tmp_path, config, engine, store, clock, itertools.count(1))
    store.close()


@pytest.fixture
def no_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard input is a pipe that would say yes if asked."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("yes\n"))


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def rows(store: Store, table: str, **where: object) -> list[dict]:
    found = list(store.db.query(f"select * from {table} order by rowid"))
    return [r for r in found if all(r[k] == v for k, v in where.items())]


def people(site: Site) -> tuple[str, str]:
    """Alice and Bob each have a question with an officer; Alice's has a reply."""
    site.say(ALICE, "my bin was missed")
    alice_ref = site.say(ALICE, ALICE_QUESTION)
    bob_ref = site.say(BOB, BOB_QUESTION)
    assert alice_ref and bob_ref
    site.engine.desk.reply(alice_ref, "duty", "A warden will call round on Thursday.")
    return alice_ref, bob_ref


# -- export ---------------------------------------------------------------------------------------


def test_export_prints_everything_about_the_person_as_json(site: Site, capsys: pytest.CaptureFixture) -> None:
    alice_ref, bob_ref = people(site)
    assert site.cli("data", "export", "--platform", "telegram", "--user", "555001", "--as", "duty") == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert data == json.loads(json.dumps(privacy.export(site.store, *ALICE)))
    assert data["about"] == {"platform": "telegram", "user": "555001"}
    assert [m["text"] for m in data["messages"] if m["direction"] == "in"] == ["my bin was missed", ALICE_QUESTION]
    assert len([m for m in data["messages"] if m["direction"] == "out"]) == 2
    (esc,) = data["escalations"]
    assert esc["ref"] == alice_ref and esc["question"] == ALICE_QUESTION
    assert [n["kind"] for n in esc["notes"]] == ["question", "reply"]
    assert data["conversation_state"][0]["state"]["noticed"] is True
    for word in (*BOB_WORDS, bob_ref, "555002"):
        assert word not in out, word
    assert rows(site.store, "outbox", purpose="export") == []  # not sent without --send


def test_export_is_audited_with_the_officer(site: Site, capsys: pytest.CaptureFixture) -> None:
    people(site)
    assert site.cli("data", "export", "--platform", "telegram", "--user", "555001", "--as", "duty") == 0
    assert site.cli("data", "export", "--platform", "telegram", "--user", "555002") == 0
    capsys.readouterr()
    first, second = rows(site.store, "audit", action="export")
    assert first["actor"] == "duty"
    assert first["subject"] == privacy.subject(*ALICE)
    assert first["detail"] == "subject access request"
    assert abs(datetime.fromisoformat(first["at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert second["actor"] == "cli" and second["subject"] == privacy.subject(*BOB)
    assert "555001" not in json.dumps(first)


def test_export_send_queues_the_data_for_the_person(site: Site, capsys: pytest.CaptureFixture) -> None:
    people(site)
    before = max((r["id"] for r in rows(site.store, "outbox")), default=0)
    assert site.cli("data", "export", "--platform", "telegram", "--user", "555001", "--as", "duty", "--send") == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["about"]["user"] == "555001"
    assert "queued" in captured.err
    new = [r for r in rows(site.store, "outbox") if r["id"] > before]
    (sent,) = new
    assert (sent["platform"], sent["conversation"], sent["purpose"], sent["status"]) == (
        "telegram",
        "555001",
        "export",
        "pending",
    )
    body = sent["text"][sent["text"].index("{") :]
    sent_data = json.loads(body)
    assert [m["text"] for m in sent_data["messages"] if m["direction"] == "in"] == ["my bin was missed", ALICE_QUESTION]
    assert "quokka" not in sent["text"]


def test_export_of_someone_unknown_is_empty(site: Site, capsys: pytest.CaptureFixture) -> None:
    people(site)
    assert site.cli("data", "export", "--platform", "web", "--user", "nobody") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["messages"] == [] and data["escalations"] == [] and data["conversation_state"] == []


@pytest.mark.parametrize("action", ["export", "erase"])
def test_export_and_erase_need_the_person(site: Site, capsys: pytest.CaptureFixture, action: str) -> None:
    assert site.cli("data", action, "--platform", "telegram") == 1
    assert "--platform and --user" in capsys.readouterr().err
    assert site.cli("data", action, "--user", "555001", "--yes") == 1
    assert rows(site.store, "audit") == []


@pytest.mark.parametrize("action", ["export", "erase"])
def test_unknown_officer_is_refused(site: Site, capsys: pytest.CaptureFixture, action: str) -> None:
    people(site)
    code = site.cli("data", action, "--platform", "telegram", "--user", "555001", "--as", "mallory", "--yes")
    assert code == 1
    captured = capsys.readouterr()
    assert "'mallory' is not a configured officer" in captured.err
    assert captured.out == ""
    assert rows(site.store, "audit", action=action) == []
    assert rows(site.store, "messages", user="555001")


# -- erase ---------------------------------------------------------------------------------------


def test_erase_without_yes_and_without_a_terminal_refuses(
    site: Site, capsys: pytest.CaptureFixture, no_tty: None
) -> None:
    people(site)
    assert site.cli("data", "erase", "--platform", "telegram", "--user", "555001", "--as", "duty") == 1
    assert "--yes" in capsys.readouterr().err
    assert len(rows(site.store, "messages", user="555001")) == 4
    assert rows(site.store, "audit", action="erase") == []


def test_erase_asks_at_a_terminal_and_no_keeps_everything(
    site: Site, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice_ref, _ = people(site)
    monkeypatch.setattr(sys, "stdin", FakeTty("no\n"))
    assert site.cli("data", "erase", "--platform", "telegram", "--user", "555001", "--as", "duty") == 1
    out = capsys.readouterr().out
    assert "Type 'yes'" in out and "555001" in out
    assert "nothing erased" in out
    assert rows(site.store, "escalations", ref=alice_ref)[0]["question"] == ALICE_QUESTION
    assert rows(site.store, "audit", action="erase") == []


def test_erase_asks_at_a_terminal_and_yes_erases(
    site: Site, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice_ref, _ = people(site)
    monkeypatch.setattr(sys, "stdin", FakeTty("yes\n"))
    assert site.cli("data", "erase", "--platform", "telegram", "--user", "555001", "--as", "duty") == 0
    assert "erased: 4 message(s)" in capsys.readouterr().out
    assert rows(site.store, "messages", user="555001") == []
    assert rows(site.store, "escalations", ref=alice_ref)[0]["question"] == ""


def test_erase_with_yes(site: Site, capsys: pytest.CaptureFixture, no_tty: None) -> None:
    alice_ref, bob_ref = people(site)
    bob_messages = rows(site.store, "messages", user="555002")
    before = max((r["id"] for r in rows(site.store, "outbox")), default=0)
    assert site.cli("data", "erase", "--platform", "telegram", "--user", "555001", "--as", "duty", "--yes") == 0
    out = capsys.readouterr().out
    assert "erased: 4 message(s), 0 web chat line(s), 1 conversation record(s) and 1 note(s) deleted" in out
    assert "1 escalation(s) kept without personal details" in out
    # The escalation is answered, not closed: its officer is told.
    assert f"officers told about open escalation(s): {alice_ref}" in out
    (told,) = [r for r in rows(site.store, "outbox") if r["id"] > before]
    assert (told["platform"], told["conversation"], told["purpose"], told["ref"]) == (
        "cli",
        "duty",
        "notify",
        alice_ref,
    )
    (audit,) = rows(site.store, "audit", action="erase")
    assert audit["actor"] == "duty" and audit["subject"] == privacy.subject(*ALICE)
    for word in ("555001", *ALICE_WORDS):
        assert word not in json.dumps(audit)

    store = site.fresh()  # as after a restart
    try:
        assert rows(store, "messages", platform="telegram", user="555001") == []
        assert rows(store, "conversations", platform="telegram", user="555001") == []
        esc = rows(store, "escalations", ref=alice_ref)[0]
        assert (esc["platform"], esc["user"], esc["conversation"], esc["question"]) == ("", "", "", "")
        assert (esc["topic"], esc["status"], esc["officer"]) == ("general", "answered", "duty")
        assert rows(store, "messages", user="555002") == bob_messages
        assert rows(store, "escalations", ref=bob_ref)[0]["question"] == BOB_QUESTION
    finally:
        store.close()


def test_erase_twice_is_fine(site: Site, capsys: pytest.CaptureFixture, no_tty: None) -> None:
    people(site)
    args = ("data", "erase", "--platform", "telegram", "--user", "555001", "--yes")
    assert site.cli(*args) == 0
    capsys.readouterr()
    assert site.cli(*args) == 0
    out = capsys.readouterr().out
    assert "erased: 0 message(s), 0 web chat line(s), 0 conversation record(s) and 0 note(s) deleted" in out
    assert "officers told" not in out
    assert [r["actor"] for r in rows(site.store, "audit", action="erase")] == ["cli", "cli"]


def test_erase_refused_by_a_real_pipe(site: Site) -> None:
    people(site)
    env = {k: v for k, v in os.environ.items() if k != "COUNCILBOT_CONFIG"}
    result = subprocess.run(
        [
            *(sys.executable, "-m", "bot.cli", "--config", str(site.folder / "config.toml")),
            *("data", "erase", "--platform", "telegram", "--user", "555001"),
        ],
        input="yes\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=site.folder,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "confirmation" in result.stderr and "--yes" in result.stderr
    assert len(rows(site.store, "messages", user="555001")) == 4


# -- purge --------------------------------------------------------------------------------------


def test_purge_reports_what_it_removed(site: Site, capsys: pytest.CaptureFixture) -> None:
    now = datetime.now(UTC)
    db = site.store.db
    for label, age in (("old", 100), ("new", 10)):
        at = (now - timedelta(days=age)).isoformat()
        db["messages"].insert(
            {"platform": "web", "user": label, "direction": "in", "text": label, "action": "", "intent": "", "at": at}
        )
        db["web_messages"].insert({"session": label, "role": "resident", "text": label, "options": "[]", "at": at})
        db["conversations"].insert({"platform": "web", "user": label, "state": "{}", "updated_at": at})
        db["inbox"].insert({"platform": "web", "event_id": label, "received_at": at})
        db["analytics"].insert(
            {"at": at, "platform": "web", "action": "answer", "intent": "", "confidence": 1.0, "text": label}
        )
        row = enqueue(site.store, OutgoingMessage("web", label, label), "reply", "", now - timedelta(days=age))
        db.execute("update outbox set status = 'sent', sent_at = ? where id = ?", [at, row])
    for ref, status, closed_days in (
        ("CB-OLDCLS", "closed", 400),
        ("CB-NEWCLS", "closed", 300),
        ("CB-OPEN22", "open", 0),
    ):
        db["escalations"].insert(
            {
                "ref": ref,
                "platform": "web",
                "user": "u",
                "conversation": "u",
                "topic": "general",
                "question": "q",
                "urgent": 0,
                "status": status,
                "created_at": (now - timedelta(days=900)).isoformat(),
                "closed_at": (now - timedelta(days=closed_days)).isoformat() if status == "closed" else "",
            }
        )
        db["escalation_notes"].insert({"ref": ref, "author": "resident", "kind": "question", "text": "q", "at": "x"})

    assert site.cli("data", "purge") == 0
    out = capsys.readouterr().out.strip()
    assert out == (
        "purged: messages: 1, web messages: 1, conversations: 1, escalations: 1, outbox: 1, inbox: 1, analytics: 1"
    )
    assert [r["text"] for r in rows(site.store, "messages")] == ["new"]
    assert sorted(r["ref"] for r in rows(site.store, "escalations")) == ["CB-NEWCLS", "CB-OPEN22"]
    assert sorted(r["ref"] for r in rows(site.store, "escalation_notes")) == ["CB-NEWCLS", "CB-OPEN22"]
    (audit,) = rows(site.store, "audit", action="purge")
    assert audit["actor"] == "system"

    assert site.cli("data", "purge") == 0
    assert capsys.readouterr().out.strip() == (
        "purged: messages: 0, web messages: 0, conversations: 0, escalations: 0, outbox: 0, inbox: 0, analytics: 0"
    )


def test_purge_keeps_a_fresh_conversation(site: Site, capsys: pytest.CaptureFixture) -> None:
    site.clock.now = datetime.now(UTC)
    people(site)
    messages = len(rows(site.store, "messages"))
    assert site.cli("data", "purge") == 0
    assert "messages: 0" in capsys.readouterr().out
    assert len(rows(site.store, "messages")) == messages > 0
    assert len(rows(site.store, "escalations")) == 2


# -- the audit trail ----------------------------------------------------------------------------


def officer_actions(site: Site) -> str:
    ref = site.say(ALICE, ALICE_QUESTION)
    desk = site.engine.desk
    for act in (
        lambda: desk.show(ref, "duty"),
        lambda: desk.claim(ref, "duty"),
        lambda: desk.reply(ref, "duty", "On its way."),
        lambda: desk.reassign(ref, "lead", "waste"),
        lambda: desk.close(ref, "waste", "done"),
    ):
        site.clock.advance(minutes=10)
        act()
    return ref


def test_audit_lists_the_actions_on_one_escalation(site: Site, capsys: pytest.CaptureFixture) -> None:
    ref = officer_actions(site)
    other = site.say(BOB, BOB_QUESTION)
    site.engine.desk.show(other, "duty")
    assert site.cli("audit", "--ref", ref.lower()) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "5 event(s)"
    events = [line.split() for line in lines[:-1]]
    assert [(e[1], e[2]) for e in events] == [
        ("duty", "view"),
        ("duty", "claim"),
        ("duty", "reply"),
        ("lead", "reassign"),
        ("waste", "close"),
    ]
    assert all(e[3] == ref for e in events)
    assert events[0][0] == "2024-01-15T10:10:00"
    assert lines[3].rstrip().endswith("to waste")
    assert other not in "\n".join(lines)


def test_audit_json(site: Site, capsys: pytest.CaptureFixture) -> None:
    ref = officer_actions(site)
    assert site.cli("audit", "--ref", ref, "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["action"] for r in data] == ["view", "claim", "reply", "reassign", "close"]
    assert set(data[0]) == {"at", "actor", "action", "ref", "subject", "detail"}
    assert [datetime.fromisoformat(r["at"]) for r in data] == [
        MONDAY_10 + timedelta(minutes=10 * n) for n in range(1, 6)
    ]


def test_audit_shows_exports_and_erasures_by_officer(site: Site, capsys: pytest.CaptureFixture, no_tty: None) -> None:
    officer_actions(site)
    assert site.cli("data", "export", "--platform", "telegram", "--user", "555001", "--as", "lead") == 0
    assert site.cli("data", "erase", "--platform", "telegram", "--user", "555001", "--as", "lead", "--yes") == 0
    capsys.readouterr()
    assert site.cli("audit", "--actor", "lead") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[-1] == "3 event(s)"
    assert [line.split()[2] for line in lines[:-1]] == ["reassign", "export", "erase"]
    assert privacy.subject(*ALICE) in lines[1] and "subject access request" in lines[1]
    assert "555001" not in out
    for word in ALICE_WORDS:
        assert word not in out
    assert site.cli("audit", "--actor", "lead", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["action"] for r in data] == ["reassign", "export", "erase"]
    assert data[1]["subject"] == data[2]["subject"] == privacy.subject(*ALICE)


def test_audit_of_nothing(site: Site, capsys: pytest.CaptureFixture) -> None:
    assert site.cli("audit", "--ref", "CB-ABC234") == 0
    assert capsys.readouterr().out == "0 event(s)\n"
    assert site.cli("audit", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize("command", [["data"], ["audit"]])
def test_help_has_an_example(command: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        main([*command, "--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert "usage: councilbot" in out and "Example" in out
