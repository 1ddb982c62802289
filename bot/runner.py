"""``councilbot run``: one process serving every configured channel.

The only module that knows the concrete adapters. It starts the web server
(the web chat, and the webhooks of Telegram and Slack when they use them),
Telegram and Slack when their tokens are in the environment, the outbox
dispatcher and the escalation timers, and stops cleanly on SIGTERM or
SIGINT: no new messages are taken, what is in hand is finished, the outbox
gets a last delivery pass and the database is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Mapping

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot import privacy
from bot.channels import Channel, Services
from bot.config import Config
from bot.engine import utc_now
from bot.officer_cli import cli_sender
from bot.outbox import Dispatcher
from bot.secret import from_env
from bot.wiring import make_engine

log = logging.getLogger("councilbot")

DISPATCH_EVERY = 1.0
TICK_EVERY = 60.0


def build_channels(services: Services, env: Mapping[str, str]) -> list[Channel]:
    """The channels this configuration and environment call for."""
    config = services.config
    channels: list[Channel] = []
    if config.web.enabled:
        from bot.web.chat import WebChat

        channels.append(WebChat(services, from_env("COUNCILBOT_SESSION_SECRET", env)))
    telegram_token = from_env("TELEGRAM_BOT_TOKEN", env)
    if telegram_token:
        from bot.adapters.telegram import TelegramChannel

        channels.append(
            TelegramChannel(services, telegram_token, config.telegram, from_env("TELEGRAM_WEBHOOK_SECRET", env))
        )
    slack_token = from_env("SLACK_BOT_TOKEN", env)
    if slack_token:
        from bot.adapters.slack import SlackChannel

        channels.append(
            SlackChannel(
                services,
                slack_token,
                config.slack,
                app_token=from_env("SLACK_APP_TOKEN", env),
                signing_secret=from_env("SLACK_SIGNING_SECRET", env),
            )
        )
    return channels


async def healthz(request: Request) -> PlainTextResponse:
    """Liveness: the process is up and its database answers."""
    services: Services = request.app.state.services
    services.engine.store.db.execute("select 1")
    return PlainTextResponse("ok\n")


class Runner:
    """Starts, runs and stops everything ``councilbot run`` serves."""

    def __init__(self, config: Config, env: Mapping[str, str] | None = None, clock: Callable = utc_now) -> None:
        self.config = config
        self.env = dict(os.environ if env is None else env)
        engine = make_engine(config)
        self.wakeup = asyncio.Event()
        self.services = Services(config, engine, engine.desk, engine.desk.router, wake=self.wakeup.set)
        self.channels = build_channels(self.services, self.env)
        store = engine.store
        senders = {c.platform: c.send for c in self.channels}
        senders["cli"] = cli_sender(store, clock)
        self.dispatcher = Dispatcher(store, senders, clock)
        routes = [Route("/healthz", healthz)]
        for channel in self.channels:
            routes.extend(channel.routes())
        self.app = Starlette(routes=routes)
        self.app.state.services = self.services
        self.stopping = asyncio.Event()
        self.web_done = asyncio.Event()
        """Set once the web server has finished its last request; delivery runs until then."""
        self.server: uvicorn.Server | None = None

    @property
    def address(self) -> str:
        """Where the web server listens."""
        return f"http://{self.config.web.host}:{self.config.web.port}"

    async def _dispatch_loop(self) -> None:
        while not self.web_done.is_set():
            self.wakeup.clear()
            try:
                await self.dispatcher.deliver()
            except Exception:  # keep delivering whatever one round did
                log.exception("outbox delivery round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), DISPATCH_EVERY)

    async def _tick_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                done = await self.services.act(self.services.desk.tick)
                for line in done or ():
                    log.info("escalation timer: %s", line)
            except Exception:
                log.exception("escalation timers failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), TICK_EVERY)

    def _purge(self) -> privacy.Purged:
        store = self.services.engine.store
        with store.transaction():
            return privacy.purge(store, self.config, self.services.engine.clock())

    async def _purge_loop(self) -> None:
        every = self.config.privacy.purge_every_hours * 3600
        while not self.stopping.is_set():
            try:
                result = await self.services.act(self._purge)
                log.info("retention purge", extra={"removed": result.summary()})
            except Exception:
                log.exception("retention purge failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), every)

    async def serve(self, ready: Callable[[str], None] | None = None) -> None:
        """Run until ``stop()`` (or SIGTERM/SIGINT)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        web = uvicorn.Config(
            self.app,
            host=self.config.web.host,
            port=self.config.web.port,
            log_config=None,
            access_log=False,
            limit_concurrency=self.config.web.max_connections,
            lifespan="off",
        )
        self.server = uvicorn.Server(web)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        listener = socket.create_server((self.config.web.host, self.config.web.port), reuse_port=False)
        listener.setblocking(False)
        server_task = asyncio.create_task(self.server.serve(sockets=[listener]))
        while not self.server.started:
            if server_task.done():
                server_task.result()
                raise RuntimeError("the web server stopped before it started")
            await asyncio.sleep(0.05)
        for channel in self.channels:
            await channel.start()
        tasks = [asyncio.create_task(loop()) for loop in (self._dispatch_loop, self._tick_loop, self._purge_loop)]
        log.info("councilbot is running at %s (%s)", self.address, ", ".join(c.platform for c in self.channels))
        if ready is not None:
            ready(self.address)
        await self.stopping.wait()
        for channel in reversed(self.channels):
            with contextlib.suppress(Exception):
                await channel.stop()
        self.server.should_exit = True
        await server_task
        listener.close()
        self.web_done.set()
        self.wakeup.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.dispatcher.deliver()
        self.services.engine.store.close()
        log.info("councilbot stopped")

    def stop(self) -> None:
        """Ask the runner to shut down cleanly."""
        self.stopping.set()
