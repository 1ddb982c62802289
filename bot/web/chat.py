"""The web chat channel: page, widget, JSON API and server-sent events.

A resident's browser holds a signed, httpOnly, SameSite session cookie that
names their conversation. ``POST /api/messages`` hands the message to the
engine (replies are queued in the outbox in the same transaction) and
returns the replies once the dispatcher has delivered them here; replies
that come later (an officer's answer) are pushed to ``GET /api/events``
while the page is open and kept in the transcript for when the resident
comes back (``GET /api/messages?after=N``). Every string is rendered with
``textContent`` in the browser, never as HTML.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from string import Template

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.channels import Services
from bot.messages import IncomingMessage, OutgoingMessage
from bot.secret import Secret
from bot.web import metrics
from bot.web.limits import RateLimiter

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "councilbot_session"
REPLY_WAIT = 5.0
HEARTBEAT = 15.0


class WebChat:
    """The council website's chat, served by councilbot's own web server."""

    platform = "web"

    def __init__(self, services: Services, session_secret: Secret | None = None) -> None:
        self.services = services
        self.config = services.config.web
        self.store = services.engine.store
        key = session_secret.reveal() if session_secret else self._stored_key()
        self.cookies = URLSafeSerializer(key, salt="councilbot-web-session")
        self.per_session = RateLimiter(self.config.session_rate_per_minute)
        self.per_address = RateLimiter(self.config.address_rate_per_minute)
        self.listeners: dict[str, set[asyncio.Queue]] = {}
        self.streams = 0
        self.streams_open: set[asyncio.Queue] = set()
        self.closing = asyncio.Event()
        self.page = Template((STATIC / "index.html").read_text(encoding="utf-8"))

    def _stored_key(self) -> str:
        """A cookie-signing key kept in state.db, made once (COUNCILBOT_SESSION_SECRET overrides it)."""
        with self.store.transaction():
            rows = list(self.store.db.query("select value from settings where key = 'web_session_key'"))
            if rows:
                return rows[0]["value"]
            key = secrets.token_urlsafe(32)
            self.store.db["settings"].insert({"key": "web_session_key", "value": key})
            return key

    # -- Channel ------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to connect: the shared web server serves the routes."""

    async def stop(self) -> None:
        """Close every open event stream (requests waiting for their replies still get them)."""
        self.closing.set()
        for queue in list(self.streams_open):
            queue.put_nowait(None)

    async def send(self, message: OutgoingMessage) -> str:
        """Keep the message in the session's transcript and push it to open pages."""
        role = "officer" if message.purpose == "relay" else "bot"
        row = self._record(message.conversation, role, message.text, [[o.id, o.label] for o in message.options])
        for queue in self.listeners.get(message.conversation, ()):
            queue.put_nowait(row)
        return str(row["id"])

    def routes(self) -> list:
        """The page, the widget, the API and /metrics."""
        return [
            Route("/", self.chat_page),
            Route("/embed", self.chat_page),
            Route("/widget.js", self.widget),
            Route("/api/messages", self.post_message, methods=["POST"]),
            Route("/api/messages", self.get_messages, methods=["GET"]),
            Route("/api/events", self.events),
            Route("/metrics", self.metrics),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        ]

    # -- sessions -------------------------------------------------------------

    def _session(self, request: Request) -> tuple[str | None, bool]:
        """(session id, forged): None when there is no cookie or it does not verify."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None, False
        try:
            value = self.cookies.loads(raw)
        except BadSignature:
            return None, True
        return (value, False) if isinstance(value, str) and value else (None, True)

    def _set_cookie(self, response: Response, session: str) -> None:
        response.set_cookie(
            COOKIE,
            self.cookies.dumps(session),
            max_age=60 * 60 * 24 * 30,
            httponly=True,
            samesite="strict",
            secure=self.config.public_url.startswith("https://"),
            path="/",
        )

    def _headers(self, response: Response, frame: bool = False) -> Response:
        ancestors = " ".join(["'self'", *self.config.embed_origins]) if frame else "'none'"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    def _error(self, status: int, text: str, headers: dict | None = None) -> Response:
        return self._headers(JSONResponse({"error": text}, status_code=status, headers=headers))

    # -- pages ------------------------------------------------------------------

    async def chat_page(self, request: Request) -> Response:
        """The chat page (also framed by the widget at /embed)."""
        council = self.services.config.council
        body = self.page.substitute(
            council=html.escape(council.name),
            phone=html.escape(council.phone),
            privacy=html.escape(council.privacy_notice_url, quote=True),
            embedded="embedded" if request.url.path == "/embed" else "",
        )
        response = self._headers(Response(body, media_type="text/html; charset=utf-8"), frame=True)
        session, _forged = self._session(request)
        if session is None:
            self._set_cookie(response, secrets.token_urlsafe(18))
        return response

    async def widget(self, request: Request) -> Response:
        """The embeddable script: adds a chat button and a framed /embed page to any site."""
        base = self.config.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        script = (STATIC / "widget.js").read_text(encoding="utf-8").replace("__COUNCILBOT_URL__", json.dumps(base))
        return self._headers(Response(script, media_type="text/javascript; charset=utf-8"))

    async def metrics(self, request: Request) -> Response:
        """Prometheus metrics."""
        text = metrics.render(self.store, self.services.engine.clock())
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    # -- the API ----------------------------------------------------------------

    async def post_message(self, request: Request) -> Response:
        """Send a message: ``{"text": "...", "choice": "<option id>"?, "id": "<client id>"?}``."""
        session, forged = self._session(request)
        if forged:
            return self._error(401, "This chat session is not recognised. Please reload the page.")
        address = request.client.host if request.client else "unknown"
        wait = self.per_address.check(address) or (self.per_session.check(session) if session else 0)
        if wait:
            return self._error(
                429, "You're sending messages too quickly. Please wait a moment.", {"Retry-After": str(wait)}
            )
        body = await request.body()
        limit = self.services.config.chat.max_message_chars
        if len(body) > limit * 4 + 1024:
            return self._error(413, f"That message is too long. Please keep it under {limit} characters.")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._error(400, 'Send JSON like {"text": "your question"}.')
        if not isinstance(data, dict) or not isinstance(data.get("text", ""), str):
            return self._error(400, 'Send JSON like {"text": "your question"}; "text" must be a string.')
        text, choice, client_id = data.get("text", ""), data.get("choice") or "", data.get("id") or ""
        if not isinstance(choice, str) or not isinstance(client_id, str) or len(client_id) > 100:
            return self._error(400, '"choice" and "id" must be short strings.')
        if len(text) > limit:
            return self._error(413, f"That message is too long. Please keep it under {limit} characters.")
        new = session is None
        session = session or secrets.token_urlsafe(18)
        if new and self.per_session.check(session):
            return self._error(429, "Please wait a moment.", {"Retry-After": "1"})
        label = text or self._label(session, choice)
        mine = self._record(session, "resident", label, [])
        queue: asyncio.Queue = asyncio.Queue()
        self.listeners.setdefault(session, set()).add(queue)
        try:
            event = f"web:{session}:{client_id}" if client_id else ""
            outcome = await self.services.receive(
                IncomingMessage("web", session, text, conversation=session, event_id=event, choice=choice)
            )
            replies = await self._collect(queue, len(outcome.replies) if outcome else 0)
            if outcome is None:
                self._forget_row(mine["id"])
        finally:
            self.listeners[session].discard(queue)
            if not self.listeners[session]:
                del self.listeners[session]
        payload = {
            "sent": mine if outcome else None,
            "messages": replies,
            "action": outcome.action if outcome else "duplicate",
        }
        response = self._headers(JSONResponse(payload))
        if new:
            self._set_cookie(response, session)
        return response

    async def _collect(self, queue: asyncio.Queue, expected: int) -> list[dict]:
        rows: list[dict] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REPLY_WAIT):
                while len(rows) < expected:
                    row = await queue.get()
                    if row is None:
                        break
                    rows.append(row)
        return rows

    async def get_messages(self, request: Request) -> Response:
        """The session's transcript after message id ``after`` (default: all)."""
        session, forged = self._session(request)
        if session is None:
            status = 401 if forged else 200
            return self._headers(JSONResponse({"messages": []} if not forged else {"error": "reload the page"}, status))
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            return self._error(400, '"after" must be a message number.')
        return self._headers(JSONResponse({"messages": self._transcript(session, after)}))

    async def events(self, request: Request) -> Response:
        """Server-sent events: new messages for this session while the page is open."""
        session, _forged = self._session(request)
        if session is None:
            return self._error(401, "This chat session is not recognised. Please reload the page.")
        if self.streams >= self.config.max_connections:
            return self._error(503, "The chat is very busy. Please try again shortly.", {"Retry-After": "10"})
        try:
            after = int(request.headers.get("last-event-id") or request.query_params.get("after", "0"))
        except ValueError:
            after = 0
        queue: asyncio.Queue = asyncio.Queue()
        self.listeners.setdefault(session, set()).add(queue)
        self.streams_open.add(queue)
        self.streams += 1

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 3000\n\n"
                for row in self._transcript(session, after):
                    yield _event(row)
                while not self.closing.is_set():
                    try:
                        row = await asyncio.wait_for(queue.get(), HEARTBEAT)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    if row is None:
                        break
                    yield _event(row)
            finally:
                self.streams -= 1
                self.streams_open.discard(queue)
                self.listeners.get(session, set()).discard(queue)

        response = StreamingResponse(stream(), media_type="text/event-stream")
        response.headers["X-Accel-Buffering"] = "no"
        return self._headers(response)

    # -- the transcript -----------------------------------------------------------

    def _record(self, session: str, role: str, text: str, options: list) -> dict:
        at = self.services.engine.clock().isoformat()
        table = self.store.db["web_messages"]
        with self.store.transaction():
            table.insert({"session": session, "role": role, "text": text, "options": json.dumps(options), "at": at})
            row_id = table.last_pk
        return {"id": row_id, "role": role, "text": text, "options": _options(options), "at": at}

    def _label(self, session: str, choice: str) -> str:
        """What a resident 'said' by picking an option: its label, as shown to them."""
        for option_id, label in self.services.engine.store.state("web", session).get("pending", []):
            if option_id == choice:
                return label
        return choice

    def _forget_row(self, row_id: int) -> None:
        """Drop a transcript line recorded for a message that turned out to be a repeat."""
        with self.store.transaction():
            self.store.db.execute("delete from web_messages where id = ?", [row_id])

    def _transcript(self, session: str, after: int) -> list[dict]:
        rows = self.store.db.query(
            "select * from web_messages where session = ? and id > ? order by id limit 500", [session, after]
        )
        return [
            {
                "id": r["id"],
                "role": r["role"],
                "text": r["text"],
                "options": _options(json.loads(r["options"])),
                "at": r["at"],
            }
            for r in rows
        ]


def _options(options: list) -> list[dict]:
    return [{"id": i, "label": label} for i, label in options]


def _event(row: dict) -> str:
    return f"id: {row['id']}\nevent: message\ndata: {json.dumps(row, ensure_ascii=False)}\n\n"
