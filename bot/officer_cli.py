"""The officers' command line: ``councilbot escalations``, ``officers check``
and ``kb suggestions``.

Officers who work from a terminal use these; Slack and Telegram officers
get the same operations through buttons. Every action goes through
``bot.escalations.Desk``; afterwards the command-line inbox is delivered.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime

from bot.config import Config
from bot.engine import utc_now
from bot.escalations import Desk, DeskError
from bot.messages import OutgoingMessage
from bot.outbox import Dispatcher, problems, retry
from bot.routing import Router
from bot.store import Store

ACTIONS = ("list", "show", "claim", "reply", "close", "reassign", "inbox", "tick", "outbox", "retry")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add ``escalations`` and ``officers`` to the top-level parser."""
    esc = commands.add_parser(
        "escalations",
        help="Work the escalation inbox: list, show, claim, reply, close, reassign.",
        description="Work the escalation inbox. --as names the officer (default: $COUNCILBOT_OFFICER).",
        epilog=(
            "Examples:\n  councilbot escalations list --as duty\n"
            '  councilbot escalations reply CB-ABC234 "Your new bin comes on Friday." --as waste\n'
            "  councilbot escalations tick      # reminders and reassignment, e.g. from cron"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    esc.add_argument("action", choices=ACTIONS, help="what to do")
    esc.add_argument("ref", nargs="?", help="the escalation's reference, e.g. CB-ABC234 (outbox row id for retry)")
    esc.add_argument("text", nargs="?", help="reply text, close note, or the officer id to reassign to")
    esc.add_argument("--as", dest="officer", default=os.environ.get("COUNCILBOT_OFFICER", ""), help="officer id")
    esc.add_argument("--json", action="store_true", help="machine-readable output (list, show)")
    esc.add_argument("--all", action="store_true", help="list: include closed escalations")
    esc.add_argument("--add-to-kb", action="store_true", help="reply: suggest the answer for the knowledge base")

    officers = commands.add_parser(
        "officers",
        help="Check who receives escalations for every topic.",
        description="Check the officers and escalation settings: every topic reaches someone, every backup exists.",
        epilog="Example:\n  councilbot officers check",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    officers.add_argument("action", choices=("check",))


def cli_sender(store: Store, clock=utc_now):
    """Deliver a notification to an officer's command-line inbox."""

    def send(message: OutgoingMessage) -> None:
        store.db["officer_inbox"].insert(
            {
                "officer": message.conversation,
                "ref": message.ref,
                "text": message.text,
                "at": clock().isoformat(),
                "read": 0,
            }
        )

    return send


def deliver_inbox(store: Store) -> int:
    """Deliver pending notifications for command-line officers."""
    return Dispatcher(store, {"cli": cli_sender(store)}, utc_now).run_once()


def run_escalations(config: Config, args: argparse.Namespace) -> int:
    """Carry out one ``councilbot escalations`` action."""
    store = Store(config.path(config.storage.state_db))
    desk = Desk(store, config, utc_now)
    try:
        return _act(desk, store, args)
    except DeskError as error:
        print(f"councilbot: {error}", file=sys.stderr)
        return 1
    finally:
        deliver_inbox(store)
        store.close()


def _need(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        if not getattr(args, name):
            hint = {
                "officer": "--as OFFICER (or set COUNCILBOT_OFFICER)",
                "ref": "a reference such as CB-ABC234",
                "text": "the text (in quotes)",
            }[name]
            raise DeskError(f"'{args.action}' needs {hint}")


def _act(desk: Desk, store: Store, args: argparse.Namespace) -> int:
    action = args.action
    if action == "tick":
        for line in desk.tick():
            print(line)
        return 0
    if action == "outbox":
        rows = problems(store)
        for row in rows:
            print(
                f"#{row['id']} {row['status']} to {row['platform']}:{row['conversation']} ({row['ref']}) "
                f"after {row['attempts']} attempt(s): {row['last_error']}"
            )
        print(f"{len(rows)} undelivered message(s)" if rows else "every message has been delivered or is queued")
        return 0
    if action == "retry":
        _need(args, "ref")
        if not (args.ref or "").isdigit() or not retry(store, int(args.ref), utc_now()):
            raise DeskError(f"no failed outbox message #{args.ref}; see 'councilbot escalations outbox'")
        print(f"#{args.ref} queued again")
        return 0
    _need(args, "officer")
    desk.officer(args.officer)
    if action == "inbox":
        deliver_inbox(store)
        rows = list(
            store.db.query("select * from officer_inbox where officer = ? and read = 0 order by id", [args.officer])
        )
        for row in rows:
            print(f"[{row['at'][:16]}] {row['text']}\n")
        store.db.execute("update officer_inbox set read = 1 where officer = ? and read = 0", [args.officer])
        print(f"{len(rows)} new notification(s)")
        return 0
    if action == "list":
        rows = (
            desk.visible(args.officer, None)
            if not args.all
            else [
                r
                for r in store.db.query("select * from escalations order by created_at")
                if desk.can_see(desk.officer(args.officer), r)
            ]
        )
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=1))
            return 0
        for row in rows:
            flag = "URGENT " if row["urgent"] else ""
            holder = f" claimed by {row['claimed_by']}" if row["claimed_by"] else ""
            print(
                f"{row['ref']}  {flag}{row['status']}{holder}  [{row['topic']}] due {_short(row['due_at'])}  "
                f"{row['question'][:70]}"
            )
        print(f"{len(rows)} escalation(s)")
        return 0
    _need(args, "ref")
    if action == "show":
        record = desk.show(args.ref, args.officer)
        if args.json:
            print(json.dumps(record, ensure_ascii=False, indent=1))
            return 0
        print(
            f"{record['ref']} ({'URGENT, ' if record['urgent'] else ''}{record['status']}) topic {record['topic']}, "
            f"with {record['officer']}, from a resident on {record['platform']}, due {_short(record['due_at'])}"
        )
        for note in record["notes"]:
            print(f"  [{note['at'][:16]}] {note['author']} ({note['kind']}): {note['text']}")
        return 0
    if action == "claim":
        record = desk.claim(args.ref, args.officer)
        print(f"{record['ref']} is yours, {args.officer}")
        return 0
    if action == "reply":
        _need(args, "text")
        record = desk.reply(args.ref, args.officer, args.text, add_to_kb=args.add_to_kb)
        print(f"reply to {record['ref']} queued for the resident on {record['platform']}")
        return 0
    if action == "close":
        record = desk.close(args.ref, args.officer, args.text or "")
        print(f"{record['ref']} closed")
        return 0
    _need(args, "text")
    record = desk.reassign(args.ref, args.officer, args.text)
    print(f"{record['ref']} is now with {record['officer']}")
    return 0


def _short(moment: str) -> str:
    try:
        return datetime.fromisoformat(moment).strftime("%a %d %b %H:%M")
    except (TypeError, ValueError):
        return "-"


def run_officers_check(config: Config, topics: set[str]) -> int:
    """Print who gets each topic; exit 1 if the rota has problems."""
    router = Router(config)
    for topic, (officer, fallback) in router.coverage(topics).items():
        note = "  (no specialist: goes to the default officer)" if fallback else ""
        backup = f", backup {officer.backup}" if officer.backup else ", NO BACKUP"
        print(f"{topic:24} -> {officer.id} ({officer.name}{backup}){note}")
    missing = [o.id for o in config.officers if not o.backup]
    if missing:
        print(f"warning: no backup for {', '.join(missing)}: their unclaimed escalations cannot be reassigned")
    print(f"ok: {len(topics)} topics reach {len({router.officer_for(t).id for t in topics})} officer(s)")
    return 0
