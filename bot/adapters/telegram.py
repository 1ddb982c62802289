"""Telegram: residents and officers talking to councilbot through a Telegram bot.

Two halves, as every adapter (see ``bot.channels``):

- pure converters: a Telegram update (the Bot API's JSON, as a dict) becomes a
  ``TelegramEvent`` and then an ``IncomingMessage``; an ``OutgoingMessage``
  becomes the arguments of one or more ``sendMessage`` calls (Telegram HTML,
  every piece of text escaped, split to fit 4,096 characters, options as
  inline buttons). Tests feed them recorded payloads.
- ``TelegramChannel``: a thin runner over python-telegram-bot's
  ``Application``. It receives updates by long polling (default) or through
  a webhook on councilbot's shared web server, and sends what the outbox
  dispatcher hands it.

Delivery is at least once, answered once: in polling mode an update is
acknowledged to Telegram (the next ``getUpdates`` offset) only after it was
handled, and every update is recorded in the inbox with its ``update_id`` in
the same transaction as what it changed, so an update Telegram delivers again
after a crash is recognised and not answered twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import logging
import re
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from telegram import (
    BotCommand,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot import replies
from bot.channels import Services
from bot.config import Config, ConfigError, CouncilConfig, OfficerConfig, TelegramConfig
from bot.escalations import DeskError
from bot.messages import IncomingMessage, OutgoingMessage
from bot.outbox import DeliveryError, enqueue, messages_for, ref_for_message
from bot.secret import Secret

log = logging.getLogger("councilbot.telegram")

PLATFORM = "telegram"
MAX_CHARS = 4096
"""Telegram's limit on one message's text."""
SPLIT_AT = MAX_CHARS - 64
"""Where we split: below the limit, leaving room for the markup we add."""
CALLBACK_LIMIT = 64
"""Telegram's limit on a button's callback data, in bytes."""
ANSWER_LIMIT = 200
"""Telegram's limit on the text of a button tap's answer."""
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "callback_query"]
MAX_WEBHOOK_BODY = 1_000_000
HUMAN_TEXT = "talk to a person"
"""What ``/human`` says to the engine."""
CLOSED_FROM_TELEGRAM = "closed from Telegram"
CLOSE_NOTE = "close-note"
"""Outbox purpose of the message asking an officer for a closing note."""

OPTION_PREFIX = "o:"
HASHED_PREFIX = "h:"
ESCALATION_PREFIX = "esc:"

COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "What I can do, and how your messages are used"),
    ("help", "How to ask me a question"),
    ("human", "Ask for a person at the council"),
    ("mydata", "See what we hold about you"),
    ("forget", "Delete your messages"),
)
"""Registered with ``setMyCommands`` (the menu Telegram shows)."""

ENGINE_COMMANDS = {"human": HUMAN_TEXT, "mydata": "my data", "forget": "delete my data"}
"""Commands that are words for the engine, which does the work (``/human`` is
"talk to a person"; ``/mydata`` and ``/forget`` are the residents' data requests)."""

PRIVATE_COMMANDS = ("mydata", "forget")
"""Only in a private chat: in a group, everyone would see the answer."""

MEDIA = (
    ("photo", "photo"),
    ("sticker", "sticker"),
    ("voice", "voice message"),
    ("video_note", "video message"),
    ("video", "video"),
    ("audio", "audio file"),
    ("animation", "GIF"),
    ("document", "file"),
    ("location", "location"),
    ("venue", "location"),
    ("contact", "contact"),
    ("poll", "poll"),
    ("dice", "dice"),
    ("story", "story"),
)
"""Message fields that mean "not typed text", with what to call them. Anything
else without text (someone joined the group, a pinned message) is ignored."""

_REFERENCE = re.compile(r"\bCB-[A-HJ-NP-Z2-9]{6}\b")

# -- the bot's own words ------------------------------------------------------------------------


def welcome_text(config: Config) -> str:
    """``/start``: what the bot does, and the privacy notice (who holds the data, why, for how long, your rights)."""
    council = config.council
    return (
        f"Hello! I'm the {council.name} chat helper. Ask me about council services in your own words: "
        "bins and recycling, council tax, roads, housing and more. If I can't answer, I'll pass your "
        "question to a named person at the council and give you a reference.\n\n"
        f"{replies.privacy_notice(config)} You can also write to {council.email}.\n\n"
        "Type your question to start. /help shows how, /human asks for a person, "
        "/mydata shows what we hold and /forget deletes it."
    )


def help_text(council: CouncilConfig) -> str:
    """``/help``: how to ask."""
    return (
        "Type your question in your own words, for example 'when is my bin day?' or "
        "'how do I pay my council tax?'. When I offer choices, tap a button or reply with its number.\n\n"
        f"/human asks for a person at {council.name}.\n"
        "/mydata shows the messages we hold from you; /forget deletes them.\n"
        "/start shows what I can do and how your messages are used.\n\n"
        f"If it's urgent, call {council.phone} ({council.opening_hours})."
    )


def private_only_text(command: str) -> str:
    """``/mydata`` or ``/forget`` in a group: not here."""
    return f"For your privacy, send /{command} to me in a private chat, not in a group."


def unknown_command_text() -> str:
    """A command the bot does not have."""
    return "I don't know that command. Type your question in words, or use /help."


def not_text_text(kind: str) -> str:
    """Reply to a photo, sticker, voice message...: what the bot can read."""
    return (
        f"I can only read typed messages, so I can't see that {kind}. Please type your question in words, "
        "for example 'when is my bin day?'"
    )


NOT_OFFICER_BUTTON = "Sorry, only the council's officers can use these buttons."
NOT_OFFICER_REPLY = "Sorry, only the council's officers can answer escalations here."
NOTIFY_HINT = "On Telegram: reply to this message to answer the resident, or use the buttons."


def close_prompt(ref: str) -> str:
    """Ask an officer for the note an urgent escalation needs before it closes."""
    return f"{ref} is a safeguarding escalation. Reply to this message with a note of what was done, and I'll close it."


# -- incoming: Telegram update -> event -> IncomingMessage ---------------------------------------

TEXT, COMMAND, BUTTON, OTHER, IGNORE = "text", "command", "button", "other", "ignore"


@dataclass(frozen=True)
class TelegramEvent:
    """What one Telegram update asks of the bot.

    ``kind`` is ``text`` (typed words), ``command`` (``/start``...), ``button``
    (an inline button tapped), ``other`` (a photo, sticker...: ``media`` says
    which) or ``ignore`` (edits, service messages, group chatter not meant
    for the bot, other bots).
    """

    kind: str
    update_id: int
    chat: str = ""
    user: str = ""
    name: str = ""
    text: str = ""
    command: str = ""
    data: str = ""
    """A tapped button's callback data."""
    label: str = ""
    """A tapped button's text."""
    query_id: str = ""
    message_id: str = ""
    """The message itself, or for a button the message the button is on."""
    reply_to: str = ""
    """The id of the bot's message this one replies to."""
    media: str = ""
    group: bool = False

    @property
    def event_id(self) -> str:
        """The inbox key: Telegram's update id."""
        return str(self.update_id)


def _name(user: dict) -> str:
    return " ".join(p for p in (user.get("first_name", ""), user.get("last_name", "")) if p).strip()


def _button_label(message: dict, data: str) -> str:
    markup = message.get("reply_markup") or {}
    for row in markup.get("inline_keyboard") or []:
        for button in row:
            if button.get("callback_data") == data:
                return str(button.get("text", ""))
    return ""


def parse_update(payload: dict, bot_username: str, bot_id: int | str) -> TelegramEvent:
    """Read one update (the Bot API's JSON); decide whether and how it concerns the bot.

    In group chats only messages addressed to the bot count: a command, an
    @mention of ``bot_username`` (removed from the text) or a reply to one of
    the bot's messages.
    """
    update_id = int(payload.get("update_id", 0))
    if payload.get("callback_query"):
        return _parse_button(update_id, payload["callback_query"])
    message = payload.get("message")
    if not isinstance(message, dict):
        return TelegramEvent(IGNORE, update_id)
    sender = message.get("from") or {}
    chat = message.get("chat") or {}
    if not sender or sender.get("is_bot") or chat.get("type") not in ("private", "group", "supergroup"):
        return TelegramEvent(IGNORE, update_id)
    group = chat["type"] != "private"
    replied = message.get("reply_to_message") or {}
    to_bot = str((replied.get("from") or {}).get("id", "")) == str(bot_id) and bool(replied)
    base = {
        "update_id": update_id,
        "chat": str(chat.get("id", "")),
        "user": str(sender.get("id", "")),
        "name": _name(sender),
        "message_id": str(message.get("message_id", "")),
        "reply_to": str(replied.get("message_id", "")) if to_bot else "",
        "group": group,
    }
    text = message.get("text")
    mention = re.compile(rf"(?<![\w@])@{re.escape(bot_username)}\b", re.IGNORECASE) if bot_username else None
    if not isinstance(text, str):
        caption = str(message.get("caption") or "")
        addressed = not group or to_bot or bool(mention and mention.search(caption))
        for field_name, noun in MEDIA:
            if message.get(field_name) and addressed:
                return TelegramEvent(OTHER, media=noun, **base)
        return TelegramEvent(IGNORE, update_id)
    if text.startswith("/"):
        word, _, rest = text.partition(" ")
        command, _, target = word[1:].partition("@")
        if target and target.lower() != bot_username.lower():
            return TelegramEvent(IGNORE, update_id)
        return TelegramEvent(COMMAND, command=command.lower(), text=rest.strip(), **base)
    addressed = not group or to_bot
    if mention is not None and mention.search(text):
        addressed = True
        text = " ".join(mention.sub(" ", text).split())
    if not addressed:
        return TelegramEvent(IGNORE, update_id)
    return TelegramEvent(TEXT, text=text, **base)


def _parse_button(update_id: int, query: dict) -> TelegramEvent:
    message = query.get("message") or {}
    sender = query.get("from") or {}
    chat = message.get("chat") or {}
    data = query.get("data")
    if not message or not chat or not isinstance(data, str) or sender.get("is_bot"):
        return TelegramEvent(IGNORE, update_id)
    return TelegramEvent(
        BUTTON,
        update_id,
        chat=str(chat.get("id", "")),
        user=str(sender.get("id", "")),
        name=_name(sender),
        data=data,
        label=_button_label(message, data),
        query_id=str(query.get("id", "")),
        message_id=str(message.get("message_id", "")),
        group=chat.get("type") != "private",
    )


def incoming(event: TelegramEvent, choice: str = "", text: str | None = None) -> IncomingMessage:
    """The engine's view of a resident's message or button tap."""
    return IncomingMessage(
        PLATFORM,
        event.user,
        event.text if text is None else text,
        conversation=event.chat,
        event_id=event.event_id,
        name=event.name,
        choice=choice,
        shared=event.group,
    )


# -- buttons: callback data -----------------------------------------------------------------------


def _digest(option_id: str) -> str:
    return hashlib.sha256(option_id.encode("utf-8")).hexdigest()[:40]


def option_data(option_id: str) -> str:
    """The callback data of an option's button: its id, or a hash of an id too long for 64 bytes."""
    data = OPTION_PREFIX + option_id
    if len(data.encode("utf-8")) <= CALLBACK_LIMIT:
        return data
    return HASHED_PREFIX + _digest(option_id)


def escalation_data(action: str, ref: str) -> str:
    """The callback data of an officer's button, e.g. ``esc:claim:CB-ABC234``."""
    return f"{ESCALATION_PREFIX}{action}:{ref}"


def read_callback(data: str) -> tuple[str, str]:
    """What a button's callback data means: (``option``|``hashed``|``claim``|``close``|``unknown``, value)."""
    if data.startswith(OPTION_PREFIX):
        return "option", data[len(OPTION_PREFIX) :]
    if data.startswith(HASHED_PREFIX):
        return "hashed", data[len(HASHED_PREFIX) :]
    if data.startswith(ESCALATION_PREFIX):
        action, _, ref = data[len(ESCALATION_PREFIX) :].partition(":")
        if action in ("claim", "close") and _REFERENCE.fullmatch(ref):
            return action, ref
    return "unknown", data


def option_for(digest: str, candidates: Iterable[str]) -> str | None:
    """The option id among ``candidates`` whose hashed callback data is ``digest``."""
    for option_id in candidates:
        if _digest(option_id) == digest:
            return option_id
    return None


# -- outgoing: OutgoingMessage -> sendMessage arguments -----------------------------------------

Buttons = tuple[tuple[tuple[str, str], ...], ...]
"""Rows of (label, callback data)."""


@dataclass(frozen=True)
class SendArgs:
    """One ``sendMessage`` call: the chat, Telegram-HTML text and any buttons."""

    chat_id: str
    text: str
    buttons: Buttons = ()
    force_reply: bool = False


def format_html(text: str, heading: bool = False) -> str:
    """Plain text as Telegram HTML: everything escaped, references in bold (and the first line with ``heading``)."""
    if heading:
        first, newline, rest = text.partition("\n")
        if first.strip():
            return f"<b>{html.escape(first, quote=False)}</b>{newline}{format_html(rest)}"
    return _REFERENCE.sub(r"<b>\g<0></b>", html.escape(text, quote=False))


def telegram_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _html_length(text: str) -> int:
    return telegram_length(format_html(text))


def split_text(text: str, limit: int = SPLIT_AT, measure: Callable[[str], int] = _html_length) -> list[str]:
    """Split plain text into parts that fit ``limit`` once formatted: at paragraphs, then lines, then anywhere."""
    text = text.strip()
    if not text:
        return []
    return [part.strip() for part in _split(text, limit, measure, 0) if part.strip()]


_SEPARATORS = ("\n\n", "\n")


def _split(text: str, limit: int, measure: Callable[[str], int], level: int) -> list[str]:
    if measure(text) <= limit:
        return [text]
    if level == len(_SEPARATORS):
        return _hard_split(text, limit, measure)
    separator = _SEPARATORS[level]
    parts: list[str] = []
    current = ""
    for piece in text.split(separator):
        for fitted in _split(piece, limit, measure, level + 1):
            joined = f"{current}{separator}{fitted}" if current else fitted
            if measure(joined) <= limit:
                current = joined
            else:
                if current:
                    parts.append(current)
                current = fitted
    if current:
        parts.append(current)
    return parts


def _hard_split(text: str, limit: int, measure: Callable[[str], int]) -> list[str]:
    parts = []
    while text:
        if measure(text) <= limit:
            parts.append(text)
            break
        low, high = 1, len(text)
        while low < high:  # the longest prefix that fits
            middle = (low + high + 1) // 2
            if measure(text[:middle]) <= limit:
                low = middle
            else:
                high = middle - 1
        cut = low
        space = text.rfind(" ", max(1, cut - 200), cut)
        if space > 0:
            cut = space
        parts.append(text[:cut])
        text = text[cut:].lstrip(" ")
    return parts


def keyboard(message: OutgoingMessage) -> Buttons:
    """The inline buttons a message carries: its options, or Claim / Close on an officer's notification."""
    if message.purpose == "notify" and message.ref:
        return ((("Claim", escalation_data("claim", message.ref)), ("Close", escalation_data("close", message.ref))),)
    return tuple(((option.label, option_data(option.id)),) for option in message.options)


def render(message: OutgoingMessage) -> list[SendArgs]:
    """The ``sendMessage`` calls that deliver ``message``, in order.

    Options go on the last part (they follow the text that offers them); an
    officer's Claim / Close buttons go on the first, whose id is the one
    recorded for the notification (replies to it reach the resident).
    """
    notify = message.purpose == "notify" and bool(message.ref)
    text = f"{message.text}\n\n{NOTIFY_HINT}" if notify else message.text
    parts = split_text(text) or [" "]
    buttons = keyboard(message)
    at = 0 if notify else len(parts) - 1
    return [
        SendArgs(
            message.conversation,
            format_html(part, heading=notify and n == 0),
            buttons if n == at else (),
            force_reply=message.purpose == CLOSE_NOTE and n == at,
        )
        for n, part in enumerate(parts)
    ]


def markup(args: SendArgs) -> InlineKeyboardMarkup | ForceReply | None:
    """The python-telegram-bot reply markup for one call."""
    if args.force_reply:
        return ForceReply(selective=True, input_field_placeholder="What was done?")
    if not args.buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in args.buttons]
    )


def retry_seconds(error: RetryAfter) -> float:
    """Telegram's requested wait, in seconds (whichever type this python-telegram-bot returns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def delivery_error(error: TelegramError, token: Secret | None = None) -> DeliveryError:
    """What the outbox should make of a failed send: wait, give up, or try again later."""
    text = scrub(f"{type(error).__name__}: {error.message}", token)
    if isinstance(error, RetryAfter):
        return DeliveryError(text, retry_after=retry_seconds(error))
    if isinstance(error, Forbidden | InvalidToken):
        return DeliveryError(text, permanent=True)
    if isinstance(error, ChatMigrated):
        return DeliveryError(f"the group moved to chat id {error.new_chat_id}; update the contact", permanent=True)
    if isinstance(error, BadRequest) and "chat not found" in error.message.lower():
        return DeliveryError(text, permanent=True)
    return DeliveryError(text)


def scrub(text: str, token: Secret | None) -> str:
    """``text`` with the bot token removed (error messages may quote request URLs)."""
    return text.replace(token.reveal(), "<token>") if token else text


# -- the runner ------------------------------------------------------------------------------------


class TelegramChannel:
    """Receives Telegram updates (polling or webhook) and sends the outbox's Telegram messages."""

    platform = PLATFORM

    def __init__(
        self,
        services: Services,
        token: Secret,
        config: TelegramConfig,
        webhook_secret: Secret | None = None,
    ) -> None:
        self.services = services
        self.config = config
        self._token = token
        self._secret = webhook_secret
        self.webhook_url = ""
        if config.mode == "webhook":
            self.webhook_url = config.webhook_url or _join(services.config.web.public_url, config.webhook_path)
            if not self.webhook_url:
                raise ConfigError("telegram.webhook_url: webhook mode needs the public https address Telegram posts to")
            if not webhook_secret or not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", webhook_secret.reveal()):
                raise ConfigError(
                    "Telegram webhook mode needs TELEGRAM_WEBHOOK_SECRET set: 1 to 256 letters, digits, _ or -"
                )
        # httpx logs every request URL at INFO, and a Bot API URL contains the token.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.application: Application = (
            ApplicationBuilder()
            .token(token.reveal())
            .base_url(config.api_base_url)
            .base_file_url(config.api_file_url)
            .updater(None)
            .build()
        )
        self.application.add_handler(TypeHandler(Update, self._on_update))
        self.application.add_error_handler(self._on_error)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._offset: int | None = None
        self._ready = False
        self._stopped = False
        self._partial: dict[tuple, list[int]] = {}
        self._flood: dict[str, float] = {}
        """When each chat may be sent to again, after a 429 (monotonic seconds)."""

    # -- Channel --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (getMe, commands, webhook or polling) and start receiving."""
        self._stopping.clear()
        self._stopped = False
        try:
            await self._connect()
        except InvalidToken:
            raise ConfigError("Telegram rejected TELEGRAM_BOT_TOKEN; check the token @BotFather gave you") from None
        except TelegramError as error:
            log.warning("Telegram is not reachable yet (%s); retrying in the background", self._scrub(error))
        self._task = asyncio.create_task(self._run(), name="telegram")

    async def stop(self) -> None:
        """Stop receiving, finish the update in hand and tell Telegram which updates were handled."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._ready:
            if self.config.mode == "polling" and self._offset is not None:
                with contextlib.suppress(TelegramError):
                    await self.application.bot.get_updates(offset=self._offset, timeout=0)
            with contextlib.suppress(TelegramError, RuntimeError):
                await self.application.stop()
            await self.application.shutdown()
        self._ready = False
        self._stopped = True

    def routes(self) -> list:
        """The webhook endpoint on the shared web server (webhook mode only)."""
        if self.config.mode != "webhook":
            return []
        return [Route(self.config.webhook_path, self._webhook, methods=["POST"])]

    async def send(self, message: OutgoingMessage) -> str | None:
        """Send one outbox message; the id of its (first) Telegram message."""
        if self._ready:
            return await self._send(message)
        if not self._stopped:
            raise DeliveryError("Telegram is not connected yet")
        try:  # the runner's last delivery pass, after stop()
            async with self.application.bot:
                return await self._send(message)
        except TelegramError as error:
            raise delivery_error(error, self._token) from None

    # -- connecting and polling ---------------------------------------------------------------------

    async def _connect(self) -> None:
        bot = self.application.bot
        await self.application.initialize()
        await bot.set_my_commands([BotCommand(name, description) for name, description in COMMANDS])
        if self.config.mode == "webhook":
            assert self._secret is not None
            await bot.set_webhook(self.webhook_url, secret_token=self._secret.reveal(), allowed_updates=ALLOWED_UPDATES)
        else:
            await bot.delete_webhook()
        await self.application.start()
        self._ready = True
        log.info("telegram connected as @%s (%s)", bot.username, self.config.mode)

    async def _run(self) -> None:
        delay = 1.0
        while not self._ready:
            if await self._pause(delay):
                return
            try:
                await self._connect()
            except InvalidToken:
                log.error("Telegram rejected TELEGRAM_BOT_TOKEN; not receiving Telegram messages")
                return
            except TelegramError as error:
                log.warning("cannot reach Telegram (%s)", self._scrub(error))
                delay = min(delay * 2, 60.0)
        if self.config.mode == "polling":
            await self._poll()

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` unless stopping first; True if stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    async def _poll(self) -> None:
        """Long-poll getUpdates; acknowledge each update (the next offset) only once it was handled."""
        bot = self.application.bot
        delay = 1.0
        while not self._stopping.is_set():
            fetch = asyncio.ensure_future(
                bot.get_updates(offset=self._offset, timeout=self.config.poll_timeout, allowed_updates=ALLOWED_UPDATES)
            )
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not fetch.done():
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, TelegramError):
                    await fetch
                return
            try:
                updates = fetch.result()
            except RetryAfter as error:
                await self._pause(retry_seconds(error))
                continue
            except InvalidToken:
                log.error("Telegram rejected TELEGRAM_BOT_TOKEN; stopped polling")
                return
            except Conflict as error:
                log.error("Telegram refused polling (%s): is another councilbot running with this token?", error)
                await self._pause(10.0)
                continue
            except TelegramError as error:
                log.warning("polling Telegram failed (%s); retrying in %.0fs", self._scrub(error), delay)
                await self._pause(delay)
                delay = min(delay * 2, 60.0)
                continue
            except Exception:  # an update python-telegram-bot could not read: keep polling, loudly
                log.exception("could not read the updates Telegram sent; retrying in %.0fs", delay)
                await self._pause(delay)
                delay = min(delay * 2, 60.0)
                continue
            delay = 1.0
            for update in updates:
                if self._stopping.is_set():
                    break  # not acknowledged: Telegram delivers it again on the next start
                await self.application.process_update(update)
                self._offset = update.update_id + 1

    # -- webhook --------------------------------------------------------------------------------

    async def _webhook(self, request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        expected = self._secret.reveal() if self._secret else ""
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            return PlainTextResponse("forbidden\n", status_code=403)
        if not self._ready:
            return PlainTextResponse("not ready\n", status_code=503)
        if int(request.headers.get("content-length") or 0) > MAX_WEBHOOK_BODY:
            return PlainTextResponse("too large\n", status_code=413)
        try:
            update = Update.de_json(await request.json(), self.application.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            return PlainTextResponse("not an update\n", status_code=400)
        await self.application.process_update(update)
        return PlainTextResponse("ok\n")

    # -- handling one update -------------------------------------------------------------------------

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        bot = self.application.bot
        await self.handle(parse_update(update.to_dict(), bot.username, bot.id))

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = getattr(update, "update_id", "?")
        log.error("telegram update %s failed", update_id, exc_info=context.error)

    async def handle(self, event: TelegramEvent) -> None:
        """Do what one update asks."""
        log.debug("telegram update %s: %s", event.update_id, event.kind)
        if event.kind == TEXT:
            await self._text(event)
        elif event.kind == BUTTON:
            await self._button(event)
        elif event.kind == COMMAND:
            await self._command(event)
        elif event.kind == OTHER:
            await self._reply_once(event, not_text_text(event.media))

    async def _text(self, event: TelegramEvent) -> None:
        if event.reply_to:
            target = self._notification(event.chat, event.reply_to)
            if target is not None:
                await self._officer_text(event, *target)
                return
        await self.services.receive(incoming(event))

    async def _command(self, event: TelegramEvent) -> None:
        config = self.services.config
        if event.command in PRIVATE_COMMANDS and event.group:
            text = private_only_text(event.command)
        elif event.command in ENGINE_COMMANDS:
            await self.services.receive(incoming(event, text=ENGINE_COMMANDS[event.command]))
            return
        elif event.command == "start":
            text = welcome_text(config)
        elif event.command == "help":
            text = help_text(config.council)
        else:
            text = unknown_command_text()
        await self._reply_once(event, text)

    async def _button(self, event: TelegramEvent) -> None:
        kind, value = read_callback(event.data)
        if kind in ("claim", "close"):
            await self._officer_button(event, kind, value)
            return
        await self._answer(event.query_id)
        choice = value if kind == "option" else ""
        if kind == "hashed":
            choice = option_for(value, self._pending(event.user)) or ""
        text = event.label or choice
        if text:
            await self.services.receive(incoming(event, choice=choice, text=text))

    def _pending(self, user: str) -> list[str]:
        """Ids of the options the engine last offered this person (to resolve a hashed button)."""
        state = self.services.engine.store.state(PLATFORM, user)
        return [option_id for option_id, _label in state.get("pending", [])]

    # -- officers ----------------------------------------------------------------------------------

    def _officer(self, user: str) -> OfficerConfig | None:
        return self.services.router.by_identity(PLATFORM, user)

    async def _officer_button(self, event: TelegramEvent, action: str, ref: str) -> None:
        officer = self._officer(event.user)
        if officer is None:
            await self._answer(event.query_id, NOT_OFFICER_BUTTON, alert=True)
            return
        desk = self.services.desk

        def act() -> str:
            if action == "claim":
                desk.claim(ref, officer.id)
                return "claimed"
            escalation = desk.find(ref)
            if (
                escalation
                and escalation["urgent"]
                and escalation["status"] != "closed"
                and desk.can_see(officer, escalation)
            ):
                self._queue(OutgoingMessage(PLATFORM, event.chat, close_prompt(ref), ref=ref), CLOSE_NOTE)
                return "asked"
            desk.close(ref, officer.id, CLOSED_FROM_TELEGRAM)
            return "closed"

        try:
            done, result = await self.services.act(lambda: self._exactly_once(event.event_id, act))
        except DeskError as error:
            await self._answer(event.query_id, str(error), alert=True)
            return
        if not done:
            await self._answer(event.query_id, "Already done.")
            return
        answers = {
            "claimed": f"You have claimed {ref}. Reply to the message to answer the resident.",
            "asked": f"{ref} needs a note before it closes: reply to my next message with what was done.",
            "closed": f"{ref} is closed.",
        }
        await self._answer(event.query_id, answers[result])
        if result == "claimed":
            await self._set_buttons(event.chat, event.message_id, ((("Close", escalation_data("close", ref)),),))
        elif result == "closed":
            await self._set_buttons(event.chat, event.message_id, ())

    def _notification(self, chat: str, message_id: str) -> tuple[str, str] | None:
        """(ref, purpose) when ``message_id`` in ``chat`` is an escalation notification or a closing-note request."""
        store = self.services.engine.store
        ref = ref_for_message(store, PLATFORM, chat, message_id)
        if ref is None:
            return None
        for purpose in ("notify", CLOSE_NOTE):
            for row in messages_for(store, ref, PLATFORM, purpose):
                if row["conversation"] == chat and row["platform_message_id"] == message_id:
                    return ref, purpose
        return None

    async def _officer_text(self, event: TelegramEvent, ref: str, purpose: str) -> None:
        officer = self._officer(event.user)
        if officer is None:
            await self._reply_once(event, NOT_OFFICER_REPLY)
            return
        desk = self.services.desk

        def act() -> None:
            if purpose == CLOSE_NOTE:
                desk.close(ref, officer.id, event.text)
                confirmation = f"{ref} is closed, with your note."
            else:
                escalation = desk.reply(ref, officer.id, event.text)
                confirmation = f"Sent to the resident on {escalation['platform']} ({ref})."
            self._queue(OutgoingMessage(PLATFORM, event.chat, confirmation))

        try:
            await self.services.act(lambda: self._exactly_once(event.event_id, act))
        except DeskError as error:
            what = "closed" if purpose == CLOSE_NOTE else "sent"
            await self.services.say(OutgoingMessage(PLATFORM, event.chat, f"Not {what}: {error}."))

    # -- plumbing --------------------------------------------------------------------------------

    def _exactly_once(self, event_id: str, action: Callable[[], object]) -> tuple[bool, object]:
        """Run ``action`` and record the update in the inbox, in one transaction; (False, None) if seen before."""
        store = self.services.engine.store
        with store.transaction():
            if store.seen(PLATFORM, event_id):
                return False, None
            return True, action()

    def _queue(self, message: OutgoingMessage, purpose: str = "reply", user: str = "") -> None:
        """Add a message to the outbox (inside the caller's transaction); ``user``: the person it answers."""
        enqueue(self.services.engine.store, message, purpose, message.ref, self.services.engine.clock(), user)

    async def _reply_once(self, event: TelegramEvent, text: str) -> None:
        message = OutgoingMessage(PLATFORM, event.chat, text)
        await self.services.act(
            lambda: self._exactly_once(event.event_id, lambda: self._queue(message, user=event.user))
        )

    async def _answer(self, query_id: str, text: str = "", alert: bool = False) -> None:
        """Answer a button tap (stops the spinner; best effort: old taps cannot be answered)."""
        if not query_id:
            return
        with contextlib.suppress(TelegramError):
            await self.application.bot.answer_callback_query(
                query_id, text=text[:ANSWER_LIMIT] or None, show_alert=alert
            )

    async def _set_buttons(self, chat: str, message_id: str, buttons: Buttons) -> None:
        """Replace the buttons under a message (best effort)."""
        with contextlib.suppress(TelegramError):
            await self.application.bot.edit_message_reply_markup(
                chat_id=chat, message_id=int(message_id), reply_markup=markup(SendArgs(chat, "", buttons))
            )

    async def _send(self, message: OutgoingMessage) -> str:
        wait = self._flood.get(message.conversation, 0.0) - time.monotonic()
        if wait > 0:  # Telegram asked us to slow down in this chat: keep its messages in order
            raise DeliveryError("waiting for Telegram's flood control", retry_after=wait)
        bot = self.application.bot
        key = (message.conversation, message.text, message.purpose, message.ref, message.options)
        sent = self._partial.pop(key, [])  # parts already delivered by an earlier, interrupted attempt
        for args in render(message)[len(sent) :]:
            try:
                result = await bot.send_message(
                    chat_id=args.chat_id,
                    text=args.text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup(args),
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            except TelegramError as error:
                if sent:
                    if len(self._partial) > 1000:
                        self._partial.clear()
                    self._partial[key] = sent
                failure = delivery_error(error, self._token)
                if failure.retry_after:
                    self._flood[message.conversation] = time.monotonic() + failure.retry_after
                raise failure from None
            sent.append(result.message_id)
        return str(sent[0])

    def _scrub(self, error: Exception) -> str:
        return scrub(str(error), self._token)


def _join(base: str, path: str) -> str:
    return f"{base.rstrip('/')}/{path.lstrip('/')}" if base else ""
