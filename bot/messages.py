"""The two message types every adapter converts to and from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IncomingMessage:
    """A message from a person on some platform.

    ``user`` identifies the person on that platform; ``conversation`` is
    where replies go (a chat or channel id), defaulting to the user.
    ``event_id`` lets the inbox recognise a platform's retry. ``choice`` is
    the id of an offered option the person picked with a button.
    """

    platform: str
    user: str
    text: str
    conversation: str = ""
    event_id: str = ""
    name: str = ""
    choice: str = ""
    shared: bool = False
    """Written where others can read the answer (a group chat, a channel thread):
    personal data is never shown there."""

    @property
    def address(self) -> str:
        """Where replies to this message go."""
        return self.conversation or self.user


@dataclass(frozen=True)
class Option:
    """A choice offered to the person: a numbered line or a button."""

    id: str
    label: str


@dataclass(frozen=True)
class OutgoingMessage:
    """A message for one conversation on one platform."""

    platform: str
    conversation: str
    text: str
    options: tuple[Option, ...] = ()
    purpose: str = ""
    """Why it is sent: ``reply`` (to the sender), ``notify`` (an officer's new
    escalation), ``relay`` (an officer's answer), ``update``... set by the outbox."""
    ref: str = ""
    """The escalation this message is about, if any."""


@dataclass(frozen=True)
class Outcome:
    """What the engine made of one message: its decision and its replies."""

    action: str
    intent: str | None
    confidence: float
    replies: tuple[OutgoingMessage, ...]
    options: tuple[str, ...] = ()
    officer: str | None = None
    urgent: bool = False
    reference: str | None = None

    @property
    def text(self) -> str:
        """All reply text to the sender, joined, options numbered (as a text-only channel shows it)."""
        return "\n\n".join(as_text(r) for r in self.replies)

    @property
    def plain_text(self) -> str:
        """All reply text without the options (as a channel with buttons shows it)."""
        return "\n\n".join(r.text for r in self.replies)


def as_text(message: OutgoingMessage) -> str:
    """A message as a channel without buttons shows it: options as a numbered list."""
    if not message.options:
        return message.text
    lines = "\n".join(f"{n}. {o.label}" for n, o in enumerate(message.options, 1))
    return f"{message.text}\n{lines}\nReply with a number, or type your question."
