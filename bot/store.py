"""``state.db``: conversations, the inbox, escalations and the message log.

Never rebuilt: schema changes are numbered migrations recorded in the
database itself. WAL mode, one writer. Everything one incoming message
changes is written in one transaction (``Store.transaction``).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils


def _v1(db: sqlite_utils.Database) -> None:
    db["conversations"].create({"platform": str, "user": str, "state": str, "updated_at": str}, pk=("platform", "user"))
    db["inbox"].create({"platform": str, "event_id": str, "received_at": str}, pk=("platform", "event_id"))
    db["messages"].create(
        {
            "id": int,
            "platform": str,
            "user": str,
            "direction": str,
            "text": str,
            "action": str,
            "intent": str,
            "at": str,
        },
        pk="id",
    )
    db["messages"].create_index(["platform", "user"])
    db["escalations"].create(
        {
            "ref": str,
            "platform": str,
            "user": str,
            "conversation": str,
            "topic": str,
            "intent": str,
            "question": str,
            "urgent": int,
            "status": str,
            "created_at": str,
        },
        pk="ref",
    )


def _v2(db: sqlite_utils.Database) -> None:
    """Named officers, escalation timers, notes, the outbox and KB suggestions."""
    table = db["escalations"]
    for column, kind in (
        ("officer", str),
        ("claimed_by", str),
        ("claimed_at", str),
        ("due_at", str),
        ("remind_at", str),
        ("reassign_at", str),
        ("reminded_at", str),
        ("reassigned_at", str),
        ("closed_at", str),
        ("close_note", str),
        ("updated_at", str),
    ):
        table.add_column(column, kind)
    table.create_index(["status"])
    db["escalation_notes"].create(
        {"id": int, "ref": str, "author": str, "kind": str, "text": str, "at": str},
        pk="id",
        foreign_keys=[("ref", "escalations", "ref")],
    )
    db["escalation_notes"].create_index(["ref"])
    db["outbox"].create(
        {
            "id": int,
            "platform": str,
            "conversation": str,
            "text": str,
            "options": str,
            "purpose": str,
            "ref": str,
            "status": str,
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,
            "created_at": str,
            "sent_at": str,
        },
        pk="id",
    )
    db["outbox"].create_index(["status", "next_attempt_at"])
    db["officer_inbox"].create({"id": int, "officer": str, "ref": str, "text": str, "at": str, "read": int}, pk="id")
    db["suggestions"].create(
        {"id": int, "ref": str, "topic": str, "question": str, "answer": str, "officer": str, "at": str},
        pk="id",
    )


def _v3(db: sqlite_utils.Database) -> None:
    """Remember the platform's id of each sent message (replies to notifications, updates)."""
    db["outbox"].add_column("platform_message_id", str, not_null_default="")
    db["outbox"].create_index(["platform", "conversation", "platform_message_id"])


def _v4(db: sqlite_utils.Database) -> None:
    """The web chat's transcript per session, and small settings (the cookie key)."""
    db["web_messages"].create({"id": int, "session": str, "role": str, "text": str, "options": str, "at": str}, pk="id")
    db["web_messages"].create_index(["session", "id"])
    db["settings"].create({"key": str, "value": str}, pk="key")


def _v5(db: sqlite_utils.Database) -> None:
    """The audit trail of officer access, and content-free analytics."""
    db["audit"].create(
        {"id": int, "at": str, "actor": str, "action": str, "ref": str, "subject": str, "detail": str}, pk="id"
    )
    db["audit"].create_index(["ref"])
    db["analytics"].create(
        {"id": int, "at": str, "platform": str, "action": str, "intent": str, "confidence": float, "text": str},
        pk="id",
    )
    db["messages"].create_index(["at"])


def _v6(db: sqlite_utils.Database) -> None:
    """Tag outbox rows with the person they are for, so erasure can find them all."""
    db["outbox"].add_column("user", str, not_null_default="")
    db["outbox"].create_index(["platform", "user"])


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6]
"""Schema changes in order; the database records how many it has had."""


class StoreError(Exception):
    """state.db cannot be opened or is not councilbot's."""


class Store:
    """The bot's persistent state, in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        fresh = not self.path.exists()
        if str(path) != ":memory:":
            if not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, mode=0o700)
        try:
            if fresh and str(path) != ":memory:":
                self.path.touch(mode=0o600)
                os.chmod(self.path, 0o600)
            self.db = sqlite_utils.Database(sqlite3.connect(str(path), isolation_level=None, check_same_thread=False))
            self.db.execute("pragma busy_timeout = 5000")
            if str(path) != ":memory:":
                self.db.enable_wal()
                # In WAL mode NORMAL never corrupts the database and survives an application
                # crash; only an OS crash or power cut can lose the last commits. It removes an
                # fsync from every commit (about 3x the web chat's throughput).
                self.db.execute("pragma synchronous = NORMAL")
                self._private()
            self._migrate()
            if str(path) != ":memory:":
                self._private()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{path}: cannot use this state database ({error})") from error

    def _private(self) -> None:
        """Keep the database and its WAL files readable by their owner only."""
        for suffix in ("", "-wal", "-shm"):
            sidecar = self.path.with_name(self.path.name + suffix)
            if sidecar.exists():
                os.chmod(sidecar, 0o600)

    def _migrate(self) -> None:
        if "migrations" not in self.db.table_names():
            self.db["migrations"].create({"version": int, "applied_at": str}, pk="version")
        done = {r["version"] for r in self.db["migrations"].rows}
        for version, migration in enumerate(MIGRATIONS, 1):
            if version not in done:
                with self.transaction():
                    migration(self.db)
                    self.db["migrations"].insert({"version": version, "applied_at": _now()})

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """Everything inside commits together, or not at all."""
        conn = self.db.conn
        if conn.in_transaction:
            yield self.db
            return
        conn.execute("begin immediate")
        try:
            yield self.db
        except BaseException:
            conn.execute("rollback")
            raise
        conn.execute("commit")

    def seen(self, platform: str, event_id: str, at: str = "") -> bool:
        """Record an incoming event; True if it had been recorded before."""
        if not event_id:
            return False
        cursor = self.db.execute(
            "insert or ignore into inbox (platform, event_id, received_at) values (?, ?, ?)",
            [platform, event_id, at or _now()],
        )
        return cursor.rowcount == 0

    def state(self, platform: str, user: str) -> dict:
        """The conversation state of one person (empty if new)."""
        rows = list(self.db.query("select state from conversations where platform = ? and user = ?", [platform, user]))
        return json.loads(rows[0]["state"]) if rows else {}

    def save_state(self, platform: str, user: str, state: dict, at: str = "") -> None:
        """Replace the conversation state of one person."""
        self.db["conversations"].upsert(
            {"platform": platform, "user": user, "state": json.dumps(state), "updated_at": at or _now()},
            pk=("platform", "user"),
        )

    def log(
        self, platform: str, user: str, direction: str, text: str, action: str = "", intent: str = "", at: str = ""
    ) -> None:
        """Keep one message of a conversation (``in`` or ``out``)."""
        self.db["messages"].insert(
            {
                "platform": platform,
                "user": user,
                "direction": direction,
                "text": text,
                "action": action,
                "intent": intent or "",
                "at": at or _now(),
            }
        )

    def escalations(self, status: str | None = None) -> list[dict]:
        """Escalations, newest first, optionally of one status."""
        if status:
            return list(self.db.query("select * from escalations where status = ? order by created_at desc", [status]))
        return list(self.db.query("select * from escalations order by created_at desc"))

    def close(self) -> None:
        """Close the database."""
        self.db.close()


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")
