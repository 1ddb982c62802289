"""A fake Telegram Bot API server for tests (aiohttp on 127.0.0.1, a free port).

The real python-telegram-bot client talks to it (``base_url`` pointed here).
It answers the methods councilbot uses, records every call, queues updates
for ``getUpdates`` with Telegram's offset semantics (an update is forgotten
once a later call's offset passes it; long polls wait up to their timeout),
checks what Telegram checks (HTML markup, 4,096 characters, 64-byte button
data) and can be told to fail a method with 429 (and ``retry_after``), 500,
403 (blocked) or 400 (chat not found).

A test fixture only: nothing in ``bot/`` imports it.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

TOKEN = "123:abc"
BOT_ID = 123
BOT_USERNAME = "testcouncil_bot"
BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "Council Bot", "username": BOT_USERNAME}
JSON_FIELDS = {"reply_markup", "allowed_updates", "commands", "link_preview_options", "reply_parameters", "entities"}
INT_FIELDS = {"offset", "limit", "timeout", "message_id", "max_connections"}
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "tg-spoiler", "span"}
ALLOWED_TAGS |= {"blockquote", "tg-emoji"}
MAX_POLL = 2.0
"""The longest a getUpdates call is held, whatever timeout it asked for (keeps tests quick)."""


@dataclass
class Call:
    """One request the fake answered."""

    method: str
    params: dict
    at: float
    status: int = 200
    result: Any = None


@dataclass
class Failure:
    status: int
    description: str
    retry_after: int | None = None


class _Markup(HTMLParser):
    """Telegram's HTML parse mode, strictly enough: known tags only, properly nested."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.error = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in ALLOWED_TAGS:
            self.error = self.error or f'Unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.error = self.error or f'Unmatched end tag "{tag}"'

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(text: str) -> tuple[str, str]:
    """(plain text, error) as Telegram would read ``text`` in HTML parse mode."""
    parser = _Markup()
    parser.feed(text)
    parser.close()
    if parser.stack and not parser.error:
        parser.error = f'Can\'t find end tag corresponding to start tag "{parser.stack[-1]}"'
    return "".join(parser.text), parser.error


def _length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class FakeTelegram:
    """The fake server: start it, point the client at ``base_url``, feed updates, read ``calls``."""

    token: str = TOKEN
    host: str = "127.0.0.1"
    port: int = 0
    calls: list[Call] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)
    confirmed: int = 0
    """Updates below this id have been acknowledged (Telegram forgets them)."""
    hold_acks: bool = False
    """Never forget acknowledged updates: as if the bot died before its next getUpdates reached Telegram."""
    webhook: dict = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    messages: dict[tuple[str, int], dict] = field(default_factory=dict)
    hidden: Callable[[str], bool] | None = None
    """Sent texts a test is not about (e.g. a one-off notice): left out of ``sent`` and what builds on it."""

    def __post_init__(self) -> None:
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(500)
        self._query_ids = itertools.count(9000)
        self._failures: dict[str, list[Failure]] = {}
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    # -- running ----------------------------------------------------------------------------------

    async def start(self) -> FakeTelegram:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/file/bot{token}/{path:.*}", self._file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """Where the server is, e.g. http://127.0.0.1:PORT."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The client's ``base_url`` (the token is appended to it)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """The client's ``base_file_url``."""
        return f"{self.url}/file/bot"

    # -- telling it what to do --------------------------------------------------------------------

    def fail(self, method: str, status: int = 500, retry_after: int | None = None, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` fail with HTTP ``status``."""
        descriptions = {
            429: f"Too Many Requests: retry after {retry_after}",
            500: "Internal Server Error",
            403: "Forbidden: bot was blocked by the user",
            400: "Bad Request: chat not found",
        }
        failure = Failure(status, descriptions.get(status, "Error"), retry_after)
        self._failures.setdefault(method, []).extend([failure] * times)

    def deliver(self, update: dict) -> dict:
        """Queue an update for getUpdates (and wake a waiting long poll)."""
        self.updates.append(update)
        asyncio.get_running_loop().create_task(self._notify())
        return update

    async def _notify(self) -> None:
        async with self._arrived:
            self._arrived.notify_all()

    # -- building updates (shaped like the real Bot API's) ----------------------------------------

    def message_update(
        self,
        chat: int,
        user: int,
        text: str | None = None,
        *,
        chat_type: str | None = None,
        first_name: str = "Ann",
        reply_to: int | None = None,
        **fields: Any,
    ) -> dict:
        """An update carrying a message from ``user`` in ``chat`` (a group when ``chat`` is negative)."""
        chat_type = chat_type or ("private" if chat > 0 else "supergroup")
        chat_info: dict = {"id": chat, "type": chat_type}
        if chat_type == "private":
            chat_info["first_name"] = first_name
        else:
            chat_info["title"] = "Residents' group"
        message: dict = {
            "message_id": next(self._message_ids),
            "from": {"id": user, "is_bot": False, "first_name": first_name, "language_code": "en"},
            "chat": chat_info,
            "date": int(time.time()),
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                message["entities"] = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]
        if reply_to is not None:
            message["reply_to_message"] = self.messages.get((str(chat), reply_to)) or {
                "message_id": reply_to,
                "from": BOT_USER,
                "chat": chat_info,
                "date": int(time.time()),
                "text": "...",
            }
        message.update(fields)
        return {"update_id": next(self._update_ids), "message": message}

    def tap_update(self, chat: int, user: int, message_id: int, data: str, first_name: str = "Ann") -> dict:
        """An update for ``user`` tapping the button with ``data`` under message ``message_id``."""
        message = self.messages.get((str(chat), message_id)) or {
            "message_id": message_id,
            "from": BOT_USER,
            "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup"},
            "date": int(time.time()),
            "text": "...",
        }
        return {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": str(next(self._query_ids)),
                "from": {"id": user, "is_bot": False, "first_name": first_name},
                "message": message,
                "chat_instance": "-7000",
                "data": data,
            },
        }

    def say(self, chat: int, user: int, text: str, **kwargs: Any) -> dict:
        """Queue a text message from ``user``."""
        return self.deliver(self.message_update(chat, user, text, **kwargs))

    def tap(self, chat: int, user: int, message_id: int, data: str) -> dict:
        """Queue a button tap."""
        return self.deliver(self.tap_update(chat, user, message_id, data))

    # -- reading what happened ----------------------------------------------------------------------

    def called(self, method: str, ok: bool = True) -> list[Call]:
        """Calls of ``method`` (by default only those that succeeded)."""
        return [c for c in self.calls if c.method == method and (c.status == 200) == ok]

    def delivered(self, chat: int | str | None = None) -> list[Call]:
        """The sendMessage calls that succeeded (optionally to one chat), less ``hidden`` ones."""
        return [
            c
            for c in self.called("sendMessage")
            if (chat is None or str(c.params.get("chat_id")) == str(chat))
            and not (self.hidden and self.hidden(parse_html(c.params.get("text", ""))[0]))
        ]

    def sent(self, chat: int | str | None = None) -> list[dict]:
        """Parameters of the sendMessage calls that succeeded, optionally to one chat."""
        return [c.params for c in self.delivered(chat)]

    def texts(self, chat: int | str) -> list[str]:
        """The plain text (markup read) of each message sent to ``chat``."""
        return [parse_html(p["text"])[0] for p in self.sent(chat)]

    def last_message_id(self, chat: int | str) -> int:
        """The id of the last message the bot sent to ``chat``."""
        return self.delivered(chat)[-1].result["message_id"]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
        """Wait until ``predicate()`` is truthy; return its value (or fail the test after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                methods = [(c.method, c.status) for c in self.calls[-15:]]
                raise AssertionError(f"timed out waiting for {what or predicate}; last calls: {methods}")
            await asyncio.sleep(0.02)

    async def wait_sent(self, chat: int | str, count: int = 1, timeout: float = 5.0) -> list[str]:
        """Wait until ``chat`` has been sent ``count`` messages; their texts."""
        await self.wait_for(lambda: len(self.sent(chat)) >= count, timeout, f"{count} message(s) to {chat}")
        return self.texts(chat)

    # -- the API ------------------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict:
        if request.content_type == "application/json":
            body = await request.text()
            return json.loads(body) if body else {}
        raw = dict(await request.post()) if request.method == "POST" else {}
        raw.update(request.query)
        params: dict = {}
        for key, value in raw.items():
            value = str(value)
            if key in JSON_FIELDS:
                params[key] = json.loads(value)
            elif key in INT_FIELDS:
                params[key] = int(float(value))
            else:
                params[key] = value
        return params

    async def _file(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        call = Call(method, params, time.monotonic())
        if request.match_info["token"] != self.token:
            return self._error(call, 401, "Unauthorized")
        failures = self._failures.get(method)
        if failures:
            failure = failures.pop(0)
            extra = {"retry_after": failure.retry_after} if failure.retry_after is not None else None
            return self._error(call, failure.status, failure.description, extra)
        handler = getattr(self, "_api_" + method, None)
        if handler is None:
            return self._error(call, 404, "Not Found: method not found")
        try:
            result = await handler(params)
        except _ApiError as error:
            return self._error(call, error.status, error.description)
        call.result = result
        self.calls.append(call)
        return web.json_response({"ok": True, "result": result})

    def _error(self, call: Call, status: int, description: str, parameters: dict | None = None) -> web.Response:
        call.status = status
        self.calls.append(call)
        body: dict = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    async def _api_getMe(self, params: dict) -> dict:
        return BOT_USER | {"can_join_groups": True, "can_read_all_group_messages": False}

    async def _api_getUpdates(self, params: dict) -> list[dict]:
        if self.webhook.get("url"):
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook")
        offset = params.get("offset") or 0
        if offset and not self.hold_acks:
            self.confirmed = max(self.confirmed, offset)
            self.updates = [u for u in self.updates if u["update_id"] >= self.confirmed]
        wait = min(float(params.get("timeout") or 0), MAX_POLL)
        deadline = time.monotonic() + wait
        while True:
            batch = [u for u in self.updates if u["update_id"] >= max(offset, self.confirmed)]
            batch = batch[: int(params.get("limit") or 100)]
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0:
                return batch
            async with self._arrived:
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    pass

    async def _api_sendMessage(self, params: dict) -> dict:
        chat = str(params.get("chat_id", ""))
        if chat in self.blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        if chat in self.missing or not chat:
            raise _ApiError(400, "Bad Request: chat not found")
        text = params.get("text", "")
        plain = text
        if params.get("parse_mode") == "HTML":
            plain, error = parse_html(text)
            if error:
                raise _ApiError(400, f"Bad Request: can't parse entities: {error}")
        if not plain.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if _length(plain) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        if markup and "inline_keyboard" in markup:
            for row in markup["inline_keyboard"]:
                for button in row:
                    if len(button.get("callback_data", "").encode()) > 64:
                        raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        chat_id = int(chat)
        message = {
            "message_id": next(self._message_ids),
            "from": BOT_USER,
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "date": int(time.time()),
            "text": plain,
        }
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self.messages[(chat, message["message_id"])] = message
        return message

    async def _api_answerCallbackQuery(self, params: dict) -> bool:
        return True

    async def _api_setMyCommands(self, params: dict) -> bool:
        return True

    async def _api_setWebhook(self, params: dict) -> bool:
        self.webhook = {"url": params.get("url", ""), "secret_token": params.get("secret_token", "")}
        return True

    async def _api_deleteWebhook(self, params: dict) -> bool:
        self.webhook = {}
        return True

    async def _api_getWebhookInfo(self, params: dict) -> dict:
        return {"url": self.webhook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}

    async def _api_editMessageText(self, params: dict) -> dict:
        message = self._message(params)
        message["text"] = parse_html(params.get("text", ""))[0]
        return message

    async def _api_editMessageReplyMarkup(self, params: dict) -> dict:
        message = self._message(params)
        markup = params.get("reply_markup")
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return message

    def _message(self, params: dict) -> dict:
        key = (str(params.get("chat_id", "")), int(params.get("message_id") or 0))
        if key not in self.messages:
            raise _ApiError(400, "Bad Request: message to edit not found")
        return self.messages[key]


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def unescape(text: str) -> str:
    """HTML entities read back to text."""
    return html.unescape(text)
