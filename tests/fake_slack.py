"""A fake Slack Web API and Socket Mode server on 127.0.0.1, for tests only.

The real ``slack_sdk`` ``AsyncWebClient`` (through slack-bolt) talks to it
when its ``base_url`` points here. It records every Web API call
(chat.postMessage, chat.update, chat.postEphemeral, views.open, auth.test,
apps.connections.open, conversations.open...), can be told to fail a method
with HTTP 429 (and a Retry-After), HTTP 500 or a Slack error code, and
serves the Socket Mode websocket that apps.connections.open points to:
``push`` sends an envelope to the connected app and ``wait_ack`` waits for
the app's acknowledgement.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

BOT_USER = "UBOT"
BOT_ID = "BBOT"
TEAM = "T0COUNCIL"


@dataclass
class Call:
    """One Web API call as the fake received it."""

    method: str
    args: dict
    token: str
    result: dict = field(default_factory=dict)


@dataclass
class Failure:
    """How the next calls of one method should fail."""

    status: int = 200
    error: str = ""
    retry_after: int | None = None
    times: int = 1
    after: int = 0
    """Calls to let through before failing."""


@dataclass
class FakeSlack:
    """Records Web API calls and plays the Socket Mode server."""

    calls: list[Call] = field(default_factory=list)
    acks: dict[str, dict] = field(default_factory=dict)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    url: str = ""

    def __post_init__(self) -> None:
        self._ts = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._connected = asyncio.Event()
        self._acked = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- control ----------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        """Serve on a free port of 127.0.0.1; ``url`` is the Web API base URL to give the client."""
        app = web.Application()
        app.router.add_get("/link", self._socket)
        app.router.add_post("/api/{method}", self._api)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{self.port}/api/"
        return self

    async def close(self) -> None:
        """Disconnect every socket and stop serving."""
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def fail(
        self,
        method: str,
        status: int = 200,
        error: str = "",
        retry_after: int | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """Make ``times`` calls of ``method`` fail (HTTP ``status``, Slack ``error``) after ``after`` good ones."""
        self.failures.setdefault(method, []).append(Failure(status, error, retry_after, times, after))

    def to(self, method: str) -> list[dict]:
        """The arguments of every call of ``method`` (answered or failed), oldest first."""
        return [c.args for c in self.calls if c.method == method]

    def posts(self) -> list[dict]:
        """The chat.postMessage calls that succeeded, each with the ``ts`` the fake gave it."""
        return [
            c.args | {"ts": c.result["ts"]} for c in self.calls if c.method == "chat.postMessage" and c.result.get("ok")
        ]

    # -- the Web API --------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict = dict(request.query)
        if request.content_type == "application/json":
            args.update(await request.json())
        else:
            args.update(dict(await request.post()))
        for key in ("blocks", "view"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        call = Call(method, args, token)
        self.calls.append(call)
        queue = self.failures.get(method) or []
        if queue and queue[0].after > 0:
            queue[0].after -= 1
        elif queue:
            failure = queue[0]
            failure.times -= 1
            if failure.times <= 0:
                queue.pop(0)
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            error = failure.error or {429: "ratelimited", 500: "internal_error"}.get(failure.status, "fatal_error")
            call.result = {"ok": False, "error": error}
            return web.json_response(call.result, status=failure.status, headers=headers)
        call.result = self._answer(method, args, token)
        return web.json_response(call.result)

    def _answer(self, method: str, args: dict, token: str) -> dict:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://council.slack.com/",
                "team": "Council",
                "user": "councilbot",
                "team_id": TEAM,
                "user_id": BOT_USER,
                "bot_id": BOT_ID,
            }
        if method == "apps.connections.open":
            if not token.startswith("xapp-"):
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link?ticket={uuid.uuid4()}"}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": dm_of(str(args.get("users", "")))}}
        if method == "chat.postMessage":
            channel = str(args.get("channel", ""))
            channel = dm_of(channel) if channel.startswith(("U", "W")) else channel
            ts = f"1700000{next(self._ts):03d}.000100"
            return {"ok": True, "channel": channel, "ts": ts, "message": {"text": args.get("text"), "ts": ts}}
        if method == "chat.update":
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts"), "text": args.get("text")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700009{next(self._ts):03d}.000200"}
        if method == "views.open":
            return {"ok": True, "view": {"id": "V0FORM", **(args.get("view") or {})}}
        return {"ok": True}

    # -- Socket Mode -------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0COUNCIL"}})
        self._connected.set()
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                if "envelope_id" in data:
                    async with self._acked:
                        self.acks[data["envelope_id"]] = data
                        self._acked.notify_all()
        finally:
            self._sockets.remove(ws)
        return ws

    async def wait_connected(self, timeout: float = 5.0) -> None:
        """Wait until the app has opened the Socket Mode websocket."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def push(
        self, kind: str, payload: dict, retry_attempt: int = 0, retry_reason: str = "", envelope_id: str = ""
    ) -> str:
        """Send one envelope (``events_api`` or ``interactive``) to the connected app; return its id."""
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
        }
        if kind == "events_api":
            envelope |= {"retry_attempt": retry_attempt, "retry_reason": retry_reason}
        await self._sockets[-1].send_json(envelope)
        return envelope_id

    async def wait_ack(self, envelope_id: str, timeout: float = 3.0) -> dict:
        """The app's acknowledgement of one envelope, once it comes."""
        async with self._acked:
            await asyncio.wait_for(self._acked.wait_for(lambda: envelope_id in self.acks), timeout)
        return self.acks[envelope_id]


def dm_of(user: str) -> str:
    """The id the fake gives the bot's DM with ``user``."""
    return "D" + user[1:]
