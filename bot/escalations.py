"""The escalation desk: one set of operations for every officer channel.

A question the bot cannot answer becomes an escalation with a reference,
routed to a named officer by topic. Officers list, claim, reply to, close
and reassign escalations here, whether they act from the command line, Slack
or Telegram; the adapters only translate. Every change and the messages it
causes (through the outbox) commit in one transaction. Timers (reminders,
reassignment to a backup) are stored times that ``tick`` acts on, so they
survive restarts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import Config, OfficerConfig
from bot.messages import IncomingMessage, OutgoingMessage
from bot.outbox import Clock, enqueue
from bot.routing import Router
from bot.store import Store
from bot.workhours import describe

URGENT_REMIND = timedelta(minutes=30)
URGENT_REASSIGN = timedelta(hours=1)
HISTORY_LINES = 8
CLOSED = "closed"


class DeskError(Exception):
    """An officer action that cannot be done; the message says why, plainly."""


@dataclass(frozen=True)
class Ticket:
    """Where an escalation went and when a reply is due."""

    ref: str
    officer: OfficerConfig
    due: datetime
    due_text: str
    urgent: bool


def new_reference() -> str:
    """A short reference a person can read out on the phone (no 0/O or 1/I)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "CB-" + "".join(secrets.choice(alphabet) for _ in range(6))


def address_of(officer: OfficerConfig) -> tuple[str, str]:
    """(platform, conversation) where an officer's notifications go."""
    if officer.contact == "cli":
        return "cli", officer.id
    platform, _, conversation = officer.contact.partition(":")
    return platform, conversation


class Desk:
    """Opens escalations for the engine and carries out officers' actions."""

    def __init__(self, store: Store | None, config: Config, clock: Clock, router: Router | None = None) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.router = router or Router(config)

    # -- for the engine ---------------------------------------------------

    def plan(self, topic: str, urgent: bool, ref: str = "") -> Ticket:
        """Who would take a question on ``topic`` and by when; writes nothing."""
        officer = self.router.officer_for(topic, urgent)
        now = self.clock()
        hours = self.router.hours[officer.id]
        due = now + URGENT_REASSIGN if urgent else hours.add(now, self.config.escalation.reply_within_hours)
        return Ticket(ref or new_reference(), officer, due, describe(due, hours.zone, now), urgent)

    def open(self, message: IncomingMessage, topic: str, intent: str | None, question: str, urgent: bool) -> Ticket:
        """Record a new escalation and notify its officer (inside the caller's transaction)."""
        store = self._store()
        ticket = self.plan(topic, urgent)
        now = self.clock()
        remind, reassign = self._timers(ticket.officer, now, urgent)
        history = self._history(message.platform, message.user)
        store.db["escalations"].insert(
            {
                "ref": ticket.ref,
                "platform": message.platform,
                "user": message.user,
                "conversation": message.address,
                "topic": topic,
                "intent": intent or "",
                "question": question,
                "urgent": int(urgent),
                "status": "open",
                "created_at": now.isoformat(),
                "officer": ticket.officer.id,
                "claimed_by": "",
                "claimed_at": "",
                "due_at": ticket.due.isoformat(),
                "remind_at": remind.isoformat(),
                "reassign_at": reassign.isoformat(),
                "reminded_at": "",
                "reassigned_at": "",
                "closed_at": "",
                "close_note": "",
                "updated_at": now.isoformat(),
            }
        )
        self._note(ticket.ref, "resident", "question", question)
        lines = [
            f"{'URGENT - ' if urgent else ''}New question {ticket.ref} for {ticket.officer.name}",
            f"From: a resident on {message.platform}   Topic: {topic}" + (f"   Matched: {intent}" if intent else ""),
            f"Question: {question}",
        ]
        if history:
            lines.append("Conversation so far:")
            lines.extend(f"  {line}" for line in history)
        lines.append(f'Reply due {ticket.due_text}. Reply with: councilbot escalations reply {ticket.ref} "..."')
        self._notify(ticket.officer, ticket.ref, "\n".join(lines))
        return ticket

    def open_for(self, platform: str, user: str) -> dict | None:
        """The person's newest escalation that is not closed, if any."""
        rows = list(
            self._store().db.query(
                "select * from escalations where platform = ? and user = ? and status != ? "
                "order by created_at desc, rowid desc limit 1",
                [platform, user, CLOSED],
            )
        )
        return rows[0] if rows else None

    def latest_for(self, platform: str, user: str) -> dict | None:
        """The person's newest escalation, closed or not."""
        rows = list(
            self._store().db.query(
                "select * from escalations where platform = ? and user = ? "
                "order by created_at desc, rowid desc limit 1",
                [platform, user],
            )
        )
        return rows[0] if rows else None

    def find(self, ref: str) -> dict | None:
        """The escalation with this reference (any case), or None."""
        rows = list(self._store().db.query("select * from escalations where ref = ?", [ref.upper()]))
        return rows[0] if rows else None

    def add_detail(self, escalation: dict, text: str) -> None:
        """Append the person's follow-up to an open escalation and tell the officer."""
        self._note(escalation["ref"], "resident", "detail", text)
        self._touch(escalation["ref"])
        officer = self.officer_on(escalation)
        self._notify(officer, escalation["ref"], f"More from the resident on {escalation['ref']}: {text}")

    def status_text(self, escalation: dict) -> str:
        """A plain-English update on an escalation, for the person who raised it."""
        officer = self.officer_on(escalation)
        who = f"{officer.name}, {officer.role}" if officer.role else officer.name
        ref = escalation["ref"]
        if escalation["status"] == CLOSED:
            return f"Your question {ref} has been closed. If you still need help, just ask again."
        if escalation["status"] == "answered":
            return f"{who} has replied to {ref}; the reply is above in this chat. You can add more if you need to."
        due = datetime.fromisoformat(escalation["due_at"])
        zone = self.router.hours[officer.id].zone
        if escalation["claimed_by"]:
            return f"{who} is working on {ref} and aims to reply {describe(due, zone, self.clock())}."
        return f"{ref} is waiting for {who}, who aims to reply {describe(due, zone, self.clock())}."

    # -- officers' actions --------------------------------------------------

    def officer(self, officer_id: str) -> OfficerConfig:
        """The configured officer with this id, or a DeskError."""
        officer = self.router.get(officer_id)
        if officer is None:
            known = ", ".join(sorted(self.router.officers))
            raise DeskError(f"{officer_id!r} is not a configured officer (officers: {known})")
        return officer

    def can_see(self, officer: OfficerConfig, escalation: dict) -> bool:
        """Whether ``officer`` may see and act on ``escalation``."""
        if officer.sees_all or officer.id in (escalation["officer"], escalation["claimed_by"]):
            return True
        assigned = self.router.get(escalation["officer"])
        if assigned is not None and assigned.backup == officer.id:
            return True
        if escalation["urgent"]:
            return officer.id == self.config.escalation.safeguarding_officer
        return escalation["topic"] in officer.topics

    def visible(self, officer_id: str, status: str | None = None) -> list[dict]:
        """Escalations ``officer_id`` may see, urgent first, then oldest first."""
        officer = self.officer(officer_id)
        query = "select * from escalations" + (" where status = ?" if status else " where status != 'closed'")
        rows = self._store().db.query(query + " order by urgent desc, created_at", [status] if status else [])
        return [r for r in rows if self.can_see(officer, r)]

    def show(self, ref: str, officer_id: str) -> dict:
        """One escalation with its notes, if ``officer_id`` may see it."""
        escalation = self._visible(ref, officer_id)
        with self._store().transaction():
            self._audit(officer_id, "view", escalation["ref"])
        notes = list(
            self._store().db.query(
                "select author, kind, text, at from escalation_notes where ref = ? order by id", [escalation["ref"]]
            )
        )
        return escalation | {"notes": notes}

    def claim(self, ref: str, officer_id: str) -> dict:
        """Take an escalation; exactly one of two simultaneous claims wins."""
        store = self._store()
        with store.transaction():
            escalation = self._visible(ref, officer_id)
            if escalation["status"] == CLOSED:
                raise DeskError(f"{escalation['ref']} is closed")
            now = self.clock().isoformat()
            cursor = store.db.execute(
                "update escalations set claimed_by = ?, claimed_at = ?, "
                "status = case when status = 'open' then 'claimed' else status end, updated_at = ? "
                "where ref = ? and (claimed_by = '' or claimed_by is null)",
                [officer_id, now, now, escalation["ref"]],
            )
            if cursor.rowcount == 0:
                holder = self.find(escalation["ref"])["claimed_by"]
                if holder != officer_id:
                    raise DeskError(f"{escalation['ref']} is already claimed by {self._name(holder)}")
            self._note(escalation["ref"], officer_id, "claim", "claimed")
            self._audit(officer_id, "claim", escalation["ref"])
        return self.find(escalation["ref"])

    def reply(self, ref: str, officer_id: str, text: str, add_to_kb: bool = False) -> dict:
        """Send the officer's answer to the resident, on the resident's platform."""
        text = text.strip()
        if not text:
            raise DeskError("the reply is empty; write what the resident should read")
        store = self._store()
        officer = self.officer(officer_id)
        with store.transaction():
            escalation = self._visible(ref, officer_id)
            if escalation["status"] == CLOSED:
                raise DeskError(f"{escalation['ref']} is closed; the resident was not sent this reply")
            if escalation["claimed_by"] not in ("", None, officer_id):
                raise DeskError(f"{escalation['ref']} is claimed by {self._name(escalation['claimed_by'])}")
            now = self.clock().isoformat()
            store.db.execute(
                "update escalations set status = 'answered', claimed_by = ?, "
                "claimed_at = coalesce(nullif(claimed_at, ''), ?), updated_at = ? where ref = ?",
                [officer_id, now, now, escalation["ref"]],
            )
            self._note(escalation["ref"], officer_id, "reply", text)
            self._audit(officer_id, "reply", escalation["ref"])
            who = f"{officer.name} ({officer.role})" if officer.role else officer.name
            enqueue(
                store,
                OutgoingMessage(
                    escalation["platform"],
                    escalation["conversation"],
                    f"{who} replied about {escalation['ref']}:\n{text}",
                ),
                "relay",
                escalation["ref"],
                self.clock(),
            )
            if add_to_kb:
                self._suggest(escalation, officer_id, text)
        return self.find(escalation["ref"])

    def close(self, ref: str, officer_id: str, note: str = "") -> dict:
        """Close an escalation with an internal note (urgent ones need a note)."""
        store = self._store()
        with store.transaction():
            escalation = self._visible(ref, officer_id)
            if escalation["status"] == CLOSED:
                raise DeskError(f"{escalation['ref']} is already closed")
            if escalation["urgent"] and not note.strip():
                raise DeskError(
                    f"{escalation['ref']} is a safeguarding escalation: close it with a note saying what was done"
                )
            now = self.clock().isoformat()
            store.db.execute(
                "update escalations set status = 'closed', closed_at = ?, close_note = ?, updated_at = ? where ref = ?",
                [now, note.strip(), now, escalation["ref"]],
            )
            self._note(escalation["ref"], officer_id, "close", note.strip() or "closed")
            self._audit(officer_id, "close", escalation["ref"])
        return self.find(escalation["ref"])

    def reassign(self, ref: str, officer_id: str, to_id: str) -> dict:
        """Hand an escalation to another officer, who is notified."""
        target = self.officer(to_id)
        store = self._store()
        with store.transaction():
            escalation = self._visible(ref, officer_id)
            if escalation["status"] == CLOSED:
                raise DeskError(f"{escalation['ref']} is closed")
            self._move(escalation, target, f"reassigned by {self._name(officer_id)}")
            self._note(escalation["ref"], officer_id, "reassign", f"to {to_id}")
            self._audit(officer_id, "reassign", escalation["ref"], f"to {to_id}")
        return self.find(escalation["ref"])

    def suggest(self, ref: str, officer_id: str) -> None:
        """Record the officer's last reply as a suggested knowledge-base entry."""
        store = self._store()
        with store.transaction():
            escalation = self._visible(ref, officer_id)
            replies = list(
                store.db.query(
                    "select text from escalation_notes where ref = ? and kind = 'reply' order by id desc limit 1",
                    [escalation["ref"]],
                )
            )
            if not replies:
                raise DeskError(f"{escalation['ref']} has no reply yet to suggest for the knowledge base")
            self._suggest(escalation, officer_id, replies[0]["text"])

    def suggestions(self) -> list[dict]:
        """Suggested new knowledge-base entries, newest first."""
        return list(self._store().db.query("select * from suggestions order by id desc"))

    # -- timers -------------------------------------------------------------

    def tick(self) -> list[str]:
        """Send due reminders and reassign overdue unclaimed escalations; say what was done."""
        store = self._store()
        now = self.clock()
        done = []
        with store.transaction():
            rows = list(store.db.query("select * from escalations where status = 'open' order by created_at"))
            for escalation in rows:
                officer = self.officer_on(escalation)
                if escalation["reassign_at"] and now >= datetime.fromisoformat(escalation["reassign_at"]):
                    backup = self.router.get(officer.backup) if officer.backup else None
                    if backup is not None and not escalation["reassigned_at"]:
                        self._move(escalation, backup, f"not claimed in time by {officer.name}", automatic=True)
                        done.append(f"{escalation['ref']}: reassigned from {officer.id} to {backup.id}")
                        continue
                if (
                    escalation["remind_at"]
                    and now >= datetime.fromisoformat(escalation["remind_at"])
                    and not escalation["reminded_at"]
                ):
                    self._notify(
                        officer,
                        escalation["ref"],
                        f"Reminder: {escalation['ref']} is still waiting to be claimed. "
                        f"Question: {escalation['question']}",
                    )
                    store.db.execute(
                        "update escalations set reminded_at = ? where ref = ?", [now.isoformat(), escalation["ref"]]
                    )
                    done.append(f"{escalation['ref']}: reminded {officer.id}")
        return done

    # -- inside -------------------------------------------------------------

    def _store(self) -> Store:
        if self.store is None:
            raise DeskError("no state database is open")
        return self.store

    def _timers(self, officer: OfficerConfig, start: datetime, urgent: bool) -> tuple[datetime, datetime]:
        if urgent:
            return start + URGENT_REMIND, start + URGENT_REASSIGN
        hours = self.router.hours[officer.id]
        e = self.config.escalation
        return hours.add(start, e.remind_after_hours), hours.add(start, e.reassign_after_hours)

    def _move(self, escalation: dict, target: OfficerConfig, reason: str, automatic: bool = False) -> None:
        store = self._store()
        now = self.clock()
        remind, reassign = self._timers(target, now, bool(escalation["urgent"]))
        hours = self.router.hours[target.id]
        old_due = datetime.fromisoformat(escalation["due_at"])
        due = (
            old_due
            if escalation["urgent"]
            else max(old_due, hours.add(now, self.config.escalation.reply_within_hours / 2))
        )
        store.db.execute(
            "update escalations set officer = ?, claimed_by = '', claimed_at = '', status = case when status = "
            "'claimed' then 'open' else status end, remind_at = ?, reassign_at = ?, reminded_at = '', due_at = ?, "
            "reassigned_at = ?, updated_at = ? where ref = ?",
            [
                target.id,
                remind.isoformat(),
                reassign.isoformat(),
                due.isoformat(),
                now.isoformat() if automatic else escalation["reassigned_at"] or "",
                now.isoformat(),
                escalation["ref"],
            ],
        )
        self._notify(
            target,
            escalation["ref"],
            f"{'URGENT - ' if escalation['urgent'] else ''}{escalation['ref']} is now yours ({reason}). "
            f"Question: {escalation['question']}",
        )
        if due > old_due:
            enqueue(
                store,
                OutgoingMessage(
                    escalation["platform"],
                    escalation["conversation"],
                    f"Sorry for the wait. Your question {escalation['ref']} is now with {target.name}"
                    f"{', ' + target.role if target.role else ''}, who aims to reply {describe(due, hours.zone, now)}.",
                ),
                "update",
                escalation["ref"],
                now,
                escalation["user"],
            )

    def _visible(self, ref: str, officer_id: str) -> dict:
        officer = self.officer(officer_id)
        escalation = self.find(ref)
        if escalation is None or not self.can_see(officer, escalation):
            raise DeskError(f"no escalation {ref.upper()} that {officer_id} can see")
        return escalation

    def officer_on(self, escalation: dict) -> OfficerConfig:
        """The officer an escalation is with (routing it afresh if that officer has gone)."""
        return self.router.get(escalation["officer"] or "") or self.router.officer_for(
            escalation["topic"], bool(escalation["urgent"])
        )

    def _name(self, officer_id: str) -> str:
        officer = self.router.get(officer_id)
        return officer.name if officer else officer_id

    def _notify(self, officer: OfficerConfig, ref: str, text: str) -> None:
        platform, conversation = address_of(officer)
        enqueue(self._store(), OutgoingMessage(platform, conversation, text), "notify", ref, self.clock())

    def _note(self, ref: str, author: str, kind: str, text: str) -> None:
        self._store().db["escalation_notes"].insert(
            {"ref": ref, "author": author, "kind": kind, "text": text, "at": self.clock().isoformat()}
        )

    def _audit(self, officer_id: str, action: str, ref: str, detail: str = "") -> None:
        self._store().db["audit"].insert(
            {
                "at": self.clock().isoformat(),
                "actor": officer_id,
                "action": action,
                "ref": ref,
                "subject": "",
                "detail": detail,
            }
        )

    def _touch(self, ref: str) -> None:
        self._store().db.execute("update escalations set updated_at = ? where ref = ?", [self.clock().isoformat(), ref])

    def _suggest(self, escalation: dict, officer_id: str, answer: str) -> None:
        self._store().db["suggestions"].insert(
            {
                "ref": escalation["ref"],
                "topic": escalation["topic"],
                "question": escalation["question"],
                "answer": answer,
                "officer": officer_id,
                "at": self.clock().isoformat(),
            }
        )

    def _history(self, platform: str, user: str) -> list[str]:
        rows = list(
            self._store().db.query(
                "select direction, text from messages where platform = ? and user = ? order by id desc limit ?",
                [platform, user, HISTORY_LINES],
            )
        )
        return [f"{'resident' if r['direction'] == 'in' else 'bot'}: {r['text'][:300]}" for r in reversed(rows)]
