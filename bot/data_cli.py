"""``councilbot data`` (export, erase, purge) and ``councilbot audit``: the
council's data-protection duties from the command line."""

from __future__ import annotations

import argparse
import json
import sys

from bot import privacy
from bot.config import Config
from bot.engine import utc_now
from bot.messages import OutgoingMessage
from bot.outbox import enqueue
from bot.store import Store


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add ``data`` and ``audit`` to the top-level parser."""
    data = commands.add_parser(
        "data",
        help="Export, erase or purge residents' data (UK GDPR requests and retention).",
        description="Export or erase one person's data, or purge what is past the retention periods.",
        epilog=(
            "Examples:\n  councilbot data export --platform telegram --user 12345 --as duty > sar.json\n"
            "  councilbot data erase --platform web --user SESSION --as duty\n"
            "  councilbot data purge            # e.g. nightly from cron"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data.add_argument("action", choices=("export", "erase", "purge"))
    data.add_argument("--platform", help="telegram, slack, web or terminal")
    data.add_argument("--user", help="the person's id on that platform")
    data.add_argument("--as", dest="officer", default="", help="the officer doing this (recorded in the audit trail)")
    data.add_argument("--send", action="store_true", help="export: also send the data to the person on their channel")
    data.add_argument("--yes", action="store_true", help="erase: do not ask for confirmation")

    audit = commands.add_parser(
        "audit",
        help="Show who viewed, claimed, replied to, closed or exported what, and when.",
        description="The audit trail of officer access and data requests.",
        epilog="Example:\n  councilbot audit --ref CB-ABC234",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audit.add_argument("--ref", help="only this escalation")
    audit.add_argument("--actor", help="only this officer (or 'resident', 'system')")
    audit.add_argument("--json", action="store_true")


def run_data(config: Config, args: argparse.Namespace) -> int:
    """Carry out one ``councilbot data`` action."""
    store = Store(config.path(config.storage.state_db))
    try:
        now = utc_now()
        if args.action == "purge":
            with store.transaction():
                result = privacy.purge(store, config, now)
            print(f"purged: {result.summary()}")
            return 0
        if not args.platform or not args.user:
            print("councilbot: export and erase need --platform and --user", file=sys.stderr)
            return 1
        actor = args.officer or "cli"
        if args.officer and args.officer not in {o.id for o in config.officers}:
            print(f"councilbot: {args.officer!r} is not a configured officer", file=sys.stderr)
            return 1
        who = privacy.subject(args.platform, args.user)
        if args.action == "export":
            data = privacy.export(store, args.platform, args.user)
            with store.transaction():
                privacy.audit(store, now, actor, "export", who=who, detail="subject access request")
                if args.send:
                    text = "Here is everything we hold about you from our chat:\n\n" + json.dumps(data, indent=1)
                    enqueue(store, OutgoingMessage(args.platform, args.user, text), "export", "", now)
            print(json.dumps(data, indent=1, ensure_ascii=False))
            if args.send:
                print("queued for delivery to the person on their channel ('councilbot run' sends it)", file=sys.stderr)
            return 0
        if not args.yes:
            if not sys.stdin.isatty():
                print("councilbot: erasing needs confirmation: add --yes", file=sys.stderr)
                return 1
            answer = input(f"Erase everything stored about {args.platform} user {args.user}? Type 'yes': ")
            if answer.strip().lower() != "yes":
                print("nothing erased")
                return 1
        with store.transaction():
            erased = privacy.erase(store, config, args.platform, args.user, now, actor)
        print(f"erased: {erased.summary()}")
        if erased.open_escalations:
            print(f"officers told about open escalation(s): {', '.join(erased.open_escalations)}")
        return 0
    finally:
        store.close()


def run_audit(config: Config, args: argparse.Namespace) -> int:
    """Print the audit trail, optionally for one escalation or actor."""
    store = Store(config.path(config.storage.state_db))
    try:
        sql, params = "select at, actor, action, ref, subject, detail from audit where 1 = 1", []
        if args.ref:
            sql += " and ref = ?"
            params.append(args.ref.upper())
        if args.actor:
            sql += " and actor = ?"
            params.append(args.actor)
        rows = list(store.db.query(sql + " order by id", params))
        if args.json:
            print(json.dumps(rows, indent=1))
            return 0
        for row in rows:
            target = row["ref"] or row["subject"]
            print(f"{row['at'][:19]}  {row['actor']:<14} {row['action']:<9} {target}  {row['detail']}".rstrip())
        print(f"{len(rows)} event(s)")
        return 0
    finally:
        store.close()
