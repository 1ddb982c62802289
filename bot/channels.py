"""What a platform adapter offers the runner.

An adapter converts platform events into ``IncomingMessage`` and hands them
to ``Services.receive``; it sends ``OutgoingMessage`` when the dispatcher
asks. It holds no business logic: the engine decides, the desk carries out
officers' actions. The runner (``bot.runner``) is the one module that knows
the concrete adapters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.config import Config
from bot.engine import Engine
from bot.escalations import Desk
from bot.messages import IncomingMessage, Outcome, OutgoingMessage
from bot.outbox import enqueue
from bot.routing import Router


class Channel(Protocol):
    """A running connection to one platform."""

    platform: str

    async def start(self) -> None:
        """Connect and begin receiving (returns once running)."""

    async def stop(self) -> None:
        """Stop receiving; finish what is in hand."""

    async def send(self, message: OutgoingMessage) -> str | None:
        """Deliver one message; return the platform's message id; raise DeliveryError on failure."""

    def routes(self) -> list:
        """Starlette routes to mount on the shared web server (webhooks); may be empty."""


@dataclass
class Services:
    """What every adapter may use: the engine, the officers' desk, the router."""

    config: Config
    engine: Engine
    desk: Desk
    router: Router
    wake: Callable[[], None] = field(default=lambda: None)
    """Tell the dispatcher there is something new in the outbox."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def receive(self, message: IncomingMessage) -> Outcome | None:
        """Handle one incoming message; its replies go out through the outbox.

        The message, the state change and the replies commit in one
        transaction, so a crash after this returns loses nothing and a
        platform's retry of the same event is not answered twice.
        """
        async with self.lock:
            outcome = self.engine.handle(message, deliver_later=True)
        self.wake()
        return outcome

    async def say(self, message: OutgoingMessage, purpose: str = "reply") -> None:
        """Queue a message the adapter itself needs to send (e.g. 'I can only read text')."""
        async with self.lock:
            store = self.engine.store
            with store.transaction():
                enqueue(store, message, purpose, message.ref, self.engine.clock())
        self.wake()

    async def act(self, action: Callable[[], object]) -> object:
        """Run one desk action (claim, reply, close...) under the same lock."""
        async with self.lock:
            result = action()
        self.wake()
        return result
