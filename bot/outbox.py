"""The persistent outbox and the dispatcher that empties it.

Every message the bot owes someone other than the sender of the message in
hand (an officer's notification, a reply relayed to a resident, a reminder)
is written to the ``outbox`` table in the same transaction as the change
that caused it. The dispatcher sends due rows through the sender of their
platform, retrying with exponential back-off (or the platform's own
``retry_after``) until delivered. A row that keeps failing is marked
``failed`` and shown by ``councilbot escalations outbox``; a recipient who
blocked the bot is marked ``blocked``. Nothing is silently dropped.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.messages import Option, OutgoingMessage
from bot.store import Store

Clock = Callable[[], datetime]
Sender = Callable[[OutgoingMessage], "str | Awaitable[str | None] | None"]
"""Sends one message; may be async; returns the platform's message id if it has one."""

MAX_ATTEMPTS = 10
BASE_DELAY = 2.0
MAX_DELAY = 900.0
LEASE = 120.0
"""Seconds a dispatcher holds a row it is sending before others may retry it."""


class DeliveryError(Exception):
    """A send that did not go through.

    ``retry_after`` is the platform's requested wait in seconds (HTTP 429);
    ``permanent`` means retrying cannot help (the bot was blocked, the chat
    was deleted, the token was revoked).
    """

    def __init__(self, message: str, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


def enqueue(store: Store, message: OutgoingMessage, purpose: str, ref: str, now: datetime, user: str = "") -> int:
    """Add ``message`` to the outbox; call inside the transaction that caused it.

    ``user`` names the person it is for (when a resident), so erasure finds it.
    """
    table = store.db["outbox"]
    table.insert(
        {
            "platform": message.platform,
            "conversation": message.conversation,
            "text": message.text,
            "options": json.dumps([[o.id, o.label] for o in message.options]),
            "purpose": purpose,
            "ref": ref,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now.isoformat(),
            "last_error": "",
            "created_at": now.isoformat(),
            "sent_at": "",
            "user": user,
        }
    )
    return int(table.last_pk)


def as_message(row: Mapping) -> OutgoingMessage:
    """The outgoing message an outbox row holds."""
    options = tuple(Option(i, label) for i, label in json.loads(row["options"] or "[]"))
    return OutgoingMessage(
        row["platform"], row["conversation"], row["text"], options, row["purpose"] or "", row["ref"] or ""
    )


@dataclass
class Dispatcher:
    """Sends due outbox rows through the senders it was given, one platform each."""

    store: Store
    senders: Mapping[str, Sender]
    clock: Clock
    max_attempts: int = MAX_ATTEMPTS
    conversation: str | None = None
    """Serve only this conversation (the terminal chat delivers to its own user)."""

    def due(self, now: datetime) -> list[dict]:
        """Pending rows whose time has come, for platforms this dispatcher serves."""
        if not self.senders:
            return []
        marks = ",".join("?" for _ in self.senders)
        # Only the oldest undelivered message of each conversation is due: a message
        # waiting to be retried holds back the ones after it, so nobody reads an
        # answer before the question it follows, or a reply out of order.
        sql = (
            "select * from outbox where status in ('pending', 'sending') and next_attempt_at <= ? "
            f"and platform in ({marks}) and id = (select min(id) from outbox as earlier where "
            "earlier.platform = outbox.platform and earlier.conversation = outbox.conversation "
            "and earlier.status in ('pending', 'sending'))"
        )
        args: list = [now.isoformat(), *self.senders]
        if self.conversation is not None:
            sql += " and conversation = ?"
            args.append(self.conversation)
        return list(self.store.db.query(sql + " order by id", args))

    def run_once(self) -> int:
        """Try every due row once (from synchronous code); return how many were delivered."""
        return asyncio.run(self.deliver())

    async def deliver(self, rounds: int = 20) -> int:
        """Send what is due, conversation by conversation in order; return how many were delivered.

        Each round sends the oldest due message of every conversation; rounds
        repeat while they deliver something (at most ``rounds``). Senders may
        be plain or async functions; each row is leased before it is sent.
        """
        delivered = 0
        for _ in range(rounds):
            sent = await self._round()
            delivered += sent
            if not sent:
                break
        return delivered

    async def _round(self) -> int:
        delivered = 0
        for row in self.due(self.clock()):
            if not self._claim(row):
                continue
            sender = self.senders[row["platform"]]
            try:
                result = sender(as_message(row))
                if inspect.isawaitable(result):
                    result = await result
            except DeliveryError as error:
                self._failed(row, error)
                continue
            except Exception as error:  # a sender bug must not stop the others
                self._failed(row, DeliveryError(f"{type(error).__name__}: {error}"))
                continue
            with self.store.transaction():
                self.store.db.execute(
                    "update outbox set status = 'sent', attempts = attempts + 1, sent_at = ?, last_error = '', "
                    "platform_message_id = ? where id = ?",
                    [self.clock().isoformat(), str(result) if result is not None else "", row["id"]],
                )
            delivered += 1
        return delivered

    def _claim(self, row: Mapping) -> bool:
        """Take a row for sending, so a second dispatcher does not send it too.

        The claim is a lease: a dispatcher that dies mid-send leaves the row
        to be retried once the lease runs out (delivery is at least once).
        """
        now = self.clock()
        with self.store.transaction():
            cursor = self.store.db.execute(
                "update outbox set status = 'sending', next_attempt_at = ? where id = ? "
                "and status in ('pending', 'sending') and next_attempt_at <= ?",
                [(now + timedelta(seconds=LEASE)).isoformat(), row["id"], now.isoformat()],
            )
        return cursor.rowcount == 1

    def _failed(self, row: Mapping, error: DeliveryError) -> None:
        attempts = row["attempts"] + 1
        if error.permanent:
            status, wait = "blocked", 0.0
        elif attempts >= self.max_attempts:
            status, wait = "failed", 0.0
        else:
            status = "pending"
            wait = (
                error.retry_after if error.retry_after is not None else min(BASE_DELAY * 2 ** (attempts - 1), MAX_DELAY)
            )
        later = self.clock() + timedelta(seconds=wait)
        with self.store.transaction():
            self.store.db.execute(
                "update outbox set status = ?, attempts = ?, next_attempt_at = ?, last_error = ? where id = ?",
                [status, attempts, later.isoformat(), str(error)[:500], row["id"]],
            )


def problems(store: Store) -> list[dict]:
    """Outbox rows that could not be delivered (failed or blocked)."""
    return list(store.db.query("select * from outbox where status in ('failed', 'blocked') order by id"))


def retry(store: Store, row_id: int, now: datetime) -> bool:
    """Put a failed row back in the queue; True if there was one."""
    with store.transaction():
        cursor = store.db.execute(
            "update outbox set status = 'pending', attempts = 0, next_attempt_at = ? "
            "where id = ? and status in ('failed', 'blocked')",
            [now.isoformat(), row_id],
        )
    return cursor.rowcount > 0


def ref_for_message(store: Store, platform: str, conversation: str, message_id: str) -> str | None:
    """The escalation reference of a notification the bot sent, by the platform's message id."""
    rows = list(
        store.db.query(
            "select ref from outbox where platform = ? and conversation = ? and platform_message_id = ? "
            "and ref != '' order by id desc limit 1",
            [platform, str(conversation), str(message_id)],
        )
    )
    return rows[0]["ref"] if rows else None


def messages_for(store: Store, ref: str, platform: str, purpose: str = "notify") -> list[dict]:
    """Sent messages about ``ref`` on ``platform`` (to update them when the escalation changes)."""
    return list(
        store.db.query(
            "select * from outbox where ref = ? and platform = ? and purpose = ? and status = 'sent' "
            "and platform_message_id != '' order by id",
            [ref, platform, purpose],
        )
    )
