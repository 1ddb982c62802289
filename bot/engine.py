"""The engine: one message in, a decision and replies out.

``Engine.respond`` is the conversation logic for one message given the
conversation's state; ``Engine.handle`` wraps it in one transaction with the
inbox (a platform's retry is answered once), the state, the message log and
any escalation with its notifications; ``Engine.preview`` runs it on empty
state and writes nothing. The engine never imports an adapter or a
platform SDK: a notification to an officer on another platform is just an
outbox row addressed to that platform.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from rapidfuzz import fuzz

from bot import privacy, replies
from bot.config import Config
from bot.escalations import Desk, Ticket
from bot.messages import IncomingMessage, Option, Outcome, OutgoingMessage
from bot.outbox import Clock, enqueue
from bot.redact import redact
from bot.store import Store
from intents.decision import Decision
from intents.matcher import Matcher
from intents.normalise import clean, fold
from knowledge.base import Answer, KnowledgeBase
from knowledge.placeholders import render

HANDOFF = "handoff.human"
COMPLAINT = "smalltalk.complaint-about-bot"
LABEL_MATCH = 85.0
TOPIC_FLOOR = 0.25
_YES = {"yes", "y", "yeah", "yep", "yes please", "ok", "okay", "please", "sure", "go on", "aye"}
_NUMBER = re.compile(r"^\s*(?:number|option|no\.?)?\s*(\d{1,3})\s*[.)]?\s*$", re.IGNORECASE)
_REFERENCE = re.compile(r"\bCB-?([A-Z2-9]{6})\b", re.IGNORECASE)
_EXPORT = {"my data", "mydata", "show my data", "export my data", "download my data", "get my data", "export"}
_ERASE = {
    "delete my data",
    "forget me",
    "forget",
    "erase my data",
    "remove my data",
    "delete everything",
    "delete my messages",
    "erase me",
    "erase",
}
_CONFIRM_ERASE = {"yes", "yes delete", "yes delete it", "yes please", "delete", "confirm", "yes delete my data", "y"}
_FILLER = {
    "re",
    "ref",
    "reference",
    "about",
    "on",
    "for",
    "my",
    "question",
    "is",
    "there",
    "please",
    "hi",
    "hello",
    "thanks",
    "any",
    "the",
    "number",
    "regarding",
    "update",
    "news",
}
_UPDATE = re.compile(
    r"\b(any|an|what s the|whats the|got an?|is there an?) ?(update|news|progress|reply|answer)\b|^update\b"
)


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


@dataclass
class Turn:
    """What one message did: the outcome and the conversation's new state.

    ``forget`` means the person's data was just erased: nothing of this
    turn is written back.
    """

    outcome: Outcome
    state: dict
    forget: bool = False


class Engine:
    """Decides what to say; does no I/O beyond the store it is given."""

    def __init__(
        self,
        kb: KnowledgeBase,
        matcher: Matcher,
        config: Config,
        store: Store | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.kb = kb
        self.matcher = matcher
        self.config = config
        self.store = store
        self.clock = clock
        self.desk = Desk(store, config, clock)
        self.values = config.placeholders()

    # -- entry points -------------------------------------------------------

    def handle(self, message: IncomingMessage, deliver_later: bool = False) -> Outcome | None:
        """Answer one message and record everything it changed, atomically.

        With ``deliver_later`` the replies are also written to the outbox in
        the same transaction, for the dispatcher to send (with retries).
        Returns None for a platform's retry of an event already handled.
        """
        if self.store is None:
            raise RuntimeError("Engine.handle needs a store; use preview() for stateless answers")
        with self.store.transaction():
            now = self.clock().isoformat()
            if self.store.seen(message.platform, message.event_id, now):
                return None
            state = self.store.state(message.platform, message.user)
            turn = self.respond(message, state, write=True)
            outcome = turn.outcome
            if not turn.forget:
                turn.state["noticed"] = True
                self.store.save_state(message.platform, message.user, turn.state, now)
                self.store.log(message.platform, message.user, "in", clean(message.text)[:4000], at=now)
                self.store.log(
                    message.platform, message.user, "out", outcome.plain_text, outcome.action, outcome.intent or "", now
                )
                if not state.get("noticed"):
                    outcome = self._with_notice(outcome)
            self.store.db["analytics"].insert(
                {
                    "at": self.clock().isoformat(),
                    "platform": message.platform,
                    "action": outcome.action,
                    "intent": outcome.intent or "",
                    "confidence": outcome.confidence,
                    "text": "" if turn.forget else redact(clean(message.text)[:500]),
                }
            )
            if deliver_later:
                for reply in outcome.replies:
                    enqueue(self.store, reply, "reply", outcome.reference or "", self.clock(), message.user)
        return outcome

    def _with_notice(self, outcome: Outcome) -> Outcome:
        """Put the short privacy notice before the first reply of a conversation, as its own message."""
        if not outcome.replies:
            return outcome
        first = outcome.replies[0]
        notice = OutgoingMessage(first.platform, first.conversation, replies.privacy_notice(self.config))
        return replace(outcome, replies=(notice, *outcome.replies))

    def preview(self, text: str) -> Outcome:
        """What the bot would say to ``text`` from a new conversation; writes nothing."""
        return self.respond(IncomingMessage("preview", "preview", text), {}, write=False).outcome

    # -- the conversation ---------------------------------------------------

    def respond(self, message: IncomingMessage, state: dict, write: bool = False) -> Turn:
        """The reply to ``message`` given the conversation's ``state``.

        With ``write`` the escalations it opens are stored (the caller holds
        the transaction); without, they are only planned.
        """
        text = clean(message.text)
        limit = self.config.chat.max_message_chars
        if message.choice and not fold(text):
            text = message.choice
        if not fold(text):
            return self._say(message, state, replies.empty(), "clarify", keep=True)
        if len(text) > limit:
            return self._say(message, state, replies.too_long(len(text), limit), "clarify", keep=True)
        decision = self.matcher.match(text)
        if decision.safety and decision.intent is not None:
            return self._intent(message, state, decision.intent, 1.0, text, write)
        folded = fold(text)
        if state.get("confirm_erase"):
            if folded in _CONFIRM_ERASE and write:
                return self._erase(message, state)
            state = {k: v for k, v in state.items() if k != "confirm_erase"}
            if folded in {"no", "n", "cancel", "stop", "keep", "no thanks", "keep it"}:
                return self._say(message, state, replies.erase_cancelled(), "answer")
        if (folded in _EXPORT or folded in _ERASE) and message.shared:
            return self._say(message, state, replies.private_only(), "answer")
        if folded in _EXPORT:
            return self._export(message, state, write)
        if folded in _ERASE:
            turn = self._say(message, state, replies.confirm_erase(self.config), "clarify")
            turn.state["confirm_erase"] = True
            return turn
        open_one = self.desk.open_for(message.platform, message.user) if write else None
        reference = _REFERENCE.search(text)
        if write and reference:
            return self._about(message, state, "CB-" + reference.group(1).upper(), text, reference.group(0))
        if write and _UPDATE.search(fold(text)):
            latest = open_one or self.desk.latest_for(message.platform, message.user)
            if latest is not None:
                return self._say(message, state, self.desk.status_text(latest), "answer")
        pending = [Option(i, label) for i, label in state.get("pending", [])]
        if message.choice:
            if message.choice in {o.id for o in pending}:
                return self._intent(message, state, message.choice, 1.0, text, write, chosen=True)
            return self._say(message, state, replies.stale_choice(), "clarify")
        number = _NUMBER.match(text)
        if number:
            if not pending:
                return self._say(message, state, replies.no_options(), "clarify")
            n = int(number.group(1))
            if not 1 <= n <= len(pending):
                return self._say(message, state, replies.out_of_range(len(pending)), "clarify", keep=True)
            return self._intent(message, state, pending[n - 1].id, 1.0, text, write, chosen=True)
        if pending:
            chosen = self._chosen(text, pending, decision)
            if chosen is not None:
                return self._intent(message, state, chosen, 1.0, text, write, chosen=True)
        if open_one is not None and self._adds_to(decision):
            self.desk.add_detail(open_one, text)
            officer = self.desk.officer_on(open_one)
            return self._say(message, state, replies.detail_added(open_one["ref"], officer.name), "escalate")
        if decision.action == "answer" and decision.intent is not None:
            return self._intent(message, state, decision.intent, decision.confidence, text, write)
        if decision.action == "clarify":
            options = [Option(i, self._title(i)) for i in decision.options]
            options.append(Option(HANDOFF, replies.choice_prompt()))
            turn = self._say(message, state, replies.clarify(), "clarify", options=options)
            turn.outcome = replace(turn.outcome, confidence=decision.confidence, options=decision.options)
            turn.state["question"] = text
            return turn
        return self._handoff(message, state, text, self._likely_topic(decision), decision.confidence, None, write)

    def _export(self, message: IncomingMessage, state: dict, write: bool) -> Turn:
        """Everything held about this person, as readable JSON, on their own channel."""
        if not write or self.store is None:
            return self._say(message, state, replies.export_preview(), "answer")
        data = privacy.export(self.store, message.platform, message.user)
        privacy.audit(
            self.store, self.clock(), "resident", "export", who=privacy.subject(message.platform, message.user)
        )
        body = json.dumps(data, indent=1, ensure_ascii=False)
        return self._say(message, state, f"{replies.export_intro(self.config)}\n\n{body}", "answer")

    def _erase(self, message: IncomingMessage, state: dict) -> Turn:
        """Erase this person's data (they have confirmed)."""
        assert self.store is not None
        erased = privacy.erase(self.store, self.config, message.platform, message.user, self.clock(), "resident")
        turn = self._say(message, {}, replies.erased(erased.summary()), "answer")
        turn.forget = True
        return turn

    def _adds_to(self, decision: Decision) -> bool:
        """Whether a message in a conversation with an open escalation is more detail for it."""
        if decision.action != "answer" or decision.intent is None:
            return True
        entry = self.kb.get(decision.intent)
        return entry is not None and (entry.kind in ("handoff", "route") or entry.id == COMPLAINT)

    def _about(self, message: IncomingMessage, state: dict, ref: str, text: str, quoted: str) -> Turn:
        """A message quoting a reference: its status, and any new detail added to it."""
        escalation = self.desk.find(ref)
        if escalation is None or (escalation["platform"], escalation["user"]) != (message.platform, message.user):
            return self._say(message, state, replies.unknown_reference(ref), "clarify")
        rest = fold(text.replace(quoted, " "))
        rest = _UPDATE.sub(" ", rest)
        words = [w for w in rest.split() if w not in _FILLER]
        status = self.desk.status_text(escalation)
        if words and escalation["status"] != "closed":
            self.desk.add_detail(escalation, text)
            officer = self.desk.officer_on(escalation)
            return self._say(message, state, f"{replies.detail_added(ref, officer.name)} {status}", "escalate")
        return self._say(message, state, status, "answer")

    def _chosen(self, text: str, pending: list[Option], decision: Decision) -> str | None:
        folded = fold(text)
        if folded in _YES and len(pending) == 1:
            return pending[0].id
        for option in pending:
            if fuzz.ratio(folded, fold(option.label)) >= LABEL_MATCH:
                return option.id
        ids = {o.id for o in pending}
        top = decision.candidates[0] if decision.candidates else None
        if top is not None and top.intent in ids and top.score >= self.matcher.thresholds.clarify:
            return top.intent
        return None

    def _intent(
        self,
        message: IncomingMessage,
        state: dict,
        intent: str,
        confidence: float,
        text: str,
        write: bool,
        chosen: bool = False,
    ) -> Turn:
        entry = self.kb.get(intent)
        if entry is None:
            return self._handoff(message, state, text, "general", confidence, None, write)
        if entry.kind == "handoff":
            question = state.get("question") or text
            return self._handoff(message, state, question, state.get("topic", "general"), confidence, intent, write)
        if entry.kind == "safety":
            return self._safety(message, state, entry, text, write)
        if entry.kind == "route":
            return self._handoff(message, state, text, entry.topic, confidence, intent, write, preface=entry)
        body = render(entry.answer, self.values)
        if entry.id == COMPLAINT:
            option = Option(HANDOFF, replies.choice_prompt())
            body = f"{body}\n\n{replies.offer_person()}"
            return self._say(message, state, body, "answer", intent=intent, confidence=confidence, options=[option])
        options = [Option(f, self._title(f)) for f in entry.follow_ups if self.kb.get(f)]
        if options:
            body = f"{body}\n\n{replies.follow_ups()}"
        turn = self._say(message, state, body, "answer", intent=intent, confidence=confidence, options=options)
        if entry.kind == "faq":
            turn.state["topic"] = entry.topic
            if not chosen:
                turn.state["question"] = text
        return turn

    def _ticket(
        self, message: IncomingMessage, topic: str, intent: str | None, question: str, urgent: bool, write: bool
    ) -> Ticket:
        if write:
            return self.desk.open(message, topic, intent, question, urgent)
        return self.desk.plan(topic, urgent, ref="CB-PREVIEW")

    def _safety(self, message: IncomingMessage, state: dict, entry: Answer, text: str, write: bool) -> Turn:
        ticket = self._ticket(message, entry.topic, entry.id, text, True, write)
        body = f"{render(entry.answer, self.values)}\n\n{replies.urgent_flagged(ticket)}"
        turn = self._say(message, state, body, "answer", intent=entry.id, confidence=1.0)
        turn.outcome = replace(turn.outcome, urgent=True, officer=ticket.officer.id, reference=ticket.ref)
        return turn

    def _handoff(
        self,
        message: IncomingMessage,
        state: dict,
        question: str,
        topic: str,
        confidence: float,
        intent: str | None,
        write: bool,
        preface: Answer | None = None,
    ) -> Turn:
        ticket = self._ticket(message, topic, intent, question, False, write)
        body = replies.handed_off(self.config.council, ticket)
        if preface is not None:
            body = f"{render(preface.answer, self.values)}\n\n{body}"
        turn = self._say(message, state, body, "escalate", intent=intent, confidence=confidence)
        turn.outcome = replace(turn.outcome, officer=ticket.officer.id, reference=ticket.ref)
        return turn

    def _say(
        self,
        message: IncomingMessage,
        state: dict,
        text: str,
        action: str,
        *,
        intent: str | None = None,
        confidence: float = 0.0,
        options: list[Option] | None = None,
        keep: bool = False,
    ) -> Turn:
        options = options or []
        new_state = {k: v for k, v in state.items() if k in ("topic", "question", "noticed")}
        if keep and state.get("pending"):
            new_state["pending"] = state["pending"]
        elif options:
            new_state["pending"] = [[o.id, o.label] for o in options]
        reply = OutgoingMessage(message.platform, message.address, text, tuple(options))
        return Turn(Outcome(action, intent, round(confidence, 4), (reply,)), new_state)

    def _title(self, intent: str) -> str:
        entry = self.kb.get(intent)
        return entry.title if entry else intent

    def _likely_topic(self, decision: Decision) -> str:
        for candidate in decision.candidates[:1]:
            entry = self.kb.get(candidate.intent)
            if (
                entry is not None
                and candidate.score >= TOPIC_FLOOR
                and candidate.well_founded(self.matcher.thresholds)
                and entry.kind in ("faq", "route")
            ):
                return entry.topic
        return "general"
