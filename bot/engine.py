"""The engine: one message in, a decision and replies out.

``Engine.respond`` is the whole conversation logic as a function of the
message and the conversation's state; ``Engine.handle`` wraps it with the
store (dedupe, state, log and escalation in one transaction) and
``Engine.preview`` runs it against empty state without writing anything.
The engine never imports an adapter or a platform SDK.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from bot import replies
from bot.config import Config
from bot.messages import IncomingMessage, Option, Outcome, OutgoingMessage
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


@dataclass
class Turn:
    """What one message did: the outcome, the new state, any escalation."""

    outcome: Outcome
    state: dict
    escalation: dict | None = None
    extra: list[OutgoingMessage] = field(default_factory=list)


def new_reference() -> str:
    """A short reference a person can read out on the phone (no 0/O or 1/I)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "CB-" + "".join(secrets.choice(alphabet) for _ in range(6))


class Engine:
    """Decides what to say; does no I/O beyond the store it is given."""

    def __init__(self, kb: KnowledgeBase, matcher: Matcher, config: Config, store: Store | None = None) -> None:
        self.kb = kb
        self.matcher = matcher
        self.config = config
        self.store = store
        self.values = config.council.placeholders()

    # -- entry points -------------------------------------------------------

    def handle(self, message: IncomingMessage) -> Outcome | None:
        """Answer one message and record everything it changed, atomically.

        Returns None for a platform's retry of an event already handled.
        """
        if self.store is None:
            raise RuntimeError("Engine.handle needs a store; use preview() for stateless answers")
        with self.store.transaction():
            if self.store.seen(message.platform, message.event_id):
                return None
            turn = self.respond(message, self.store.state(message.platform, message.user))
            self.store.save_state(message.platform, message.user, turn.state)
            self.store.log(message.platform, message.user, "in", clean(message.text))
            self.store.log(
                message.platform, message.user, "out", turn.outcome.text, turn.outcome.action, turn.outcome.intent or ""
            )
            if turn.escalation is not None:
                self.store.add_escalation(turn.escalation)
        return turn.outcome

    def preview(self, text: str) -> Outcome:
        """What the bot would say to ``text`` from a new conversation; writes nothing."""
        return self.respond(IncomingMessage("preview", "preview", text), {}).outcome

    # -- the conversation ---------------------------------------------------

    def respond(self, message: IncomingMessage, state: dict) -> Turn:
        """The reply to ``message`` given the conversation's ``state``."""
        text = clean(message.text)
        limit = self.config.chat.max_message_chars
        if not fold(text):
            return self._say(message, state, replies.empty(), "clarify", keep=True)
        if len(text) > limit:
            return self._say(message, state, replies.too_long(len(text), limit), "clarify", keep=True)
        pending = [Option(i, label) for i, label in state.get("pending", [])]
        number = _NUMBER.match(text)
        if number:
            if not pending:
                return self._say(message, state, replies.no_options(), "clarify")
            n = int(number.group(1))
            if not 1 <= n <= len(pending):
                return self._say(message, state, replies.out_of_range(len(pending)), "clarify", keep=True)
            return self._intent(message, state, pending[n - 1].id, 1.0, text, chosen=True)
        decision = self.matcher.match(text)
        if pending and not decision.safety:
            chosen = self._chosen(text, pending, decision)
            if chosen is not None:
                return self._intent(message, state, chosen, 1.0, text, chosen=True)
        if decision.action == "answer" and decision.intent is not None:
            return self._intent(message, state, decision.intent, decision.confidence, text)
        if decision.action == "clarify":
            options = [Option(i, self._title(i)) for i in decision.options]
            options.append(Option(HANDOFF, replies.choice_prompt()))
            turn = self._say(message, state, replies.clarify(options), "clarify", options=options)
            turn.outcome = _replace(turn.outcome, confidence=decision.confidence, options=decision.options)
            turn.state["question"] = text
            return turn
        topic = self._likely_topic(decision)
        return self._handoff(message, state, text, topic, decision.confidence, intent=None)

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
        chosen: bool = False,
    ) -> Turn:
        entry = self.kb.get(intent)
        if entry is None:
            return self._handoff(message, state, text, "general", confidence, intent=None)
        if entry.kind == "handoff":
            question = state.get("question") or text
            return self._handoff(message, state, question, state.get("topic", "general"), confidence, intent)
        if entry.kind == "safety":
            return self._safety(message, state, entry, text)
        body = render(entry.answer, self.values)
        if entry.id == COMPLAINT:
            option = Option(HANDOFF, replies.choice_prompt())
            turn = self._say(
                message,
                state,
                f"{body}\n\n{replies.offer_person(self.config.council)}",
                "answer",
                intent=intent,
                confidence=confidence,
                options=[option],
            )
            return turn
        options = [Option(f, self._title(f)) for f in entry.follow_ups if self.kb.get(f)]
        if options:
            body = f"{body}\n\n{replies.follow_ups(options)}"
        turn = self._say(message, state, body, "answer", intent=intent, confidence=confidence, options=options)
        if entry.kind == "faq":
            turn.state["topic"] = entry.topic
            if not chosen:
                turn.state["question"] = text
        return turn

    def _safety(self, message: IncomingMessage, state: dict, entry: Answer, text: str) -> Turn:
        reference = new_reference()
        body = f"{render(entry.answer, self.values)}\n\n{replies.urgent_flagged(self.config.council, reference)}"
        turn = self._say(message, state, body, "answer", intent=entry.id, confidence=1.0)
        turn.outcome = _replace(turn.outcome, urgent=True)
        turn.escalation = self._escalation(message, reference, entry.topic, entry.id, text, urgent=True)
        return turn

    def _handoff(
        self, message: IncomingMessage, state: dict, question: str, topic: str, confidence: float, intent: str | None
    ) -> Turn:
        reference = new_reference()
        body = replies.handed_off(self.config.council, reference, "a member of our team")
        turn = self._say(message, state, body, "escalate", intent=intent, confidence=confidence)
        turn.escalation = self._escalation(message, reference, topic, intent, question, urgent=False)
        return turn

    def _escalation(
        self, message: IncomingMessage, reference: str, topic: str, intent: str | None, question: str, urgent: bool
    ) -> dict:
        return {
            "ref": reference,
            "platform": message.platform,
            "user": message.user,
            "conversation": message.address,
            "topic": topic,
            "intent": intent or "",
            "question": question,
            "urgent": int(urgent),
        }

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
        new_state = {k: v for k, v in state.items() if k in ("topic", "question")}
        if keep:
            new_state["pending"] = state.get("pending", [])
        elif options:
            new_state["pending"] = [[o.id, o.label] for o in options]
        reply = OutgoingMessage(message.platform, message.address, text, tuple(options))
        outcome = Outcome(action, intent, round(confidence, 4), (reply,))
        return Turn(outcome, new_state)

    def _title(self, intent: str) -> str:
        entry = self.kb.get(intent)
        return entry.title if entry else intent

    def _likely_topic(self, decision: Decision) -> str:
        for candidate in decision.candidates[:1]:
            entry = self.kb.get(candidate.intent)
            if entry is not None and candidate.score >= TOPIC_FLOOR and entry.kind == "faq":
                return entry.topic
        return "general"


def _replace(outcome: Outcome, **changes: object) -> Outcome:
    from dataclasses import replace

    return replace(outcome, **changes)
