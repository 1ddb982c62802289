"""bot.adapters.telegram: the pure converters on recorded payloads, then whole conversations
through a real ``bot.runner.Runner`` and the real python-telegram-bot client, talking to the
fake Bot API server in tests/fake_telegram.py on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import tomli_w
from conftest import OFFICERS, config_data
from fake_telegram import BOT_ID, BOT_USERNAME, TOKEN, FakeTelegram, parse_html
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bot import replies
from bot.adapters import telegram as tg
from bot.adapters.telegram import (
    BUTTON,
    COMMAND,
    IGNORE,
    OTHER,
    TEXT,
    SendArgs,
    TelegramChannel,
    delivery_error,
    format_html,
    incoming,
    option_data,
    option_for,
    parse_update,
    read_callback,
    render,
    split_text,
    telegram_length,
)
from bot.config import Config, ConfigError, CouncilConfig, TelegramConfig, load
from bot.messages import IncomingMessage, Option, OutgoingMessage
from bot.outbox import DeliveryError, Dispatcher
from bot.runner import Runner
from bot.secret import Secret
from bot.store import Store

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

RESIDENT = 1001
OTHER_RESIDENT = 1002
OFFICER = 555
SAFEGUARDING = 556
STRANGER = 777
GROUP = -100200300
SECRET = "s3cret_Token-1"
COUNCIL = "Testshire Council"
PRIVACY = "https://testshire.example/privacy"
LONG_ID = "service.bins.collection-day-for-households-in-flats-and-shared-communal-bin-stores"
UNMATCHED = "What is the capital of Australia?"

CONTENT = {
    "entry": [
        {
            "id": "smalltalk.greeting",
            "kind": "smalltalk",
            "topic": "general",
            "audience": "anyone",
            "title": "Saying hello",
            "questions": ["hi", "hello", "good morning", "hiya there"],
            "answer": "Hello! Ask me about bins or council tax.",
        },
        {
            "id": "service.bins.missed",
            "kind": "faq",
            "topic": "waste",
            "audience": "resident",
            "title": "Missed bin",
            "questions": ["bin collection missed", "my bin was missed", "the bin men skipped my street"],
            "answer": "Report a missed bin at {page.missed_bin}.",
        },
        {
            "id": LONG_ID,
            "kind": "faq",
            "topic": "waste",
            "audience": "resident",
            "title": "Bin collection day",
            "questions": ["bin collection day", "when is my bin day", "which day are bins collected"],
            "answer": "Find your bin day at {page.bin_day}.",
        },
        {
            "id": "service.counciltax.pay",
            "kind": "faq",
            "topic": "council-tax",
            "audience": "resident",
            "title": "Paying council tax",
            "questions": ["how do I pay my council tax", "pay council tax online", "council tax payment"],
            "answer": "Pay by Direct Debit & card at {page.council_tax_pay}. Amounts <£1 are not taken.",
            "follow_ups": ["service.bins.missed"],
        },
        {
            "id": "handoff.human",
            "kind": "handoff",
            "topic": "general",
            "audience": "anyone",
            "title": "Talk to a person",
            "questions": ["talk to a person", "speak to a human", "put me through to an advisor"],
            "answer": "I will pass you to a person.",
        },
        {
            "id": "safety.self-harm",
            "kind": "safety",
            "topic": "safeguarding",
            "audience": "anyone",
            "title": "Urgent help",
            "questions": ["i want to hurt myself", "i feel suicidal", "thinking of ending my life"],
            "answer": "Please call Samaritans on 116 123.",
        },
    ]
}


# -- recorded payloads (shaped as the Bot API sends them) ----------------------------------------

PRIVATE_TEXT = {
    "update_id": 815733201,
    "message": {
        "message_id": 42,
        "from": {"id": 1001, "is_bot": False, "first_name": "Ann", "last_name": "Jones", "language_code": "en"},
        "chat": {"id": 1001, "first_name": "Ann", "last_name": "Jones", "type": "private"},
        "date": 1718000000,
        "text": "when is my bin day?",
    },
}

GROUP_MENTION = {
    "update_id": 815733202,
    "message": {
        "message_id": 77,
        "from": {"id": 1002, "is_bot": False, "first_name": "Bob"},
        "chat": {"id": -100200300, "title": "Residents' group", "type": "supergroup"},
        "date": 1718000001,
        "text": "@TestCouncil_Bot when is my bin day?",
        "entities": [{"offset": 0, "length": 16, "type": "mention"}],
    },
}

GROUP_CHATTER = {
    "update_id": 815733203,
    "message": {
        "message_id": 78,
        "from": {"id": 1002, "is_bot": False, "first_name": "Bob"},
        "chat": {"id": -100200300, "title": "Residents' group", "type": "supergroup"},
        "date": 1718000002,
        "text": "anyone know when the bins go out?",
    },
}

GROUP_REPLY_TO_BOT = {
    "update_id": 815733204,
    "message": {
        "message_id": 79,
        "from": {"id": 1002, "is_bot": False, "first_name": "Bob"},
        "chat": {"id": -100200300, "title": "Residents' group", "type": "supergroup"},
        "date": 1718000003,
        "text": "and a missed bin?",
        "reply_to_message": {
            "message_id": 60,
            "from": {"id": 123, "is_bot": True, "first_name": "Council Bot", "username": "testcouncil_bot"},
            "chat": {"id": -100200300, "title": "Residents' group", "type": "supergroup"},
            "date": 1718000000,
            "text": "Find your bin day at ...",
        },
    },
}

GROUP_COMMAND = {
    "update_id": 815733205,
    "message": {
        "message_id": 80,
        "from": {"id": 1002, "is_bot": False, "first_name": "Bob"},
        "chat": {"id": -100200300, "title": "Residents' group", "type": "supergroup"},
        "date": 1718000004,
        "text": "/help@testcouncil_bot",
        "entities": [{"offset": 0, "length": 21, "type": "bot_command"}],
    },
}

TAP = {
    "update_id": 815733206,
    "callback_query": {
        "id": "4382bfdwdsb323b2d9",
        "from": {"id": 1001, "is_bot": False, "first_name": "Ann", "language_code": "en"},
        "message": {
            "message_id": 43,
            "from": {"id": 123, "is_bot": True, "first_name": "Council Bot", "username": "testcouncil_bot"},
            "chat": {"id": 1001, "first_name": "Ann", "type": "private"},
            "date": 1718000005,
            "text": "I want to make sure I give you the right answer. Did you mean: ...",
            "reply_markup": {
                "inline_keyboard": [
                    [{"text": "Missed bin", "callback_data": "o:service.bins.missed"}],
                    [{"text": "Talk to a person", "callback_data": "o:handoff.human"}],
                ]
            },
        },
        "chat_instance": "-5316279381749",
        "data": "o:service.bins.missed",
    },
}

PHOTO = {
    "update_id": 815733207,
    "message": {
        "message_id": 44,
        "from": {"id": 1001, "is_bot": False, "first_name": "Ann"},
        "chat": {"id": 1001, "first_name": "Ann", "type": "private"},
        "date": 1718000006,
        "photo": [
            {"file_id": "AgACAgQAAxkBAAIB", "file_unique_id": "AQADs7Ex", "file_size": 1432, "width": 90, "height": 67},
            {
                "file_id": "AgACAgQAAxkBAAIC",
                "file_unique_id": "AQADs7Ey",
                "file_size": 61024,
                "width": 800,
                "height": 600,
            },
        ],
        "caption": "the fly-tipping on my road",
    },
}

JOINED = {
    "update_id": 815733208,
    "message": {
        "message_id": 81,
        "from": {"id": 1002, "is_bot": False, "first_name": "Bob"},
        "chat": {"id": -100200300, "title": "Residents' group", "type": "supergroup"},
        "date": 1718000007,
        "new_chat_members": [{"id": 123, "is_bot": True, "first_name": "Council Bot", "username": "testcouncil_bot"}],
    },
}

EDITED = {
    "update_id": 815733209,
    "edited_message": {
        "message_id": 42,
        "from": {"id": 1001, "is_bot": False, "first_name": "Ann"},
        "chat": {"id": 1001, "first_name": "Ann", "type": "private"},
        "date": 1718000000,
        "edit_date": 1718000010,
        "text": "when is my bin day??",
    },
}


STICKER = {
    "file_id": "CAACAgIAAxkBAAIBdGZ",
    "file_unique_id": "AgADAQADwDZPEw",
    "type": "regular",
    "width": 512,
    "height": 512,
    "is_animated": False,
    "is_video": False,
    "emoji": "\U0001f44d",
    "set_name": "HotCherry",
    "file_size": 21340,
}


def parse(payload: dict) -> tg.TelegramEvent:
    return parse_update(payload, BOT_USERNAME, BOT_ID)


# -- pure converters ----------------------------------------------------------------------------


def test_a_private_message_becomes_an_incoming_message() -> None:
    event = parse(PRIVATE_TEXT)
    assert event.kind == TEXT
    assert (event.chat, event.user, event.name, event.text) == ("1001", "1001", "Ann Jones", "when is my bin day?")
    message = incoming(event)
    assert message.platform == "telegram"
    assert (message.user, message.conversation, message.event_id) == ("1001", "1001", "815733201")
    assert message.text == "when is my bin day?"
    assert message.choice == ""


def test_group_messages_count_only_when_addressed_to_the_bot() -> None:
    mention = parse(GROUP_MENTION)
    assert mention.kind == TEXT and mention.group
    assert mention.text == "when is my bin day?"  # the @mention is not part of the question
    assert (mention.chat, mention.user) == ("-100200300", "1002")
    assert parse(GROUP_CHATTER).kind == IGNORE
    reply = parse(GROUP_REPLY_TO_BOT)
    assert reply.kind == TEXT and reply.reply_to == "60"
    command = parse(GROUP_COMMAND)
    assert (command.kind, command.command) == (COMMAND, "help")
    other_bot = {**GROUP_COMMAND, "message": {**GROUP_COMMAND["message"], "text": "/help@some_other_bot"}}
    assert parse(other_bot).kind == IGNORE
    assert parse(JOINED).kind == IGNORE  # being added to a group is not a question


def test_a_button_tap_is_the_choice_with_its_label() -> None:
    event = parse(TAP)
    assert event.kind == BUTTON
    assert (event.data, event.label, event.query_id, event.message_id) == (
        "o:service.bins.missed",
        "Missed bin",
        "4382bfdwdsb323b2d9",
        "43",
    )
    kind, option = read_callback(event.data)
    message = incoming(event, choice=option, text=event.label)
    assert (kind, message.choice, message.text, message.event_id) == (
        "option",
        "service.bins.missed",
        "Missed bin",
        "815733206",
    )


def test_photos_stickers_voice_location_documents_are_not_text() -> None:
    assert (parse(PHOTO).kind, parse(PHOTO).media) == (OTHER, "photo")
    message = PHOTO["message"]
    for field, value, noun in [
        ("sticker", STICKER, "sticker"),
        ("voice", {"file_id": "AwACAgQAAxk", "file_unique_id": "AgADv", "duration": 3}, "voice message"),
        ("location", {"latitude": 51.5072, "longitude": -0.1276}, "location"),
        ("document", {"file_id": "BQACAgQAAxk", "file_unique_id": "AgADd", "file_name": "letter.pdf"}, "file"),
    ]:
        payload = {"update_id": 9, "message": {k: v for k, v in message.items() if k not in ("photo", "caption")}}
        payload["message"][field] = value
        assert (parse(payload).kind, parse(payload).media) == (OTHER, noun), field
    in_group = {"update_id": 10, "message": {**PHOTO["message"], "chat": GROUP_CHATTER["message"]["chat"]}}
    assert parse(in_group).kind == IGNORE  # a photo in a group, not addressed to the bot


def test_edits_and_bots_are_ignored() -> None:
    assert parse(EDITED).kind == IGNORE
    from_bot = {"update_id": 11, "message": {**PRIVATE_TEXT["message"], "from": {"id": 9, "is_bot": True}}}
    assert parse(from_bot).kind == IGNORE


def test_button_data_fits_64_bytes_and_long_ids_are_mapped_back() -> None:
    assert option_data("service.bins.missed") == "o:service.bins.missed"
    hashed = option_data(LONG_ID)
    assert len(hashed.encode()) <= 64
    kind, digest = read_callback(hashed)
    assert kind == "hashed"
    assert option_for(digest, ["service.bins.missed", LONG_ID]) == LONG_ID
    assert option_for(digest, ["service.bins.missed"]) is None
    unicode_id = "dewis." + "ŵ" * 40  # 80 bytes in UTF-8
    assert len(option_data(unicode_id).encode()) <= 64
    assert read_callback("esc:claim:CB-ABC234") == ("claim", "CB-ABC234")
    assert read_callback("esc:close:CB-ABC234") == ("close", "CB-ABC234")
    assert read_callback("esc:delete:CB-ABC234")[0] == "unknown"
    assert read_callback("esc:claim:<b>")[0] == "unknown"


def test_every_piece_of_text_is_escaped_for_telegram_html() -> None:
    assert format_html("<b>x</b> & <script>alert(1)</script>") == (
        "&lt;b&gt;x&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;"
    )
    assert format_html("Your reference is CB-ABC234.") == "Your reference is <b>CB-ABC234</b>."
    assert format_html("New <question>\nQuestion: a<b", heading=True) == (
        "<b>New &lt;question&gt;</b>\nQuestion: a&lt;b"
    )
    (args,) = render(OutgoingMessage("telegram", "1001", "Fees & <charges>", (Option("a<b", "<i>label</i>"),)))
    assert args.text == "Fees &amp; &lt;charges&gt;"
    assert args.buttons == ((("<i>label</i>", "o:a<b"),),)  # button labels are plain text, not HTML
    assert parse_html(args.text) == ("Fees & <charges>", "")


def test_long_text_splits_at_paragraphs_then_lines_then_anywhere() -> None:
    paragraphs = [f"Paragraph {n}. " + "word " * 300 for n in range(12)]  # ~1,500 characters each
    text = "\n\n".join(paragraphs)
    parts = split_text(text)
    assert len(parts) > 1
    assert all(telegram_length(format_html(p)) <= 4096 for p in parts)
    assert all(p.startswith("Paragraph") for p in parts)  # every part starts at a paragraph
    assert "\n\n".join(parts).split() == text.split()

    lines = "\n".join(f"line {n} " + "x" * 80 for n in range(200))  # one paragraph of 200 lines
    parts = split_text(lines)
    assert len(parts) > 1 and all(p.startswith("line ") for p in parts)
    assert "\n".join(parts) == lines

    one_word = "&" * 10_000  # escapes to five times its length
    parts = split_text(one_word)
    assert all(telegram_length(format_html(p)) <= 4096 for p in parts)
    assert "".join(parts) == one_word

    emoji = "🗑️ " * 3000  # two UTF-16 units each, as Telegram counts them
    assert all(telegram_length(format_html(p)) <= 4096 for p in split_text(emoji))


def test_render_puts_options_on_the_last_part_and_officer_buttons_on_the_first() -> None:
    long_text = "\n\n".join("x" * 3000 for _ in range(3))
    options = (Option("service.bins.missed", "Missed bin"), Option(LONG_ID, "Bin collection day"))
    parts = render(OutgoingMessage("telegram", "1001", long_text, options))
    assert len(parts) == 3
    assert [bool(p.buttons) for p in parts] == [False, False, True]
    assert parts[-1].buttons == (
        (("Missed bin", "o:service.bins.missed"),),
        (("Bin collection day", option_data(LONG_ID)),),
    )

    notify = OutgoingMessage(
        "telegram", "555", "New question CB-ABC234 for Dana\n" + long_text, purpose="notify", ref="CB-ABC234"
    )
    parts = render(notify)
    assert parts[0].buttons == ((("Claim", "esc:claim:CB-ABC234"), ("Close", "esc:close:CB-ABC234")),)
    assert not any(p.buttons for p in parts[1:])
    assert parts[0].text.startswith("<b>New question CB-ABC234 for Dana</b>\n")
    assert tg.NOTIFY_HINT in parse_html(parts[-1].text)[0]

    (prompt,) = render(OutgoingMessage("telegram", "556", "note?", purpose=tg.CLOSE_NOTE, ref="CB-ABC234"))
    assert prompt.force_reply and not prompt.buttons
    assert isinstance(tg.markup(prompt), tg.ForceReply)
    assert tg.markup(SendArgs("1", "x")) is None


def test_send_errors_become_delivery_errors() -> None:
    token = Secret(TOKEN)
    waited = delivery_error(RetryAfter(7))
    assert (waited.retry_after, waited.permanent) == (7.0, False)
    assert delivery_error(Forbidden("Forbidden: bot was blocked by the user")).permanent
    assert delivery_error(BadRequest("Bad Request: chat not found")).permanent
    assert delivery_error(ChatMigrated(-100999)).permanent
    for transient in (NetworkError("Internal Server Error (500)"), TimedOut(), BadRequest("message is too long")):
        error = delivery_error(transient)
        assert not error.permanent and error.retry_after is None, transient
    leaked = delivery_error(NetworkError(f"connect to https://api.telegram.org/bot{TOKEN}/sendMessage failed"), token)
    assert TOKEN not in str(leaked)


def test_start_says_who_holds_the_data_and_how_to_have_it_deleted() -> None:
    council = CouncilConfig(name=COUNCIL, email="help@testshire.example", privacy_notice_url=PRIVACY)
    text = tg.welcome_text(Config(council=council))
    assert COUNCIL in text and PRIVACY in text and "help@testshire.example" in text
    assert replies.privacy_notice(Config(council=council)) in text  # the council's one privacy notice
    assert "/mydata" in text and "/forget" in text
    assert "/human" in tg.help_text(council)
    assert "typed" in tg.not_text_text("photo") and "photo" in tg.not_text_text("photo")


# -- the whole bot, through the real Runner and the real client ---------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = await FakeTelegram().start()
    yield server
    await server.stop()


def write_site(folder: Path, fake: FakeTelegram, **telegram: object) -> Path:
    """A council folder: content, config.toml (officers on Telegram), state in data/."""
    (folder / "content").mkdir(exist_ok=True)
    (folder / "content" / "small.toml").write_text(tomli_w.dumps(CONTENT), encoding="utf-8")
    officers = [dict(o) for o in OFFICERS]
    contacts = {"duty": f"telegram:{OFFICER}", "safe": f"telegram:{SAFEGUARDING}"}
    for officer in officers:
        officer["contact"] = contacts.get(officer["id"], "cli")
    data = config_data(
        storage={"content_dir": "content", "knowledge_db": "data/knowledge.db", "state_db": "data/state.db"},
        officers=officers,
        telegram={"api_base_url": fake.base_url, "api_file_url": fake.base_file_url, "poll_timeout": 1, **telegram},
        web={"enabled": False, "host": "127.0.0.1", "port": free_port()},
    )
    data["council"]["privacy_notice_url"] = PRIVACY
    path = folder / "config.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def running(config: Config, **env: str) -> AsyncIterator[Runner]:
    """A real runner serving ``config`` (Telegram token set) until the block ends."""
    runner = Runner(config, env={"TELEGRAM_BOT_TOKEN": TOKEN, **env})
    ready = asyncio.Event()
    serving = asyncio.create_task(runner.serve(ready=lambda _address: ready.set()))
    started = asyncio.create_task(ready.wait())
    await asyncio.wait({serving, started}, timeout=8, return_when=asyncio.FIRST_COMPLETED)
    started.cancel()
    if serving.done():
        serving.result()
    assert ready.is_set(), "the runner did not start"
    try:
        yield runner
    finally:
        runner.stop()
        await asyncio.wait_for(serving, 8)


@pytest.fixture
def site(tmp_path: Path, fake: FakeTelegram) -> Config:
    config = load(str(write_site(tmp_path, fake)))
    fake.hidden = notice(config)
    return config


def notice(config: Config):
    """The engine's one-off privacy notice (its own message before a person's first answer)."""
    text = replies.privacy_notice(config)
    return lambda sent: sent == text


def rows(config: Config, sql: str, args: list | None = None) -> list[dict]:
    store = Store(config.path(config.storage.state_db))
    try:
        return list(store.db.query(sql, args or []))
    finally:
        store.close()


async def test_a_residents_question_is_answered(site: Config, fake: FakeTelegram) -> None:
    async with running(site):
        assert fake.called("getMe")
        (commands,) = fake.called("setMyCommands")
        assert [c["command"] for c in commands.params["commands"]] == ["start", "help", "human", "mydata", "forget"]
        assert fake.called("deleteWebhook")  # polling needs no webhook

        fake.say(RESIDENT, RESIDENT, "/start")
        fake.say(RESIDENT, RESIDENT, "how do I pay my council tax")
        fake.say(RESIDENT, RESIDENT, "/human")
        welcome, answer, handed_off = await fake.wait_sent(RESIDENT, 3)

    notices = [c for c in fake.called("sendMessage") if notice(site)(parse_html(c.params["text"])[0])]
    assert len(notices) == 1  # the engine's privacy notice, once, before the first answer
    (escalation,) = rows(site, "select * from escalations")  # /human asks the engine for a person
    assert (escalation["platform"], escalation["user"], escalation["topic"]) == ("telegram", "1001", "council-tax")
    assert f"I've passed your question to Tara Khan, Council Tax officer, at {COUNCIL}" in handed_off

    assert welcome == tg.welcome_text(site)
    assert "Pay by Direct Debit & card at" in answer and "Amounts <£1 are not taken." in answer
    sent = fake.sent(RESIDENT)[1]
    assert sent["parse_mode"] == "HTML"
    assert "Direct Debit &amp; card" in sent["text"] and "&lt;£1" in sent["text"]
    follow_up = sent["reply_markup"]["inline_keyboard"]
    assert follow_up == [[{"text": "Missed bin", "callback_data": "o:service.bins.missed"}]]  # follow-ups as buttons


async def test_clarify_with_a_button_tap(site: Config, fake: FakeTelegram) -> None:
    async with running(site):
        fake.say(RESIDENT, RESIDENT, "bin collection")
        (question,) = await fake.wait_sent(RESIDENT, 1)
        assert "Did you mean" in question
        clarify = fake.sent(RESIDENT)[0]
        buttons = [row[0] for row in clarify["reply_markup"]["inline_keyboard"]]
        assert {b["text"] for b in buttons} == {"Missed bin", "Bin collection day", "Talk to a person"}
        assert all(len(b["callback_data"].encode()) <= 64 for b in buttons)
        day = next(b for b in buttons if b["text"] == "Bin collection day")
        assert day["callback_data"].startswith("h:")  # the long id, mapped to fit

        tap = fake.tap(RESIDENT, RESIDENT, fake.last_message_id(RESIDENT), day["callback_data"])
        texts = await fake.wait_sent(RESIDENT, 2)
        await fake.wait_for(lambda: fake.called("answerCallbackQuery"), what="the tap answered")

    assert texts[1].startswith("Find your bin day at")
    assert fake.called("answerCallbackQuery")[0].params["callback_query_id"] == tap["callback_query"]["id"]
    (chosen,) = rows(site, "select intent from messages where direction = 'out' and intent = ?", [LONG_ID])
    assert chosen["intent"] == LONG_ID


async def test_escalation_to_an_officer_on_telegram_and_the_reply_relayed(site: Config, fake: FakeTelegram) -> None:
    async with running(site):
        fake.say(RESIDENT, RESIDENT, UNMATCHED)
        (handed_off,) = await fake.wait_sent(RESIDENT, 1)
        (ref,) = [e["ref"] for e in rows(site, "select ref from escalations")]
        assert ref in handed_off and "Dana Price" in handed_off

        (notification,) = await fake.wait_sent(OFFICER, 1)
        assert ref in notification and UNMATCHED in notification
        note = fake.sent(OFFICER)[0]
        assert note["text"].startswith("<b>")
        claim, close = note["reply_markup"]["inline_keyboard"][0]
        assert (claim["text"], claim["callback_data"]) == ("Claim", f"esc:claim:{ref}")
        assert (close["text"], close["callback_data"]) == ("Close", f"esc:close:{ref}")
        note_id = fake.last_message_id(OFFICER)

        fake.tap(OFFICER, STRANGER, note_id, claim["callback_data"])  # someone else in the chat
        refused = await fake.wait_for(lambda: fake.called("answerCallbackQuery"))
        assert refused[0].params["text"] == tg.NOT_OFFICER_BUTTON
        assert rows(site, "select claimed_by from escalations")[0]["claimed_by"] == ""

        fake.tap(OFFICER, OFFICER, note_id, claim["callback_data"])
        answers = await fake.wait_for(lambda: fake.called("answerCallbackQuery")[1:])
        assert answers[0].params["text"].startswith(f"You have claimed {ref}")
        edit = await fake.wait_for(lambda: fake.called("editMessageReplyMarkup"))
        assert edit[0].params["reply_markup"]["inline_keyboard"] == [
            [{"text": "Close", "callback_data": f"esc:close:{ref}"}]
        ]

        fake.say(OFFICER, OFFICER, "The capital is Canberra.", reply_to=note_id)
        texts = await fake.wait_sent(RESIDENT, 2)
        (confirmation,) = (await fake.wait_sent(OFFICER, 2))[1:]

        fake.tap(OFFICER, OFFICER, note_id, close["callback_data"])
        await fake.wait_for(lambda: len(fake.called("answerCallbackQuery")) == 3, what="the close answered")
        fake.tap(OFFICER, OFFICER, note_id, claim["callback_data"])  # an old button, after the close
        await fake.wait_for(lambda: len(fake.called("answerCallbackQuery")) == 4, what="the late tap answered")
        removed = fake.called("editMessageReplyMarkup")[-1].params

    assert texts[1] == f"Dana Price (Customer Services duty officer) replied about {ref}:\nThe capital is Canberra."
    assert confirmation == f"Sent to the resident on telegram ({ref})."
    assert fake.called("answerCallbackQuery")[2].params["text"] == f"{ref} is closed."
    assert "reply_markup" not in removed  # the buttons are gone once it is closed
    late = fake.called("answerCallbackQuery")[3].params
    assert (late["text"], late["show_alert"]) == (f"{ref} is closed", "true")  # the desk's own words
    (escalation,) = rows(site, "select * from escalations")
    assert (escalation["status"], escalation["claimed_by"], escalation["close_note"]) == (
        "closed",
        "duty",
        tg.CLOSED_FROM_TELEGRAM,
    )


async def test_an_urgent_escalation_closes_only_with_a_note(site: Config, fake: FakeTelegram) -> None:
    async with running(site):
        fake.say(RESIDENT, RESIDENT, "i feel suicidal")
        await fake.wait_sent(RESIDENT, 1)
        (alert,) = await fake.wait_sent(SAFEGUARDING, 1)
        assert alert.startswith("URGENT")
        (ref,) = [e["ref"] for e in rows(site, "select ref from escalations")]

        fake.tap(SAFEGUARDING, SAFEGUARDING, fake.last_message_id(SAFEGUARDING), f"esc:close:{ref}")
        prompt = (await fake.wait_sent(SAFEGUARDING, 2))[1]
        assert prompt == tg.close_prompt(ref)
        assert fake.sent(SAFEGUARDING)[1]["reply_markup"]["force_reply"] is True
        assert rows(site, "select status from escalations")[0]["status"] != "closed"

        fake.say(
            SAFEGUARDING, SAFEGUARDING, "Called her back; GP informed.", reply_to=fake.last_message_id(SAFEGUARDING)
        )
        confirmation = (await fake.wait_sent(SAFEGUARDING, 3))[2]

    assert confirmation == f"{ref} is closed, with your note."
    (escalation,) = rows(site, "select * from escalations")
    assert (escalation["status"], escalation["close_note"]) == ("closed", "Called her back; GP informed.")
    assert len(fake.sent(RESIDENT)) == 1  # the note is internal: the resident is not sent it


async def test_a_reply_from_the_command_line_reaches_the_resident_on_telegram(
    tmp_path: Path, site: Config, fake: FakeTelegram
) -> None:
    async with running(site):
        fake.say(RESIDENT, RESIDENT, UNMATCHED)
        await fake.wait_sent(RESIDENT, 1)
        (ref,) = [e["ref"] for e in rows(site, "select ref from escalations")]
        environment = {k: v for k, v in os.environ.items() if k not in ("COUNCILBOT_CONFIG", "COUNCILBOT_OFFICER")}
        command = [sys.executable, "-m", "bot.cli", "--config", str(tmp_path / "config.toml")]
        command += ["escalations", "reply", ref, "It is Canberra <not Sydney>.", "--as", "duty"]
        process = await asyncio.create_subprocess_exec(*command, cwd=tmp_path, env=environment)
        assert await asyncio.wait_for(process.wait(), 8) == 0
        texts = await fake.wait_sent(RESIDENT, 2)  # delivered by the runner's dispatcher

    assert texts[1].endswith(f"replied about {ref}:\nIt is Canberra <not Sydney>.")
    assert "&lt;not Sydney&gt;" in fake.sent(RESIDENT)[1]["text"]


async def test_the_webhook_checks_its_secret(tmp_path: Path, fake: FakeTelegram) -> None:
    url = "https://bot.testshire.example/telegram/webhook"
    config = load(str(write_site(tmp_path, fake, mode="webhook", webhook_url=url)))
    fake.hidden = notice(config)
    async with running(config, TELEGRAM_WEBHOOK_SECRET=SECRET) as runner:
        assert fake.webhook == {"url": url, "secret_token": SECRET}
        assert not fake.called("getUpdates")
        endpoint = runner.address + config.telegram.webhook_path
        update = fake.message_update(RESIDENT, RESIDENT, "how do I pay my council tax")
        async with httpx.AsyncClient() as client:
            missing = await client.post(endpoint, json=update)
            wrong = await client.post(endpoint, json=update, headers={tg.SECRET_HEADER: "guess"})
            assert (missing.status_code, wrong.status_code) == (403, 403)
            await asyncio.sleep(0.3)
            assert fake.sent(RESIDENT) == []
            right = await client.post(endpoint, json=update, headers={tg.SECRET_HEADER: SECRET})
            again = await client.post(endpoint, json=update, headers={tg.SECRET_HEADER: SECRET})  # Telegram retrying
            assert (right.status_code, again.status_code) == (200, 200)
            (answer,) = await fake.wait_sent(RESIDENT, 1)
            await asyncio.sleep(0.3)
    assert "Pay by Direct Debit" in answer
    assert len(fake.sent(RESIDENT)) == 1


def test_webhook_mode_needs_a_secret_and_an_address(site: Config) -> None:
    services = _services(site)
    webhook = TelegramConfig(mode="webhook", webhook_url="https://bot.testshire.example/telegram/webhook")
    try:
        for secret in (None, Secret("has spaces!"), Secret("x" * 257)):
            with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
                TelegramChannel(services, Secret(TOKEN), webhook, secret)
        with pytest.raises(ConfigError, match="webhook_url"):
            TelegramChannel(services, Secret(TOKEN), TelegramConfig(mode="webhook"), Secret(SECRET))
        channel = TelegramChannel(services, Secret(TOKEN), webhook, Secret(SECRET))
        assert [route.path for route in channel.routes()] == ["/telegram/webhook"]
        assert TelegramChannel(services, Secret(TOKEN), TelegramConfig(), None).routes() == []
    finally:
        services.engine.store.close()


async def test_a_crash_mid_batch_loses_nothing_and_answers_nothing_twice(site: Config, fake: FakeTelegram) -> None:
    fake.hold_acks = True  # the process dies before its next getUpdates tells Telegram what it handled
    fake.say(RESIDENT, RESIDENT, "how do I pay my council tax")
    fake.say(OTHER_RESIDENT, OTHER_RESIDENT, "hello")
    async with running(site):
        await fake.wait_sent(RESIDENT, 1)
        await fake.wait_sent(OTHER_RESIDENT, 1)
    assert len(fake.updates) == 2  # Telegram still has both, unacknowledged

    fake.hold_acks = False
    fake.say(RESIDENT, RESIDENT, "my bin was missed")
    async with running(site):  # restart on the same state.db: Telegram delivers all three
        texts = await fake.wait_sent(RESIDENT, 2)
        await fake.wait_for(lambda: not fake.updates, what="every update acknowledged")
        await asyncio.sleep(0.3)

    assert "Pay by Direct Debit" in texts[0] and texts[1].startswith("Report a missed bin")
    assert len(fake.sent(RESIDENT)) == 2 and len(fake.sent(OTHER_RESIDENT)) == 1
    handled = rows(site, "select event_id from inbox where platform = 'telegram' order by event_id")
    assert len(handled) == 3


async def test_429_waits_for_retry_after_before_sending_again(site: Config, fake: FakeTelegram) -> None:
    fake.hidden = None  # the privacy notice is the first message, the one refused
    fake.fail("sendMessage", 429, retry_after=3)
    async with running(site):
        fake.say(RESIDENT, RESIDENT, "hello")
        await fake.wait_sent(RESIDENT, 2, timeout=8)
    (refused,) = fake.called("sendMessage", ok=False)
    first, second = fake.called("sendMessage")
    assert refused.status == 429
    assert first.params["text"] == refused.params["text"]  # the same message, retried
    assert first.at - refused.at >= 3.0  # not before the wait Telegram asked for (the usual back-off is 2s)
    assert "Hello! Ask me" in second.params["text"]  # the next message waited too, and kept its place


async def test_html_in_a_message_is_shown_literally(site: Config, fake: FakeTelegram) -> None:
    injection = "<b>x</b> <script>alert(1)</script> & <a href='http://evil'>y</a>"
    async with running(site):
        fake.say(RESIDENT, RESIDENT, injection)
        await fake.wait_sent(RESIDENT, 1)
        (notification,) = await fake.wait_sent(OFFICER, 1)
    assert injection in notification  # what the officer reads is what the resident typed
    raw = fake.sent(OFFICER)[0]["text"]
    assert "&lt;b&gt;x&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;a href='http://evil'&gt;" in raw
    assert "<script>" not in raw and "<a " not in raw
    assert not fake.called("sendMessage", ok=False)  # Telegram parsed every message


async def test_photos_stickers_and_voice_get_a_helpful_reply(site: Config, fake: FakeTelegram) -> None:
    async with running(site):
        fake.deliver(fake.message_update(RESIDENT, RESIDENT, photo=PHOTO["message"]["photo"], caption="look"))
        fake.deliver(fake.message_update(RESIDENT, RESIDENT, sticker=STICKER))
        fake.deliver(
            fake.message_update(RESIDENT, RESIDENT, voice={"file_id": "AwAC", "file_unique_id": "v", "duration": 2})
        )
        fake.deliver(fake.message_update(RESIDENT, RESIDENT, location={"latitude": 51.5, "longitude": -0.12}))
        fake.deliver(fake.message_update(RESIDENT, RESIDENT, document={"file_id": "BQAC", "file_unique_id": "d"}))
        texts = await fake.wait_sent(RESIDENT, 5)
        fake.say(RESIDENT, RESIDENT, "hello")
        texts = await fake.wait_sent(RESIDENT, 6)  # still answering afterwards
    assert all(t.startswith("I can only read typed messages") for t in texts[:5])
    for text, noun in zip(texts, ["photo", "sticker", "voice message", "location", "file"], strict=False):
        assert f"can't see that {noun}" in text
    assert "Hello! Ask me" in texts[5]


async def test_a_group_chat_is_answered_only_when_addressed(site: Config, fake: FakeTelegram) -> None:
    async with running(site):
        fake.say(GROUP, OTHER_RESIDENT, "when is my bin day")  # chatter between residents
        fake.say(GROUP, OTHER_RESIDENT, "/help@some_other_bot")
        fake.say(GROUP, OTHER_RESIDENT, f"@{BOT_USERNAME} when is my bin day")
        (answer,) = await fake.wait_sent(GROUP, 1)
        fake.say(GROUP, OTHER_RESIDENT, "thanks all")
        fake.say(GROUP, OTHER_RESIDENT, "and a missed bin?", reply_to=fake.last_message_id(GROUP))
        fake.say(GROUP, OTHER_RESIDENT, f"/help@{BOT_USERNAME}")
        texts = await fake.wait_sent(GROUP, 3)
        await fake.wait_for(lambda: not fake.updates, what="every update acknowledged")
        await asyncio.sleep(0.3)
    assert "Find your bin day" in answer
    assert texts[1].startswith("Report a missed bin") and "/human" in texts[2]
    assert len(fake.sent(GROUP)) == 3


# -- the channel's send, on its own -------------------------------------------------------------


def _services(config: Config):
    from bot.channels import Services
    from bot.wiring import make_engine

    engine = make_engine(config)
    return Services(config, engine, engine.desk, engine.desk.router)


async def test_send_reports_what_went_wrong(site: Config, fake: FakeTelegram) -> None:
    services = _services(site)
    channel = TelegramChannel(services, Secret(TOKEN), site.telegram)
    with pytest.raises(DeliveryError, match="not connected"):
        await channel.send(OutgoingMessage("telegram", str(RESIDENT), "hi"))
    await channel.start()
    try:
        fake.fail("sendMessage", 429, retry_after=5)
        with pytest.raises(DeliveryError) as waited:
            await channel.send(OutgoingMessage("telegram", "4004", "hi"))
        assert (waited.value.retry_after, waited.value.permanent) == (5.0, False)
        asked = len(fake.calls)
        with pytest.raises(DeliveryError) as held:  # the chat's next message waits too, without asking Telegram
            await channel.send(OutgoingMessage("telegram", "4004", "and then"))
        assert 4 < held.value.retry_after <= 5 and len(fake.calls) == asked
        fake.fail("sendMessage", 500)
        with pytest.raises(DeliveryError) as broken:
            await channel.send(OutgoingMessage("telegram", str(RESIDENT), "hi"))
        assert (broken.value.retry_after, broken.value.permanent) == (None, False)
        fake.blocked.add("2002")
        with pytest.raises(DeliveryError) as blocked:
            await channel.send(OutgoingMessage("telegram", "2002", "hi"))
        assert blocked.value.permanent
        fake.missing.add("2003")
        with pytest.raises(DeliveryError) as missing:
            await channel.send(OutgoingMessage("telegram", "2003", "hi"))
        assert missing.value.permanent
        assert TOKEN not in str(missing.value)

        long_text = "\n\n".join(f"Part {n}: " + "y" * 3000 for n in range(3))
        first = await channel.send(OutgoingMessage("telegram", str(RESIDENT), long_text))
        parts = fake.sent(RESIDENT)
        assert len(parts) == 3 and first == str(fake.called("sendMessage")[0].result["message_id"])
        assert [parse_html(p["text"])[0][:6] for p in parts] == ["Part 0", "Part 1", "Part 2"]

        fake.fail("sendMessage", 500)  # the second part fails: a retry sends only what is missing
        fake.calls.clear()
        with pytest.raises(DeliveryError):
            await channel.send(OutgoingMessage("telegram", "3003", long_text))
        again = await channel.send(OutgoingMessage("telegram", "3003", long_text))
        assert [parse_html(p["text"])[0][:6] for p in fake.sent(3003)] == ["Part 0", "Part 1", "Part 2"]
        assert again == str(fake.called("sendMessage")[0].result["message_id"])
    finally:
        await channel.stop()
    after = await channel.send(OutgoingMessage("telegram", str(RESIDENT), "the last delivery pass"))
    assert after == str(fake.last_message_id(RESIDENT))
    services.engine.store.close()


async def test_an_officers_reply_delivered_twice_is_relayed_once(site: Config) -> None:
    services = _services(site)
    channel = TelegramChannel(services, Secret(TOKEN), site.telegram)
    store = services.engine.store
    try:
        await services.receive(IncomingMessage("telegram", "1001", UNMATCHED, conversation="1001", event_id="1"))
        sent = Dispatcher(store, {"telegram": lambda message: "900"}, services.engine.clock)
        assert await sent.deliver() >= 2  # the resident's reply and the officer's notification
        (ref,) = [r["ref"] for r in store.db.query("select ref from escalations")]

        stranger = tg.TelegramEvent(TEXT, 50, chat=str(OFFICER), user=str(STRANGER), text="me too", reply_to="900")
        reply = tg.TelegramEvent(TEXT, 51, chat=str(OFFICER), user=str(OFFICER), text="Canberra.", reply_to="900")
        for event in (stranger, reply, reply):  # Telegram delivering the reply again
            await channel.handle(event)
    finally:
        pending = [
            (r["conversation"], r["purpose"], r["text"])
            for r in store.db.query("select * from outbox where status = 'pending' order by id")
        ]
        services.engine.store.close()
    assert pending == [
        (str(OFFICER), "reply", tg.NOT_OFFICER_REPLY),
        ("1001", "relay", f"Dana Price (Customer Services duty officer) replied about {ref}:\nCanberra."),
        (str(OFFICER), "reply", f"Sent to the resident on telegram ({ref})."),
    ]


async def test_a_wrong_token_is_a_clear_error_and_never_printed(site: Config, fake: FakeTelegram) -> None:
    services = _services(site)
    wrong = "999:wrong-token-value"
    try:
        channel = TelegramChannel(services, Secret(wrong), site.telegram)
        with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN") as error:
            await channel.start()
        assert wrong not in str(error.value) and error.value.__cause__ is None and error.value.__suppress_context__
        await channel.application.bot.shutdown()
    finally:
        services.engine.store.close()


async def test_telegram_down_at_start_is_retried_in_the_background(site: Config, fake: FakeTelegram) -> None:
    fake.fail("getMe", 500)
    async with running(site):  # the runner (and the web chat) start all the same
        assert not fake.called("setMyCommands")
        fake.say(RESIDENT, RESIDENT, "hello")
        (answer,) = await fake.wait_sent(RESIDENT, 1, timeout=6)
    assert "Hello! Ask me" in answer
    assert fake.called("getMe", ok=False) and fake.called("getMe")


async def test_data_commands_reach_the_engine_only_in_a_private_chat(site: Config) -> None:
    services = _services(site)
    channel = TelegramChannel(services, Secret(TOKEN), site.telegram)
    store = services.engine.store
    say = replies.privacy_notice(site)
    try:
        events = [("-100200300", "mydata", True), ("1001", "forget", False), ("1001", "weather", False)]
        events += [("1001", "help", False)]
        for update_id, (chat, command, group) in enumerate(events, 60):
            event = tg.TelegramEvent(COMMAND, update_id, chat=chat, user="1001", command=command, group=group)
            await channel.handle(event)
        await channel.handle(tg.TelegramEvent(COMMAND, 63, chat="1001", user="1001", command="help"))  # again
        sent = [(r["conversation"], r["text"], r["user"]) for r in store.db.query("select * from outbox order by id")]
    finally:
        store.close()
    assert [(chat, text) for chat, text, _user in sent if text != say] == [
        ("-100200300", tg.private_only_text("mydata")),  # not shown to the whole group
        ("1001", replies.confirm_erase(site)),  # /forget is the engine's "delete my data"
        ("1001", tg.unknown_command_text()),
        ("1001", tg.help_text(site.council)),
    ]
    assert {user for _chat, _text, user in sent} == {"1001"}  # erasure finds every message sent to them
