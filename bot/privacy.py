"""Residents' data: export, erasure and retention, as UK GDPR expects.

A council is the data controller for every conversation its bot holds.
``export`` gathers everything stored about one person (and nothing about
anyone else); ``erase`` deletes their messages and conversation state and
strips escalations down to the fields the council keeps for its records;
``purge`` removes what is older than the retention periods. Each is
recorded in the audit trail without the personal content itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import Config
from bot.messages import OutgoingMessage
from bot.outbox import enqueue
from bot.store import Store

ESCALATION_FIELDS = (
    "ref",
    "platform",
    "user",
    "conversation",
    "topic",
    "intent",
    "question",
    "urgent",
    "status",
    "officer",
    "claimed_by",
    "created_at",
    "due_at",
    "closed_at",
    "close_note",
)


PERSONAL_FIELDS = ("platform", "user", "conversation", "question")
"""Always removed on erasure: who the person is and what they wrote."""

OPTIONAL_FIELDS = (
    "topic",
    "intent",
    "officer",
    "claimed_by",
    "due_at",
    "closed_at",
    "created_at",
    "status",
    "close_note",
)
"""Removed on erasure unless ``[privacy] keep_after_erasure`` lists them."""


def subject(platform: str, user: str) -> str:
    """A stable pseudonym for a person in the audit trail (never their id itself)."""
    return "person:" + hashlib.sha256(f"{platform}\x00{user}".encode()).hexdigest()[:16]


def audit(store: Store, at: datetime, actor: str, action: str, ref: str = "", who: str = "", detail: str = "") -> None:
    """Record who did what, when (call inside the transaction doing it)."""
    store.db["audit"].insert(
        {"at": at.isoformat(), "actor": actor, "action": action, "ref": ref, "subject": who, "detail": detail}
    )


def export(store: Store, platform: str, user: str) -> dict:
    """Everything stored about one person, as plain data."""
    db = store.db
    conversations = [
        {"state": json.loads(r["state"] or "{}"), "updated_at": r["updated_at"]}
        for r in db.query(
            "select state, updated_at from conversations where platform = ? and user = ?", [platform, user]
        )
    ]
    messages = list(
        db.query(
            "select direction, text, action, intent, at from messages where platform = ? and user = ? order by id",
            [platform, user],
        )
    )
    escalations = []
    for row in db.query(
        "select * from escalations where platform = ? and user = ? order by created_at", [platform, user]
    ):
        notes = list(
            db.query("select author, kind, text, at from escalation_notes where ref = ? order by id", [row["ref"]])
        )
        escalations.append({k: row.get(k) for k in ESCALATION_FIELDS} | {"notes": notes})
    web = []
    if platform == "web":
        web = list(db.query("select role, text, at from web_messages where session = ? order by id", [user]))
    return {
        "about": {"platform": platform, "user": user},
        "conversation_state": conversations,
        "messages": messages,
        "web_chat_transcript": web,
        "escalations": escalations,
    }


@dataclass(frozen=True)
class Erased:
    """What an erasure removed, in counts (never content)."""

    messages: int
    conversations: int
    web_messages: int
    escalations_stripped: int
    notes: int
    open_escalations: tuple[str, ...]

    def summary(self) -> str:
        """A sentence for the person and the log."""
        return (
            f"{self.messages} message(s), {self.web_messages} web chat line(s), {self.conversations} conversation "
            f"record(s) and {self.notes} note(s) deleted; {self.escalations_stripped} escalation(s) kept without "
            "personal details"
        )


def erase(store: Store, config: Config, platform: str, user: str, now: datetime, actor: str) -> Erased:
    """Delete one person's data; keep only the configured escalation fields.

    Idempotent: erasing again removes nothing more. Officers with an open
    escalation from this person are told. Call inside a transaction.
    """
    db = store.db
    keep = set(config.privacy.keep_after_erasure) | {"ref"}
    refs = [r["ref"] for r in db.query("select ref from escalations where platform = ? and user = ?", [platform, user])]
    open_refs = tuple(
        r["ref"]
        for r in db.query(
            "select ref from escalations where platform = ? and user = ? and status != 'closed'", [platform, user]
        )
    )
    blank = [f for f in OPTIONAL_FIELDS if f not in keep]
    notes = 0
    for ref in refs:
        notes += db.execute("delete from escalation_notes where ref = ? and author = 'resident'", [ref]).rowcount
        db.execute(
            "update escalation_notes set text = ? where ref = ? and kind = 'reply'",
            ["[removed at the resident's request]", ref],
        )
        if "close_note" not in keep:
            db.execute("update escalation_notes set text = '[removed]' where ref = ? and kind = 'close'", [ref])
        sets = ", ".join(f"{f} = ''" for f in (*PERSONAL_FIELDS, *blank))
        db.execute(f"update escalations set {sets} where ref = ?", [ref])
        db.execute(
            "update outbox set text = '[removed]', status = case when status = 'pending' and purpose = 'notify' "
            "then 'cancelled' else status end, user = '', conversation = case when purpose = 'notify' "
            "then conversation else '' end where ref = ?",
            [ref],
        )
        db.execute("update officer_inbox set text = '[removed]' where ref = ?", [ref])
    messages = db.execute("delete from messages where platform = ? and user = ?", [platform, user]).rowcount
    conversations = db.execute("delete from conversations where platform = ? and user = ?", [platform, user]).rowcount
    web = db.execute("delete from web_messages where session = ?", [user]).rowcount if platform == "web" else 0
    db.execute(
        "update outbox set text = '[removed]', status = case when status = 'pending' then 'cancelled' else status end, "
        "user = '', conversation = '' where platform = ? and (user = ? or conversation = ?) and status != 'sending'",
        [platform, user, user],
    )
    result = Erased(messages, conversations, web, len(refs), notes, open_refs)
    for ref in open_refs:
        officer = db.execute("select officer from escalations where ref = ?", [ref]).fetchone()[0]
        _tell_officer(store, config, officer, ref, now)
    audit(store, now, actor, "erase", "", subject(platform, user), result.summary())
    return result


def _tell_officer(store: Store, config: Config, officer_id: str, ref: str, now: datetime) -> None:
    from bot.escalations import address_of

    officer = next((o for o in config.officers if o.id == officer_id), None)
    if officer is None:
        return
    platform, conversation = address_of(officer)
    text = (
        f"The resident behind {ref} asked for their data to be erased. Their words and contact details have been "
        "removed, so a reply cannot reach them. Please close the escalation with a note."
    )
    enqueue(store, OutgoingMessage(platform, conversation, text), "notify", ref, now)


@dataclass(frozen=True)
class Purged:
    """What a retention purge removed."""

    messages: int
    web_messages: int
    conversations: int
    escalations: int
    outbox: int
    inbox: int
    analytics: int

    def summary(self) -> str:
        """One line for the log or cron mail."""
        return ", ".join(f"{name.replace('_', ' ')}: {count}" for name, count in vars(self).items())


def purge(store: Store, config: Config, now: datetime) -> Purged:
    """Delete what is older than the retention periods (call inside a transaction)."""
    db = store.db
    messages_before = (now - timedelta(days=config.privacy.retain_messages_days)).isoformat()
    closed_before = (now - timedelta(days=config.privacy.retain_closed_escalations_days)).isoformat()
    old = [
        r["ref"]
        for r in db.query(
            "select ref from escalations where status = 'closed' and closed_at != '' and closed_at < ?", [closed_before]
        )
    ]
    for ref in old:
        db.execute("delete from escalation_notes where ref = ?", [ref])
        db.execute("delete from outbox where ref = ?", [ref])
    escalations = db.execute(
        "delete from escalations where status = 'closed' and closed_at != '' and closed_at < ?", [closed_before]
    ).rowcount
    result = Purged(
        messages=db.execute("delete from messages where at < ?", [messages_before]).rowcount,
        web_messages=db.execute("delete from web_messages where at < ?", [messages_before]).rowcount,
        conversations=db.execute("delete from conversations where updated_at < ?", [messages_before]).rowcount,
        escalations=escalations,
        outbox=db.execute(
            "delete from outbox where status = 'sent' and sent_at != '' and sent_at < ?", [messages_before]
        ).rowcount,
        inbox=db.execute("delete from inbox where received_at < ?", [messages_before]).rowcount,
        analytics=db.execute("delete from analytics where at < ?", [messages_before]).rowcount,
    )
    audit(store, now, "system", "purge", detail=result.summary())
    return result
