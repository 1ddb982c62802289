"""The bot's own sentences (everything that is not a knowledge-base answer).

Plain English, short, and built from configuration: no council's name or
number is written here.
"""

from __future__ import annotations

from bot.config import Config, CouncilConfig
from bot.escalations import Ticket


def empty() -> str:
    """Reply to a message with no words in it."""
    return "I didn't catch any words there. Please type your question, for example 'when is my bin day?'"


def too_long(size: int, limit: int) -> str:
    """Reply to a message over the size limit."""
    return (
        f"That message is too long for me ({size:,} characters). Please send a shorter question, "
        f"up to {limit:,} characters, and I'll do my best to help."
    )


def no_options() -> str:
    """Reply to a bare number when nothing was offered."""
    return "I haven't offered any numbered choices just now. Please type your question in words."


def out_of_range(count: int) -> str:
    """Reply to a number outside the options offered."""
    return f"Please reply with a number from 1 to {count}, or type your question in words."


def clarify() -> str:
    """Ask which of several close intents the person meant (the options go with the message)."""
    return "I want to make sure I give you the right answer. Did you mean one of these?"


def follow_ups() -> str:
    """Lead-in to related questions offered after an answer (the options go with the message)."""
    return "You might also want:"


def offer_person() -> str:
    """After 'that didn't help': offer a person."""
    return "Would you like me to pass your question to a person at the council? Reply 'yes' or 'talk to a person'."


def handed_off(council: CouncilConfig, ticket: Ticket) -> str:
    """Tell the person who has their question, the reference and when to expect a reply."""
    officer = ticket.officer
    who = f"{officer.name}, {officer.role}," if officer.role else f"{officer.name},"
    return (
        f"I've passed your question to {who} at {council.name}. Your reference is {ticket.ref}. "
        f"They aim to reply {ticket.due_text}, here in this chat. "
        f"If it's urgent, call {council.phone} ({council.opening_hours})."
    )


def urgent_flagged(ticket: Ticket) -> str:
    """Added to a safety answer: a named person has been alerted."""
    officer = ticket.officer
    who = f"{officer.name}, {officer.role}" if officer.role else officer.name
    return (
        f"I've also alerted {who} (reference {ticket.ref}). "
        "This chat is not watched all the time, so please use the numbers above if you need help now."
    )


def detail_added(reference: str, name: str) -> str:
    """A follow-up added to an open escalation."""
    return f"Thanks, I've added that to your question {reference}. {name} will see it."


def unknown_reference(reference: str) -> str:
    """A reference that is not this person's."""
    return f"I can't find {reference} in this conversation. Please check the reference, or ask me your question again."


def choice_prompt() -> str:
    """Label of the 'talk to a person' option."""
    return "Talk to a person"


def stale_choice() -> str:
    """A button pressed after its options were replaced."""
    return "That choice is from an earlier question. Please type your question again, or tap a newer button."


def privacy_notice(config: Config) -> str:
    """The short notice at the first contact on every channel."""
    council = config.council
    return (
        f"Privacy: {council.name} keeps this conversation to answer you and to pass your question to a named "
        f"officer if I can't. We delete messages after {config.privacy.retain_messages_days} days. "
        f"Type 'my data' to see what we hold, or 'delete my data' to remove it. "
        f"Full notice: {council.privacy_notice_url}"
    )


def confirm_erase(config: Config) -> str:
    """Ask before erasing."""
    return (
        "Do you want me to delete your messages and this conversation? This cannot be undone. "
        "If you have an open question with an officer, they will no longer be able to reply to you here. "
        "Reply 'yes' to delete, or 'no' to keep them."
    )


def erase_cancelled() -> str:
    """The person changed their mind."""
    return "OK, I haven't deleted anything."


def erased(summary: str) -> str:
    """Confirm an erasure (counts only)."""
    return f"Done. I've deleted your data: {summary}. You can start a new conversation at any time."


def export_intro(config: Config) -> str:
    """Before the exported data."""
    return (
        f"Here is everything {config.council.name} holds about you from this chat. "
        "To ask for all your data held by the council, not just this chat, see "
        f"{config.council.privacy_notice_url}."
    )


def export_preview() -> str:
    """In a stateless preview there is nothing to export."""
    return "In a real conversation I would show you everything we hold about you here."


def private_only() -> str:
    """'my data' asked where others can read the answer."""
    return "For your privacy, ask me for your data, or to delete it, in a private chat with me, not here."
