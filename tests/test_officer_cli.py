"""bot.officer_cli: ``councilbot escalations``, ``officers check`` and ``kb suggestions``,
run as real subprocesses against a config.toml and state.db in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomli_w
from conftest import MONDAY_10, TRADE_WASTE, Clock, config_data

from bot.config import Config, parse
from bot.escalations import Desk
from bot.messages import IncomingMessage, OutgoingMessage
from bot.outbox import DeliveryError, Dispatcher, enqueue
from bot.store import Store

TAX_QUESTION = "Can I pay my council tax in twelve instalments instead of ten?"
CONTENT = {
    "entry": [
        {
            "id": "service.bins.missed",
            "kind": "faq",
            "topic": "waste",
            "audience": "resident",
            "title": "Missed bin",
            "questions": ["my bin was missed", "missed bin collection", "the bin men skipped my street"],
            "answer": "Report a missed bin at {page.missed_bin}.",
        },
        {
            "id": "service.counciltax.pay",
            "kind": "faq",
            "topic": "council-tax",
            "audience": "resident",
            "title": "Paying council tax",
            "questions": ["how do I pay my council tax", "pay council tax online", "council tax payment"],
            "answer": "Pay at {page.council_tax_pay}.",
        },
        {
            "id": "route.licensing.taxi",
            "kind": "route",
            "topic": "licensing",
            "audience": "resident",
            "title": "Taxi licensing",
            "questions": ["taxi driver licence", "how do i become a taxi driver", "renew my hackney licence"],
            "answer": "Taxi licences are dealt with by our licensing team.",
        },
        {
            "id": "safety.self-harm",
            "kind": "safety",
            "topic": "safeguarding",
            "audience": "anyone",
            "title": "Urgent help",
            "questions": ["i want to hurt myself", "i feel suicidal", "thinking of ending my life"],
            "answer": "Please call Samaritans on 116 123.",
        },
    ]
}


@dataclass
class Site:
    """A council's folder: config.toml, content and a state.db with two open escalations."""

    path: Path
    config: Config
    waste: str
    tax: str

    def store(self) -> Store:
        return Store(self.config.path(self.config.storage.state_db))

    def query(self, sql: str, args: list | None = None) -> list[dict]:
        store = self.store()
        try:
            return list(store.db.query(sql, args or []))
        finally:
            store.close()


def env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("COUNCILBOT_CONFIG", "COUNCILBOT_OFFICER")}
    clean.update(extra)
    return clean


def run(site: Site | Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    cwd = site.path if isinstance(site, Site) else site
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env(**extra_env),
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("councilbot: ")
    return lines[0]


def write_site(folder: Path, **sections: object) -> dict:
    (folder / "content").mkdir(exist_ok=True)
    (folder / "content" / "small.toml").write_text(tomli_w.dumps(CONTENT), encoding="utf-8")
    data = config_data(
        storage={"content_dir": "content", "knowledge_db": "data/knowledge.db", "state_db": "data/state.db"},
        **sections,
    )
    (folder / "config.toml").write_text(tomli_w.dumps(data), encoding="utf-8")
    return data


@pytest.fixture
def site(tmp_path: Path) -> Site:
    data = write_site(tmp_path)
    config = parse(data, str(tmp_path / "config.toml"), tmp_path)
    clock = Clock(MONDAY_10)
    store = Store(config.path(config.storage.state_db))
    try:
        desk = Desk(store, config, clock)
        with store.transaction():
            waste = desk.open(
                IncomingMessage("web", "res-1", TRADE_WASTE, conversation="chat-1"), "waste", None, TRADE_WASTE, False
            )
        clock.advance(minutes=5)
        with store.transaction():
            tax = desk.open(
                IncomingMessage("web", "res-2", TAX_QUESTION, conversation="chat-2"),
                "council-tax",
                None,
                TAX_QUESTION,
                False,
            )
    finally:
        store.close()
    return Site(tmp_path, config, waste.ref, tax.ref)


# -- list and show ----------------------------------------------------------------------------


def test_list_json_is_valid_and_shows_what_the_officer_may_see(site: Site) -> None:
    waste = run(site, "escalations", "list", "--as", "waste", "--json")
    assert waste.returncode == 0, waste.stderr
    rows = json.loads(waste.stdout)
    assert [r["ref"] for r in rows] == [site.waste]
    assert rows[0]["status"] == "open"
    assert rows[0]["topic"] == "waste"
    assert rows[0]["question"] == TRADE_WASTE
    assert rows[0]["officer"] == "waste"
    tax = json.loads(run(site, "escalations", "list", "--as", "tax", "--json").stdout)
    assert [r["ref"] for r in tax] == [site.tax]
    lead = json.loads(run(site, "escalations", "list", "--as", "lead", "--json").stdout)
    assert {r["ref"] for r in lead} == {site.waste, site.tax}


def test_list_plain(site: Site) -> None:
    result = run(site, "escalations", "list", "--as", "waste")
    assert result.returncode == 0
    assert site.waste in result.stdout
    assert site.tax not in result.stdout
    assert "1 escalation(s)" in result.stdout


def test_show(site: Site) -> None:
    shown = run(site, "escalations", "show", site.waste, "--as", "waste", "--json")
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["ref"] == site.waste
    assert [(n["kind"], n["text"]) for n in record["notes"]] == [("question", TRADE_WASTE)]
    plain = run(site, "escalations", "show", site.waste.lower(), "--as", "waste")
    assert plain.returncode == 0
    assert site.waste in plain.stdout.splitlines()[0]
    assert TRADE_WASTE in plain.stdout
    hidden = run(site, "escalations", "show", site.tax, "--as", "waste")
    assert site.tax in one_line_error(hidden)
    assert TAX_QUESTION not in hidden.stdout + hidden.stderr


# -- claim, reply, close, reassign ---------------------------------------------------------------


def test_claim_reply_close(site: Site) -> None:
    claimed = run(site, "escalations", "claim", site.waste, "--as", "waste")
    assert claimed.returncode == 0, claimed.stderr
    assert site.waste in claimed.stdout
    taken = run(site, "escalations", "claim", site.waste, "--as", "duty")
    assert "Wyn Jones" in one_line_error(taken)

    replied = run(site, "escalations", "reply", site.waste, "We can collect on Tuesdays.", "--as", "waste")
    assert replied.returncode == 0, replied.stderr
    (relay,) = site.query("select * from outbox where purpose = 'relay'")
    assert (relay["platform"], relay["conversation"], relay["ref"]) == ("web", "chat-1", site.waste)
    assert relay["text"].startswith("Wyn Jones")
    assert relay["text"].endswith("We can collect on Tuesdays.")
    assert relay["status"] == "pending"  # the web chat's own dispatcher sends it, not the CLI

    closed = run(site, "escalations", "close", site.waste, "Contract sent by email", "--as", "waste")
    assert closed.returncode == 0, closed.stderr
    (row,) = site.query("select * from escalations where ref = ?", [site.waste])
    assert (row["status"], row["close_note"]) == ("closed", "Contract sent by email")

    late = run(site, "escalations", "reply", site.waste, "One more thing", "--as", "waste")
    assert "closed" in one_line_error(late)
    assert len(site.query("select * from outbox where purpose = 'relay'")) == 1
    listed = json.loads(run(site, "escalations", "list", "--as", "waste", "--json", "--all").stdout)
    assert [(r["ref"], r["status"]) for r in listed] == [(site.waste, "closed")]


def test_reassign_and_the_inbox(site: Site) -> None:
    moved = run(site, "escalations", "reassign", site.waste, "tax", "--as", "waste")
    assert moved.returncode == 0, moved.stderr
    assert "tax" in moved.stdout
    (row,) = site.query("select officer from escalations where ref = ?", [site.waste])
    assert row["officer"] == "tax"
    inbox = run(site, "escalations", "inbox", "--as", "tax")
    assert inbox.returncode == 0, inbox.stderr
    assert site.waste in inbox.stdout and site.tax in inbox.stdout
    assert "2 new notification(s)" in inbox.stdout
    again = run(site, "escalations", "inbox", "--as", "tax")
    assert "0 new notification(s)" in again.stdout
    assert site.waste not in again.stdout
    refused = run(site, "escalations", "reassign", site.waste, "ghost", "--as", "tax")
    assert "ghost" in one_line_error(refused)


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [["list"], ["claim", "{ref}"], ["reply", "{ref}", "hello"], ["inbox"]],
    ids=lambda a: a[0],
)
def test_unknown_officer_is_refused(site: Site, action: list[str]) -> None:
    args = [a.format(ref=site.waste) for a in action]
    result = run(site, "escalations", *args, "--as", "ghost")
    line = one_line_error(result)
    assert "ghost" in line
    assert result.stdout == ""
    (row,) = site.query("select * from escalations where ref = ?", [site.waste])
    assert (row["status"], row["claimed_by"]) == ("open", "")
    assert site.query("select * from outbox where purpose = 'relay'") == []


def test_officer_without_the_topic_is_refused(site: Site) -> None:
    result = run(site, "escalations", "claim", site.waste, "--as", "tax")
    assert site.waste in one_line_error(result)
    (row,) = site.query("select claimed_by from escalations where ref = ?", [site.waste])
    assert row["claimed_by"] == ""


def test_officer_is_needed(site: Site) -> None:
    missing = run(site, "escalations", "list")
    assert "--as" in one_line_error(missing)
    from_env = run(site, "escalations", "list", "--json", COUNCILBOT_OFFICER="waste")
    assert from_env.returncode == 0, from_env.stderr
    assert [r["ref"] for r in json.loads(from_env.stdout)] == [site.waste]


def test_unknown_reference(site: Site) -> None:
    result = run(site, "escalations", "claim", "CB-ZZZZZZ", "--as", "waste")
    assert "CB-ZZZZZZ" in one_line_error(result)


def test_bad_rota_stops_with_the_key(tmp_path: Path) -> None:
    officers = [dict(o) for o in config_data()["officers"]]
    officers[1]["backup"] = "ghost"
    write_site(tmp_path, officers=officers)
    result = run(tmp_path, "escalations", "list", "--as", "waste")
    line = one_line_error(result, code=2)
    assert "officers[1] (waste).backup" in line and "ghost" in line


# -- officers check, tick, outbox, suggestions --------------------------------------------------------


def test_officers_check_names_officers_per_topic(site: Site) -> None:
    result = run(site, "officers", "check")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if "->" in line}
    assert set(lines) == {"waste", "council-tax", "licensing", "safeguarding"}
    assert "-> waste (Wyn Jones" in lines["waste"]
    assert "-> tax (Tara Khan" in lines["council-tax"]
    assert "-> safe (Sol Reid" in lines["safeguarding"]
    assert "-> duty (Dana Price" in lines["licensing"]
    assert "default" in lines["licensing"]
    assert "default" not in lines["waste"]
    assert "backup duty" in lines["waste"]


def test_tick_from_the_command_line(site: Site) -> None:
    # The escalations were opened in January 2024, so every timer has long passed.
    result = run(site, "escalations", "tick")
    assert result.returncode == 0, result.stderr
    assert f"{site.waste}: reassigned from waste to duty" in result.stdout
    assert f"{site.tax}: reassigned from tax to duty" in result.stdout
    rows = site.query("select ref, officer from escalations order by ref")
    assert {r["officer"] for r in rows} == {"duty"}
    again = run(site, "escalations", "tick")
    assert "reassigned" not in again.stdout


def test_outbox_and_retry(site: Site) -> None:
    store = site.store()
    try:
        clock = Clock(MONDAY_10)
        with store.transaction():
            row_id = enqueue(store, OutgoingMessage("slack", "U0WASTE1", "hello"), "notify", site.waste, clock())

        def down(message: OutgoingMessage) -> None:
            raise DeliveryError("channel_not_found")

        Dispatcher(store, {"slack": down}, clock, max_attempts=1).run_once()
    finally:
        store.close()
    listed = run(site, "escalations", "outbox")
    assert listed.returncode == 0
    assert f"#{row_id} failed to slack:U0WASTE1" in listed.stdout
    assert "channel_not_found" in listed.stdout
    assert "1 undelivered message(s)" in listed.stdout
    requeued = run(site, "escalations", "retry", str(row_id))
    assert requeued.returncode == 0, requeued.stderr
    (row,) = site.query("select status, attempts from outbox where id = ?", [row_id])
    assert (row["status"], row["attempts"]) == ("pending", 0)
    missing = run(site, "escalations", "retry", "9999")
    assert "9999" in one_line_error(missing)


def test_kb_suggestions_lists_answers_marked_for_the_knowledge_base(site: Site) -> None:
    store = site.store()
    try:
        Desk(store, site.config, Clock(MONDAY_10)).reply(
            site.waste, "waste", "Trade waste contracts start at 20 pounds a week.", add_to_kb=True
        )
    finally:
        store.close()
    replied = run(
        site, "escalations", "reply", site.tax, "Yes, ask us to spread it over twelve.", "--as", "tax", "--add-to-kb"
    )
    assert replied.returncode == 0, replied.stderr
    result = run(site, "kb", "suggestions")
    assert result.returncode == 0, result.stderr
    assert site.waste in result.stdout and site.tax in result.stdout
    assert TRADE_WASTE in result.stdout
    assert "Trade waste contracts start at 20 pounds a week." in result.stdout
    assert "Yes, ask us to spread it over twelve." in result.stdout
    assert "2 suggestion(s)" in result.stdout


@pytest.mark.parametrize("command", [["escalations"], ["officers"]])
def test_help_has_an_example(tmp_path: Path, command: list[str]) -> None:
    result = run(tmp_path, *command, "--help")
    assert result.returncode == 0
    assert "usage: councilbot" in result.stdout
    assert "Example" in result.stdout
