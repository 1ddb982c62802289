"""bot.adapters.slack: the real slack-bolt app and slack_sdk client against a fake Slack on 127.0.0.1.

Events and button presses come in as correctly signed HTTP requests (the
Events API) or as Socket Mode envelopes; what the bot sends goes through the
outbox and a ``Dispatcher`` to the fake's Web API, which records it. The
pure converters in ``bot.adapters.slack_blocks`` are tested on recorded
payloads at the end.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from conftest import ENTRIES, OFFICERS, TRADE_WASTE, UNMATCHED, Clock, Recorder, config_data, entry
from fake_slack import BOT_USER, TEAM, FakeSlack

from bot.adapters import slack_blocks as sb
from bot.adapters.slack import SlackChannel
from bot.channels import Services
from bot.config import Config, ConfigError, SlackConfig, parse
from bot.engine import Engine
from bot.messages import IncomingMessage, Option, OutgoingMessage
from bot.outbox import Dispatcher
from bot.runner import build_channels
from bot.secret import Secret
from bot.store import Store
from bot.wiring import make_matcher
from knowledge import build
from knowledge.base import KnowledgeBase
from knowledge.content import Content

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"
COUNCILLOR = "UCLLR"
COUNCILLOR_DM = "DCLLR"
GENERAL = "C0GENERAL"
DESK = "C0DESK"
SOCIAL = "how do I do social media?"
SOCIAL_ANSWER = "Pick one platform &amp; post twice a week. Never share &lt;personal&gt; details."
AMBIGUOUS = "pages and groups"

SOCIAL_ENTRIES = [
    entry(
        "socialmedia.start",
        "faq",
        "social-media",
        [
            "how do i do social media",
            "how do i get started on social media",
            "where do i start with social media as a councillor",
            "social media for beginners",
        ],
        "Pick one platform & post twice a week. Never share <personal> details.",
        title="Getting started on social media",
    ),
    entry(
        "socialmedia.facebook-page",
        "faq",
        "social-media",
        [
            "set up a facebook page",
            "create a facebook page for my ward",
            "facebook page for councillors",
            "make a page on facebook",
        ],
        "Use a page, not your personal profile.",
        title="A Facebook page",
    ),
    entry(
        "socialmedia.facebook-groups",
        "faq",
        "social-media",
        ["should i join facebook groups", "local facebook groups", "posting in community facebook groups"],
        "Join local groups and follow their rules.",
        title="Facebook groups",
    ),
]


def slack_officers() -> list[dict]:
    """The test rota with Slack contacts: duty in a channel, waste and safeguarding by DM, lead by identity."""
    contacts = {
        "duty": {"contact": f"slack:{DESK}", "slack_user": "UDANA"},
        "waste": {"contact": "slack:UWYN"},
        "safe": {"contact": "slack:USOL"},
        "lead": {"slack_user": "ULEE"},
    }
    return [dict(o) | contacts.get(o["id"], {}) for o in OFFICERS]


@pytest.fixture(scope="session")
def kb_slack(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    target = tmp_path_factory.mktemp("kb-slack") / "knowledge.db"
    build.build(Content(list(ENTRIES) + SOCIAL_ENTRIES, {"rubbish": "bin"}), target)
    return KnowledgeBase(target)


# -- the world a test runs in --------------------------------------------------------------


def sign(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    """X-Slack-Signature for ``body`` sent at ``timestamp``, as Slack computes it."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


async def eventually(check: Callable[[], object], timeout: float = 5.0) -> object:
    """Poll ``check`` until it returns something true (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {check}")
        await asyncio.sleep(0.02)


@dataclass
class World:
    """One bot with its Slack channel, the fake Slack, a dispatcher and the residents' recorder."""

    fake: FakeSlack
    config: Config
    store: Store
    engine: Engine
    services: Services
    channel: SlackChannel
    dispatcher: Dispatcher
    residents: Recorder
    clock: Clock
    http: httpx.AsyncClient

    async def deliver(self) -> int:
        """Send what is due in the outbox (a few rounds, for messages that cause messages)."""
        total = 0
        for _ in range(5):
            sent = await self.dispatcher.deliver()
            total += sent
            if not sent:
                break
        return total

    def outbox(self, **where: object) -> list[dict]:
        rows = list(self.store.db.query("select * from outbox order by id"))
        return [r for r in rows if all(r[k] == v for k, v in where.items())]

    def escalation(self, ref: str) -> dict:
        found = self.services.desk.find(ref)
        assert found is not None
        return found

    async def post(
        self,
        body: bytes,
        content_type: str = "application/json",
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict | None = None,
    ) -> httpx.Response:
        """POST to the Events API endpoint, signed correctly unless told otherwise."""
        timestamp = int(time.time()) if timestamp is None else timestamp
        sent = {
            "content-type": content_type,
            "x-slack-request-timestamp": str(timestamp),
            "x-slack-signature": signature or sign(body, timestamp),
        }
        return await self.http.post(self.config.slack.events_path, content=body, headers=sent | (headers or {}))

    async def event(self, event: dict, event_id: str, retry: int = 0) -> httpx.Response:
        headers = {"x-slack-retry-num": str(retry), "x-slack-retry-reason": "http_timeout"} if retry else {}
        return await self.post(json.dumps(event_body(event, event_id)).encode(), headers=headers)

    async def interact(self, payload: dict) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, "application/x-www-form-urlencoded")

    async def resident_asks(self, text: str, platform: str = "web", user: str = "res-1") -> str:
        """A resident's question on another platform; returns the escalation reference."""
        incoming = IncomingMessage(platform, user, text, conversation=f"chat-{user}", event_id=f"{platform}-{text}")
        outcome = await self.services.receive(incoming)
        assert outcome is not None and outcome.reference
        return outcome.reference


Make = Callable[..., Awaitable[World]]


@pytest.fixture
async def make(tmp_path: Path, kb_slack: KnowledgeBase, clock: Clock) -> AsyncIterator[Make]:
    """Build a world: ``await make(mode="http")`` or ``await make(mode="socket")`` (started, connected)."""
    fake = await FakeSlack().start()
    worlds: list[World] = []

    async def build_world(mode: str = "http", **slack: object) -> World:
        config = parse(
            config_data(
                officers=slack_officers(),
                slack={"mode": mode, "api_base_url": fake.url, **slack},
                web={"enabled": False},
            ),
            "test",
            tmp_path / str(len(worlds)),
        )
        store = Store(config.path(config.storage.state_db))
        engine = Engine(kb_slack, make_matcher(kb_slack, config), config, store, clock=clock)
        services = Services(config, engine, engine.desk, engine.desk.router)
        channel = SlackChannel(
            services,
            Secret(BOT_TOKEN),
            config.slack,
            app_token=Secret(APP_TOKEN),
            signing_secret=Secret(SIGNING_SECRET),
        )
        residents = Recorder()
        dispatcher = Dispatcher(store, {"slack": channel.send, "web": residents, "telegram": residents}, clock)
        from starlette.applications import Starlette

        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=Starlette(routes=channel.routes())), base_url="http://bot"
        )
        world = World(fake, config, store, engine, services, channel, dispatcher, residents, clock, http)
        worlds.append(world)
        await channel.start()
        if mode == "socket":
            await fake.wait_connected()
        return world

    yield build_world
    for world in worlds:
        await world.channel.stop()
        await world.http.aclose()
        world.store.close()
    await fake.close()


# -- recorded payloads -----------------------------------------------------------------------

_ts = itertools.count(1)


def next_ts() -> str:
    return f"1700100{next(_ts):03d}.000200"


def event_body(event: dict, event_id: str) -> dict:
    """An Events API callback wrapping ``event``, as Slack sends it."""
    return {
        "token": "verification-token",
        "team_id": TEAM,
        "api_app_id": "A0COUNCIL",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6Im1lc3NhZ2UifQ",
    }


def dm(text: str, user: str = COUNCILLOR, channel: str = COUNCILLOR_DM, thread_ts: str | None = None) -> dict:
    """A message.im event."""
    ts = next_ts()
    event = {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": "im",
        "team": TEAM,
        "blocks": [{"type": "rich_text", "block_id": "b1", "elements": []}],
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def mention(text: str, user: str = COUNCILLOR, channel: str = GENERAL, thread_ts: str | None = None) -> dict:
    """An app_mention event."""
    ts = next_ts()
    event = {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel, "event_ts": ts}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def channel_message(text: str, user: str, channel: str, thread_ts: str) -> dict:
    """A message.channels event in a thread."""
    ts = next_ts()
    return {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "thread_ts": thread_ts,
        "parent_user_id": BOT_USER,
        "channel_type": "channel",
    }


def pressed(user: str, posted: dict, action: dict, channel: str | None = None, trigger_id: str = "trig-1") -> dict:
    """A block_actions payload: ``user`` pressed ``action`` on the message the fake recorded as ``posted``."""
    channel = channel or posted["channel"]
    message = {
        "type": "message",
        "user": BOT_USER,
        "bot_id": "BBOT",
        "ts": posted["ts"],
        "text": posted.get("text", ""),
        "blocks": posted.get("blocks", []),
    }
    if posted.get("thread_ts"):
        message["thread_ts"] = posted["thread_ts"]
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0COUNCIL",
        "token": "verification-token",
        "container": {"type": "message", "message_ts": posted["ts"], "channel_id": channel, "is_ephemeral": False},
        "trigger_id": trigger_id,
        "team": {"id": TEAM, "domain": "council"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "officers"},
        "message": message,
        "state": {"values": {}},
        "response_url": "https://hooks.slack.invalid/actions/T0COUNCIL/1/abc",
        "actions": [action | {"action_ts": f"{time.time():.6f}"}],
    }


def button(posted: dict, action_id: str) -> dict:
    """The recorded button ``action_id`` of a posted message, as its action arrives."""
    for block in posted["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return {
                    "action_id": action_id,
                    "block_id": block.get("block_id", ""),
                    "text": element["text"],
                    "value": element["value"],
                    "type": "button",
                }
    raise AssertionError(f"no {action_id} button in {posted['blocks']}")


def picked(posted: dict, officer_id: str) -> dict:
    """The Reassign picker's action with ``officer_id`` chosen."""
    for block in posted["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == sb.REASSIGN:
                (option,) = [o for o in element["options"] if o["value"].endswith(f":{officer_id}")]
                return {
                    "action_id": sb.REASSIGN,
                    "block_id": block["block_id"],
                    "type": "static_select",
                    "selected_option": option,
                }
    raise AssertionError("no Reassign picker")


def submission(user: str, view: dict, values: dict) -> dict:
    """A view_submission payload for the modal the fake recorded as opened."""
    return {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "council"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0COUNCIL",
        "token": "verification-token",
        "trigger_id": "trig-2",
        "view": view | {"id": "V0FORM", "team_id": TEAM, "state": {"values": values}, "hash": "1.abc"},
        "response_urls": [],
        "is_enterprise_install": False,
    }


def text_input(block_id: str, value: str) -> dict:
    return {block_id: {"text": {"type": "plain_text_input", "value": value}}}


def all_text(request: dict) -> str:
    """Every piece of text a recorded chat.postMessage or chat.update carried."""
    return json.dumps(request.get("blocks", []), ensure_ascii=False) + request.get("text", "")


PRIVACY = "Privacy:"
"""How the privacy notice the engine sends before a conversation's first reply begins."""


def answers(world: World) -> list[dict]:
    """The bot's replies on Slack in the outbox, without the privacy notice at a conversation's start."""
    return [r for r in world.outbox(platform="slack", purpose="reply") if not r["text"].startswith(PRIVACY)]


def posted_answers(world: World) -> list[dict]:
    """What chat.postMessage was sent, without privacy notices."""
    return [p for p in world.fake.posts() if not p["text"].startswith(PRIVACY)]


def action_ids(request: dict) -> list[str]:
    return [e.get("action_id") for b in request.get("blocks", []) for e in b.get("elements", []) if "action_id" in e]


async def notified(world: World, ref: str, conversation: str = DESK) -> dict:
    """Deliver the notification of ``ref`` and return it as posted (with its ts)."""
    await world.deliver()
    (row,) = world.outbox(ref=ref, purpose="notify", conversation=conversation)
    assert row["status"] == "sent", row["last_error"]
    channel = sb.parse_conversation(conversation)[0]
    (post,) = [p for p in world.fake.posts() if p["channel"] == channel and ref in all_text(p)]
    assert post["ts"] == row["platform_message_id"], "send returns the ts, for threads and updates"
    return post


# -- people ask -------------------------------------------------------------------------------


async def test_direct_message_answered_in_the_dm(make: Make) -> None:
    world = await make("http")
    response = await world.event(dm(SOCIAL), "Ev0DM1")
    assert response.status_code == 200
    (reply,) = await eventually(lambda: answers(world))
    assert reply["conversation"] == COUNCILLOR_DM
    assert await world.deliver() == 2
    notice, post = world.fake.posts()
    assert notice["text"].startswith(PRIVACY) and notice["channel"] == COUNCILLOR_DM, "first contact: the notice"
    assert post["channel"] == COUNCILLOR_DM
    assert "thread_ts" not in post
    assert SOCIAL_ANSWER in post["blocks"][0]["text"]["text"]
    assert world.fake.calls[-1].token == BOT_TOKEN
    assert world.fake.to("auth.test"), "bolt learns the bot's own id with auth.test"
    assert world.outbox(id=reply["id"])[0]["platform_message_id"] == post["ts"]


async def test_mention_answered_in_a_thread_over_socket_mode(make: Make) -> None:
    world = await make("socket")
    assert [c.token for c in world.fake.calls if c.method == "apps.connections.open"] == [APP_TOKEN]
    event = mention(f"<@{BOT_USER}> {SOCIAL}")
    envelope = await world.fake.push("events_api", event_body(event, "Ev0MENTION"))
    assert (await world.fake.wait_ack(envelope))["envelope_id"] == envelope
    (reply,) = await eventually(lambda: answers(world))
    assert reply["conversation"] == f"{GENERAL}:{event['ts']}"
    await world.deliver()
    (post,) = posted_answers(world)
    assert (post["channel"], post["thread_ts"]) == (GENERAL, event["ts"])
    assert SOCIAL_ANSWER in all_text(post)
    logged = [r["text"] for r in world.store.db.query("select text from messages where direction = 'in'")]
    assert logged == [SOCIAL], "the mention is stripped from what the engine reads"

    # A follow-up in the bot's thread needs no mention; chatter in other threads is left alone.
    follow = channel_message("social media for beginners", COUNCILLOR, GENERAL, event["ts"])
    other = channel_message("lunch anyone?", "UOTHER", GENERAL, "1600000000.000001")
    await world.fake.wait_ack(await world.fake.push("events_api", event_body(other, "Ev0OTHER")))
    await world.fake.wait_ack(await world.fake.push("events_api", event_body(follow, "Ev0FOLLOW")))
    await eventually(lambda: len(answers(world)) == 2)
    await world.deliver()
    assert [p.get("thread_ts") for p in world.fake.posts()] == [event["ts"]] * 3, "notice and two answers"
    assert not world.store.db.execute("select 1 from messages where user = 'UOTHER'").fetchall()


async def test_events_are_acknowledged_before_the_work_is_done(make: Make) -> None:
    world = await make("http")
    gate = asyncio.Event()
    handled: list[IncomingMessage] = []

    async def slow_receive(message: IncomingMessage) -> None:
        await gate.wait()
        handled.append(message)

    world.services.receive = slow_receive  # type: ignore[method-assign]
    response = await asyncio.wait_for(world.event(dm(SOCIAL), "Ev0SLOW"), 2.0)
    assert response.status_code == 200
    assert handled == []
    gate.set()
    (message,) = await eventually(lambda: handled)
    assert message.event_id == "Ev0SLOW"


async def test_buttons_are_acknowledged_before_the_desk_acts(make: Make) -> None:
    world = await make("http")
    ref = await world.resident_asks(UNMATCHED)
    note = await notified(world, ref)
    gate = asyncio.Event()
    act = world.services.act

    async def slow_act(action: Callable[[], object]) -> object:
        await gate.wait()
        return await act(action)

    world.services.act = slow_act  # type: ignore[method-assign]
    response = await asyncio.wait_for(world.interact(pressed("UDANA", note, button(note, sb.CLAIM))), 2.0)
    assert response.status_code == 200
    assert world.escalation(ref)["claimed_by"] == ""
    gate.set()
    await eventually(lambda: world.escalation(ref)["claimed_by"] == "duty")


async def test_clarification_answered_by_button(make: Make) -> None:
    world = await make("http")
    await world.event(dm(AMBIGUOUS), "Ev0AMBIG")
    await eventually(lambda: answers(world))
    await world.deliver()
    (question,) = posted_answers(world)
    buttons = [e for b in question["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["value"] for b in buttons] == [
        "socialmedia.facebook-page",
        "socialmedia.facebook-groups",
        "handoff.human",
    ]
    assert [b["text"]["text"] for b in buttons][:2] == ["A Facebook page", "Facebook groups"]

    response = await world.interact(pressed(COUNCILLOR, question, button(question, f"{sb.CHOICE}_1")))
    assert response.status_code == 200
    await eventually(lambda: len(answers(world)) == 2)
    await world.deliver()
    answer = world.fake.posts()[-1]
    assert answer["channel"] == COUNCILLOR_DM
    assert "Join local groups" in all_text(answer)
    (marked,) = world.fake.to("chat.update")
    assert marked["ts"] == question["ts"]
    assert "actions" not in [b["type"] for b in marked["blocks"]]
    assert "You chose: *Facebook groups*" in all_text(marked)


# -- officers handle escalations in Slack ------------------------------------------------------------


async def test_web_chat_escalation_handled_entirely_in_slack(make: Make) -> None:
    world = await make("http")
    ref = await world.resident_asks(UNMATCHED)
    note = await notified(world, ref)
    text = all_text(note)
    assert note["blocks"][0]["type"] == "header" and ref in note["blocks"][0]["text"]["text"]
    assert UNMATCHED in text and "the web chat" in text and "chat-res-1" in text and "Dana Price" in text
    assert "councilbot escalations reply" not in text, "the CLI hint is for the terminal"
    assert action_ids(note) == [sb.CLAIM, sb.REPLY, sb.CLOSE, sb.REASSIGN, sb.SUGGEST]
    assert "Waiting" in text

    await world.interact(pressed("UDANA", note, button(note, sb.CLAIM)))
    await eventually(lambda: world.escalation(ref)["claimed_by"] == "duty")
    claimed = await eventually(lambda: world.fake.to("chat.update"))
    assert (claimed[-1]["channel"], claimed[-1]["ts"]) == (DESK, note["ts"])
    assert "*Claimed* by Dana Price" in all_text(claimed[-1])
    assert sb.CLAIM not in action_ids(claimed[-1])

    await world.interact(pressed("UDANA", note, button(note, sb.REPLY), trigger_id="trig-reply"))
    (opened,) = await eventually(lambda: world.fake.to("views.open"))
    assert opened["trigger_id"] == "trig-reply"
    form = opened["view"]
    assert form["callback_id"] == sb.REPLY_VIEW and UNMATCHED in all_text(form)
    values = text_input("reply", "It is Canberra & we <do> know.") | {
        "kb": {"add": {"type": "checkboxes", "selected_options": []}}
    }
    response = await world.interact(submission("UDANA", form, values))
    assert response.status_code == 200
    (relay,) = await eventually(lambda: world.outbox(purpose="relay"))
    assert (relay["platform"], relay["conversation"]) == ("web", "chat-res-1")
    await world.deliver()
    (delivered,) = [m for m in world.residents.sent if "Canberra" in m.text]
    assert "It is Canberra & we <do> know." in delivered.text, "the resident gets plain text, not Slack's escapes"
    assert world.escalation(ref)["status"] == "answered"
    answered = await eventually(lambda: [u for u in world.fake.to("chat.update") if "*Answered*" in all_text(u)])
    assert "Dana Price" in all_text(answered[-1])
    await eventually(lambda: [e for e in world.fake.to("chat.postEphemeral") if "Sent to the resident" in e["text"]])

    await world.interact(pressed("UDANA", note, button(note, sb.CLOSE), trigger_id="trig-close"))
    await eventually(lambda: len(world.fake.to("views.open")) == 2)
    close_form = world.fake.to("views.open")[-1]["view"]
    assert close_form["callback_id"] == sb.CLOSE_VIEW
    await world.interact(submission("UDANA", close_form, text_input("note", "Answered by phone too")))
    await eventually(lambda: world.escalation(ref)["status"] == "closed")
    assert world.escalation(ref)["close_note"] == "Answered by phone too"
    closed = await eventually(lambda: [u for u in world.fake.to("chat.update") if "*Closed*" in all_text(u)])
    assert action_ids(closed[-1]) == [sb.SUGGEST]

    await world.interact(pressed("UDANA", note, button(note, sb.SUGGEST)))
    (suggestion,) = await eventually(lambda: world.services.desk.suggestions())
    assert suggestion["answer"] == "It is Canberra & we <do> know." and suggestion["officer"] == "duty"


async def test_empty_reply_is_refused_in_the_form(make: Make) -> None:
    world = await make("http")
    ref = await world.resident_asks(UNMATCHED)
    form = sb.reply_modal(ref, UNMATCHED, DESK)
    response = await world.interact(submission("UDANA", form, text_input("reply", "   ")))
    assert response.status_code == 200
    assert response.json() == {"response_action": "errors", "errors": {"reply": "Write what the resident should read."}}
    assert world.outbox(purpose="relay") == []


async def test_telegram_escalation_answered_by_a_reply_in_the_thread(make: Make) -> None:
    world = await make("socket")
    ref = await world.resident_asks(TRADE_WASTE, platform="telegram", user="424242")
    note = await notified(world, ref, conversation="UWYN")
    assert note["channel"] == "UWYN" and "Telegram" in all_text(note)

    reply = dm("We collect trade waste on Tuesdays &amp; Fridays", user="UWYN", channel="DWYN", thread_ts=note["ts"])
    envelope = await world.fake.push("events_api", event_body(reply, "Ev0THREAD"))
    await world.fake.wait_ack(envelope)
    (relay,) = await eventually(lambda: world.outbox(purpose="relay"))
    assert (relay["platform"], relay["conversation"]) == ("telegram", "chat-424242")
    assert relay["text"].endswith("We collect trade waste on Tuesdays & Fridays")
    update = (await eventually(lambda: world.fake.to("chat.update")))[-1]
    assert (update["channel"], update["ts"]) == ("DWYN", note["ts"]), "DM notifications are updated in the DM"
    assert "*Answered* by Wyn Jones" in all_text(update)

    # Slack's retry of the same event: recognised, not relayed again.
    again = await world.fake.push("events_api", event_body(reply, "Ev0THREAD"), retry_attempt=1, retry_reason="timeout")
    await world.fake.wait_ack(again)
    await asyncio.sleep(0.2)
    assert len(world.outbox(purpose="relay")) == 1
    await world.deliver()
    assert {m.conversation for m in world.residents.sent} == {"chat-424242"}
    relayed = [m for m in world.residents.sent if "Tuesdays" in m.text]
    assert len(relayed) == 1 and "Tuesdays & Fridays" in relayed[0].text


async def test_buttons_over_socket_mode(make: Make) -> None:
    world = await make("socket")
    ref = await world.resident_asks(UNMATCHED)
    note = await notified(world, ref)
    envelope = await world.fake.push("interactive", pressed("UDANA", note, button(note, sb.CLAIM)))
    await world.fake.wait_ack(envelope)
    await eventually(lambda: world.escalation(ref)["claimed_by"] == "duty")


async def test_a_dm_notification_is_updated_after_a_restart(make: Make) -> None:
    world = await make("http")
    ref = await world.resident_asks(TRADE_WASTE)
    note = await notified(world, ref, conversation="UWYN")
    world.channel._dms.clear()  # a restarted bot knows only the user id the notification was addressed to
    await world.interact(pressed("UWYN", note, button(note, sb.CLAIM), channel="DWYN"))
    (update,) = await eventually(lambda: world.fake.to("chat.update"))
    assert world.fake.to("conversations.open") == [{"users": "UWYN"}]
    assert (update["channel"], update["ts"]) == ("DWYN", note["ts"])
    assert "*Claimed* by Wyn Jones" in all_text(update)


async def test_a_thread_reply_by_someone_else_is_not_relayed(make: Make) -> None:
    world = await make("http")
    ref = await world.resident_asks(UNMATCHED)
    note = await notified(world, ref)
    await world.event(channel_message("I think it's Sydney", "USTRANGER", DESK, note["ts"]), "Ev0STRANGER")
    (told,) = await eventually(lambda: world.fake.to("chat.postEphemeral"))
    assert told["user"] == "USTRANGER" and told["thread_ts"] == note["ts"]
    assert world.outbox(purpose="relay") == []
    assert world.outbox(purpose="reply", platform="slack") == [], "not answered as a question either"


async def test_a_non_officer_pressing_claim_is_refused_politely(make: Make) -> None:
    world = await make("http")
    ref = await world.resident_asks(UNMATCHED)
    note = await notified(world, ref)
    await world.interact(pressed("USTRANGER", note, button(note, sb.CLAIM)))
    (told,) = await eventually(lambda: world.fake.to("chat.postEphemeral"))
    assert (told["channel"], told["user"]) == (DESK, "USTRANGER")
    assert told["text"].startswith("Sorry, only the officers")
    assert world.escalation(ref)["claimed_by"] == ""
    assert world.fake.to("chat.update") == []
    assert world.fake.to("views.open") == []


async def test_desk_errors_are_shown_to_the_officer(make: Make) -> None:
    world = await make("http")
    ref = await world.resident_asks(UNMATCHED)
    note = await notified(world, ref)
    await world.interact(pressed("UDANA", note, button(note, sb.CLAIM)))
    await eventually(lambda: world.escalation(ref)["claimed_by"] == "duty")
    await world.interact(pressed("ULEE", note, button(note, sb.CLAIM)))
    (told,) = await eventually(lambda: world.fake.to("chat.postEphemeral"))
    assert told["user"] == "ULEE"
    assert told["text"] == f"{ref} is already claimed by Dana Price"
    await world.interact(pressed("UDANA", note, button(note, sb.SUGGEST)))
    await eventually(lambda: len(world.fake.to("chat.postEphemeral")) == 2)
    assert (
        world.fake.to("chat.postEphemeral")[-1]["text"] == f"{ref} has no reply yet to suggest for the knowledge base"
    )


async def test_reassign_from_the_picker(make: Make) -> None:
    world = await make("http")
    ref = await world.resident_asks(UNMATCHED)
    note = await notified(world, ref)
    await world.interact(pressed("UDANA", note, picked(note, "waste")))
    await eventually(lambda: world.escalation(ref)["officer"] == "waste")
    (moved,) = world.outbox(purpose="notify", conversation="UWYN")
    assert "is now yours" in moved["text"]
    (told,) = await eventually(lambda: world.fake.to("chat.postEphemeral"))
    assert told["text"] == f"{ref} is now with Wyn Jones."
    updated = (await eventually(lambda: world.fake.to("chat.update")))[-1]
    assert "Wyn Jones" in json.dumps(updated["blocks"][-3])  # the *With* field
    await world.deliver()
    to_wyn = [p for p in world.fake.to("chat.postMessage") if p["channel"] == "UWYN"]
    assert len(to_wyn) == 1 and sb.CLAIM in action_ids(to_wyn[0])


async def test_notifications_are_copied_to_the_escalation_channel(make: Make) -> None:
    world = await make("http", escalation_channel="C0ALL")
    ref = await world.resident_asks(TRADE_WASTE)
    await world.deliver()
    channels = [p["channel"] for p in world.fake.to("chat.postMessage")]
    assert channels == ["UWYN", "C0ALL"]
    copy = world.fake.posts()[-1]
    assert copy["ts"] == world.outbox(conversation="C0ALL")[0]["platform_message_id"]
    await world.interact(pressed("UWYN", copy, button(copy, sb.CLAIM)))
    await eventually(lambda: len(world.fake.to("chat.update")) == 2)
    assert {u["channel"] for u in world.fake.to("chat.update")} == {"DWYN", "C0ALL"}
    assert world.escalation(ref)["claimed_by"] == "waste"


# -- delivery ---------------------------------------------------------------------------------


async def test_rate_limit_retry_after_is_honoured(make: Make) -> None:
    world = await make("http")
    world.fake.fail("chat.postMessage", status=429, retry_after=7)
    await world.services.say(OutgoingMessage("slack", COUNCILLOR_DM, "hello"))
    assert await world.deliver() == 0
    (row,) = world.outbox()
    assert row["status"] == "pending" and "rate limit" in row["last_error"]
    assert row["next_attempt_at"] == (world.clock() + timedelta(seconds=7)).isoformat()
    world.clock.advance(seconds=6)
    assert await world.deliver() == 0
    assert len(world.fake.to("chat.postMessage")) == 1
    world.clock.advance(seconds=1)
    assert await world.deliver() == 1
    assert world.outbox()[0]["status"] == "sent"


async def test_server_error_is_retried_later(make: Make) -> None:
    world = await make("http")
    world.fake.fail("chat.postMessage", status=500)
    await world.services.say(OutgoingMessage("slack", COUNCILLOR_DM, "hello"))
    assert await world.deliver() == 0
    (row,) = world.outbox()
    assert row["status"] == "pending" and "internal_error" in row["last_error"]
    world.clock.advance(seconds=2)
    assert await world.deliver() == 1


@pytest.mark.parametrize(
    "error", ["channel_not_found", "is_archived", "not_in_channel", "account_inactive", "invalid_auth", "token_revoked"]
)
async def test_permanent_errors_are_marked(make: Make, error: str) -> None:
    world = await make("http")
    world.fake.fail("chat.postMessage", error=error)
    await world.services.say(OutgoingMessage("slack", "C0GONE", "hello"))
    assert await world.deliver() == 0
    (row,) = world.outbox()
    assert row["status"] == "blocked"
    assert error in row["last_error"] and "C0GONE" in row["last_error"]
    assert row["last_error"].endswith(f"({sb.PERMANENT_ERRORS[error]})")


async def test_long_answer_split_and_a_failed_part_not_repeated(make: Make) -> None:
    world = await make("http")
    paragraph = ("Councillors should post regularly & reply kindly. " * 50).strip()
    text = "\n\n".join([paragraph] * 40)  # about 100,000 characters
    world.fake.fail("chat.postMessage", status=500, after=1)
    await world.services.say(OutgoingMessage("slack", f"{GENERAL}:1700000000.000001", text))
    assert await world.deliver() == 0
    assert world.outbox()[0]["status"] == "pending"
    world.clock.advance(seconds=2)
    assert await world.deliver() == 1
    assert len(world.fake.to("chat.postMessage")) == 5, "part 1, part 2 failing, then parts 2 to 4: none repeated"
    sent = world.fake.posts()
    assert len(sent) == 4
    for post in sent:
        assert post["thread_ts"] == "1700000000.000001"
        assert len(post["text"]) <= 40_000
        assert all(len(b["text"]["text"]) <= 3000 for b in post["blocks"])
        assert len(post["blocks"]) <= 50
    joined = " ".join(b["text"]["text"] for p in sent for b in p["blocks"])
    assert " ".join(joined.split()) == " ".join(sb.escape(text).split())
    assert world.outbox()[0]["platform_message_id"] == sent[0]["ts"]


# -- security and retries --------------------------------------------------------------------


async def test_forged_and_stale_requests_are_refused(make: Make) -> None:
    world = await make("http")
    body = json.dumps(event_body(dm(SOCIAL), "Ev0FORGED")).encode()
    forged = await world.post(body, signature=sign(body, int(time.time()), secret="not-the-secret"))
    stale_time = int(time.time()) - 6 * 60
    stale = await world.post(body, timestamp=stale_time, signature=sign(body, stale_time))
    unsigned = await world.http.post(world.config.slack.events_path, content=body)
    assert (forged.status_code, stale.status_code, unsigned.status_code) == (401, 401, 401)
    await asyncio.sleep(0.1)
    assert world.outbox() == []
    assert world.store.db.execute("select count(*) from inbox").fetchone()[0] == 0

    challenge = json.dumps({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV", "type": "url_verification"}).encode()
    verified = await world.post(challenge)
    assert verified.status_code == 200 and verified.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV"}


async def test_a_slack_retry_is_not_answered_twice(make: Make) -> None:
    world = await make("http")
    event = dm(SOCIAL)
    first = await world.event(event, "Ev0TWICE")
    await eventually(lambda: answers(world))
    retry = await world.event(event, "Ev0TWICE", retry=1)
    assert (first.status_code, retry.status_code) == (200, 200)
    await asyncio.sleep(0.2)
    assert len(answers(world)) == 1
    await world.deliver()
    assert len(posted_answers(world)) == 1
    assert len(world.fake.to("chat.postMessage")) == 2, "the notice and the answer, once each"


async def test_bot_messages_and_edits_are_ignored(make: Make) -> None:
    world = await make("http")
    own = dm("I am the bot", user=BOT_USER) | {"bot_id": "BBOT"}
    edit = dm("edited") | {"subtype": "message_changed"}
    assert (await world.event(own, "Ev0OWN")).status_code == 200
    assert (await world.event(edit, "Ev0EDIT")).status_code == 200
    await asyncio.sleep(0.2)
    assert world.outbox() == []


def test_manifest_grants_what_the_adapter_uses() -> None:
    manifest = (Path(__file__).resolve().parent.parent / "slack-manifest.yml").read_text(encoding="utf-8")
    items = set(re.findall(r"^\s+- ([\w:.]+)\s*$", manifest, re.MULTILINE))
    scopes = {"app_mentions:read", "channels:history", "groups:history", "chat:write", "im:history", "im:write"}
    events = {"app_mention", "message.channels", "message.groups", "message.im"}
    assert scopes | events <= items
    assert re.search(r"^  socket_mode_enabled: true$", manifest, re.MULTILINE)
    assert re.search(r"^  interactivity:\n    is_enabled: true$", manifest, re.MULTILINE)
    assert re.search(r"^    messages_tab_enabled: true$", manifest, re.MULTILINE)


# -- construction -----------------------------------------------------------------------------


def test_modes_need_their_secrets(tmp_path: Path) -> None:
    services = Services(parse(config_data(), "t", tmp_path), None, None, None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN"):
        SlackChannel(services, Secret(BOT_TOKEN), SlackConfig(mode="socket"))
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        SlackChannel(services, Secret(BOT_TOKEN), SlackConfig(mode="http"), app_token=Secret(APP_TOKEN))
    assert SlackChannel(services, Secret(BOT_TOKEN), SlackConfig(), app_token=Secret(APP_TOKEN)).routes() == []


def test_runner_starts_slack_when_its_token_is_set(tmp_path: Path) -> None:
    config = parse(config_data(web={"enabled": False}, slack={"mode": "http"}), "t", tmp_path)
    services = Services(config, None, None, None)  # type: ignore[arg-type]
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    (channel,) = build_channels(services, env)
    assert isinstance(channel, SlackChannel) and channel.platform == "slack"
    assert [r.path for r in channel.routes()] == ["/slack/events"]
    assert build_channels(services, {}) == []


# -- pure converters on recorded payloads ----------------------------------------------------------


def test_escape_and_unslack() -> None:
    assert sb.escape("Fish & chips <b> 3 > 2") == "Fish &amp; chips &lt;b&gt; 3 &gt; 2"
    recorded = (
        "<@U024BE7LH|bob> see <#C024BE7LR|general> and <https://example.org/a?b=1&amp;c=2|the page>, "
        "<mailto:help@example.org> or <https://example.org> &lt;3 <!here>"
    )
    assert sb.unslack(recorded) == (
        "@U024BE7LH see #general and the page, help@example.org or https://example.org <3 @here"
    )


def test_strip_mention() -> None:
    assert sb.strip_mention("<@UBOT> how do I do social media?", "UBOT") == "how do I do social media?"
    assert sb.strip_mention("<@UBOT|councilbot>: hi  there", "UBOT") == "hi there"
    assert sb.strip_mention("ask <@UOTHER>", "UBOT") == "ask <@UOTHER>"
    assert sb.mentions("hey <@UBOT>", "UBOT") and not sb.mentions("hey <@UOTHER>", "UBOT")
    assert not sb.mentions("hey <@UBOT>", None)


def test_split_text_respects_limits_and_entities() -> None:
    assert sb.split_text("short & sweet") == ["short &amp; sweet"]
    assert sb.split_text("") == [""]
    text = "a" * 2000 + "\n\n" + "b" * 2000
    assert sb.split_text(text) == ["a" * 2000, "b" * 2000]
    hard = "&" * 1000  # escapes to 5,000 characters with no space to split at
    pieces = sb.split_text(hard)
    assert all(len(p) <= 3000 for p in pieces)
    assert all(p.count("&") == p.count("&amp;") for p in pieces), "no entity cut in half"
    assert "".join(pieces) == "&amp;" * 1000


def test_message_to_incoming_for_recorded_events() -> None:
    event = {
        "client_msg_id": "9c0d4f3e",
        "type": "message",
        "text": "how do I do social media? &amp; more",
        "user": "UCLLR",
        "ts": "1700100001.000200",
        "team": TEAM,
        "channel": "DCLLR",
        "event_ts": "1700100001.000200",
        "channel_type": "im",
    }
    assert sb.message_to_incoming(event, "Ev1", "UBOT") == IncomingMessage(
        "slack", "UCLLR", "how do I do social media? & more", conversation="DCLLR", event_id="Ev1"
    )
    in_dm_thread = event | {"thread_ts": "1700000000.000001"}
    assert sb.message_to_incoming(in_dm_thread, "Ev2").conversation == "DCLLR:1700000000.000001"
    app_mention = {
        "type": "app_mention",
        "user": "UCLLR",
        "text": "<@UBOT> bins?",
        "ts": "1700100002.000200",
        "channel": "C0GENERAL",
        "event_ts": "1700100002.000200",
    }
    incoming = sb.message_to_incoming(app_mention, "Ev3", "UBOT")
    assert incoming is not None
    assert (incoming.text, incoming.conversation) == ("bins?", "C0GENERAL:1700100002.000200")
    threaded = app_mention | {"thread_ts": "1700000000.000009"}
    assert sb.message_to_incoming(threaded, "Ev4", "UBOT").conversation == "C0GENERAL:1700000000.000009"
    assert sb.message_to_incoming(event | {"bot_id": "B1"}, "Ev5") is None
    assert sb.message_to_incoming(event | {"subtype": "message_deleted"}, "Ev6") is None
    assert sb.message_to_incoming({"type": "message", "channel": "D1", "text": "x"}, "Ev7") is None
    photo = event | {"subtype": "file_share", "text": "", "files": [{"id": "F1", "mimetype": "image/png"}]}
    assert sb.message_to_incoming(photo, "Ev8").text == "", "a file without words: the engine asks for words"


def test_choice_to_incoming_for_a_recorded_action() -> None:
    posted = {"channel": "C0GENERAL", "ts": "1700000005.000100", "thread_ts": "1700000001.000100", "blocks": []}
    action = {
        "action_id": "cb_choice_1",
        "block_id": "cb_choice_0",
        "text": {"type": "plain_text", "text": "Facebook groups"},
        "value": "socialmedia.facebook-groups",
        "type": "button",
    }
    body = pressed("UCLLR", posted, action)
    incoming = sb.choice_to_incoming(body, body["actions"][0])
    assert incoming.choice == "socialmedia.facebook-groups"
    assert (incoming.user, incoming.text) == ("UCLLR", "")
    assert incoming.conversation == "C0GENERAL:1700000001.000100"
    assert incoming.event_id.startswith("action:C0GENERAL:1700000005.000100:")
    assert sb.chosen_blocks([{"type": "section"}, {"type": "actions"}], action)[-1]["elements"][0]["text"] == (
        "You chose: *Facebook groups*"
    )


def test_message_requests_with_options() -> None:
    long_label = "A very long option label " * 5
    message = OutgoingMessage(
        "slack",
        "C0GENERAL:1700000001.000100",
        "Did you mean <this> or that?",
        (Option("a.b", "A & B"), Option("c.d", long_label)),
    )
    (request,) = sb.message_requests(message)
    assert request["channel"] == "C0GENERAL" and request["thread_ts"] == "1700000001.000100"
    assert request["text"] == "Did you mean &lt;this&gt; or that?"
    section, actions = request["blocks"]
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": "Did you mean &lt;this&gt; or that?"}}
    assert [b["value"] for b in actions["elements"]] == ["a.b", "c.d"]
    assert actions["elements"][0]["text"]["text"] == "A & B", "plain_text is not mrkdwn: no escaping"
    assert len(actions["elements"][1]["text"]["text"]) <= 75
    assert "thread_ts" not in sb.message_requests(OutgoingMessage("slack", "D1", "hi"))[0]


ESCALATION = {
    "ref": "CB-ABC234",
    "platform": "telegram",
    "user": "424242",
    "conversation": "424242",
    "topic": "waste",
    "intent": "",
    "question": "Can you take my <sofa> & chair?",
    "urgent": 0,
    "status": "open",
    "created_at": "2024-01-15T10:00:00+00:00",
    "officer": "waste",
    "claimed_by": "",
    "claimed_at": "",
    "due_at": "2024-01-17T10:00:00+00:00",
    "close_note": "",
}
NAMES = {"duty": "Dana Price", "waste": "Wyn Jones"}
PICKER = [("duty", "Dana Price (Customer Services duty officer)"), ("waste", "Wyn Jones (Waste Services officer)")]
NOTICE = (
    "New question CB-ABC234 for Wyn Jones\n"
    "From: a resident on telegram   Topic: waste\n"
    "Question: Can you take my <sofa> & chair?\n"
    "Conversation so far:\n  resident: hello\n  bot: Hello!\n"
    'Reply due by 10am on Wednesday 17 January. Reply with: councilbot escalations reply CB-ABC234 "..."'
)


def test_notification_blocks_for_each_state() -> None:
    blocks = sb.notification_blocks(NOTICE, ESCALATION, NAMES, PICKER)
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "New question CB-ABC234 for Wyn Jones", "emoji": True},
    }
    body = blocks[1]["text"]["text"]
    assert "Question: Can you take my &lt;sofa&gt; &amp; chair?" in body
    assert "resident: hello" in body and "bot: Hello!" in body
    assert body.endswith("Reply due by 10am on Wednesday 17 January.")
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert fields[:5] == [
        "*Reference*\nCB-ABC234",
        "*Resident on*\nTelegram",
        "*Topic*\nwaste",
        "*Reply goes to*\ntelegram `424242`",
        "*With*\nWyn Jones",
    ]
    assert fields[5].startswith("*Reply due*\n<!date^1705485600^")
    assert blocks[3]["elements"][0]["text"] == ":hourglass_flowing_sand: *Waiting*: not claimed yet"
    actions = blocks[4]
    assert actions["block_id"] == sb.ESCALATION_BLOCK
    assert [e["action_id"] for e in actions["elements"]] == [sb.CLAIM, sb.REPLY, sb.CLOSE, sb.REASSIGN, sb.SUGGEST]
    assert {e.get("value") for e in actions["elements"] if e["type"] == "button"} == {"CB-ABC234"}
    picker = actions["elements"][3]
    assert [o["value"] for o in picker["options"]] == ["CB-ABC234:duty"], "not offered to whoever has it"

    claimed = sb.notification_blocks(NOTICE, ESCALATION | {"status": "claimed", "claimed_by": "duty"}, NAMES, PICKER)
    assert claimed[3]["elements"][0]["text"] == ":raising_hand: *Claimed* by Dana Price"
    assert sb.CLAIM not in [e["action_id"] for e in claimed[4]["elements"]]
    answered = ESCALATION | {"status": "answered", "claimed_by": "waste"}
    assert sb.status_line(answered, NAMES) == ":white_check_mark: *Answered* by Wyn Jones"
    closed = ESCALATION | {"status": "closed", "close_note": "Booked <Tue>"}
    closed_blocks = sb.notification_blocks(NOTICE, closed, NAMES, PICKER)
    assert closed_blocks[3]["elements"][0]["text"] == ":lock: *Closed*: Booked &lt;Tue&gt;"
    assert [e["action_id"] for e in closed_blocks[4]["elements"]] == [sb.SUGGEST]
    urgent = sb.notification_blocks(NOTICE, ESCALATION | {"urgent": 1}, NAMES, PICKER)
    assert urgent[2]["fields"][0]["text"] == "*Urgent*\n:rotating_light: safeguarding"


def test_notification_and_update_requests() -> None:
    message = OutgoingMessage("slack", "C0DESK", NOTICE, purpose="notify", ref="CB-ABC234")
    request = sb.notification_request(message, ESCALATION, NAMES, PICKER)
    assert request["channel"] == "C0DESK" and "thread_ts" not in request
    assert "&lt;sofa&gt;" in request["text"] and len(request["text"]) <= 3000
    update = sb.update_request("DWYN", "1700000001.000100", NOTICE, ESCALATION, NAMES, PICKER)
    assert (update["channel"], update["ts"]) == ("DWYN", "1700000001.000100")
    assert update["blocks"] == request["blocks"]
    huge = sb.notification_blocks("Header\n" + "x " * 40_000, ESCALATION, NAMES, PICKER)
    assert len(huge) <= 50 and all(len(b.get("text", {}).get("text", "")) <= 3000 for b in huge)


def test_desk_actions_and_modals() -> None:
    claim = {"action_id": sb.CLAIM, "value": "CB-ABC234", "type": "button"}
    assert sb.desk_action({}, claim) == (sb.CLAIM, "CB-ABC234", "")
    select = {"action_id": sb.REASSIGN, "type": "static_select", "selected_option": {"value": "CB-ABC234:duty"}}
    assert sb.desk_action({}, select) == (sb.REASSIGN, "CB-ABC234", "duty")

    reply = sb.reply_modal("CB-ABC234", "Can you take my <sofa>?", "DWYN", "1700000001.000100")
    assert reply["callback_id"] == sb.REPLY_VIEW
    assert len(reply["title"]["text"]) <= 24
    assert "&lt;sofa&gt;" in reply["blocks"][0]["text"]["text"]
    assert sb.read_metadata(reply) == ("CB-ABC234", "DWYN", "1700000001.000100")
    view = reply | {
        "state": {
            "values": {
                "reply": {"text": {"type": "plain_text_input", "value": "  Yes, on Tuesday.  "}},
                "kb": {"add": {"type": "checkboxes", "selected_options": [{"value": "yes"}]}},
            }
        }
    }
    assert sb.submitted(view, "reply") == "Yes, on Tuesday."
    assert sb.ticked(view, "kb", "add") and not sb.ticked(reply, "kb", "add")
    assert sb.submitted(reply, "reply") == ""
    assert sb.read_metadata({"private_metadata": "not json"}) == ("", "", None)

    urgent = sb.close_modal("CB-ABC234", True, "C0DESK")
    assert urgent["blocks"][0]["optional"] is False and "safeguarding" in urgent["blocks"][0]["label"]["text"]
    assert sb.close_modal("CB-ABC234", False, "C0DESK")["blocks"][0]["optional"] is True


def test_delivery_errors() -> None:
    limited = sb.delivery_error("ratelimited", 429, {"retry-after": "12"}, "C1")
    assert (limited.retry_after, limited.permanent) == (12.0, False)
    assert sb.delivery_error("", 429, {"Retry-After": "bogus"}, "C1").retry_after == 30.0
    gone = sb.delivery_error("not_in_channel", 200, {}, "C1")
    assert gone.permanent and "invite it" in str(gone) and "C1" in str(gone)
    flaky = sb.delivery_error("internal_error", 500, None, "C1")
    assert not flaky.permanent and flaky.retry_after is None and "internal_error" in str(flaky)
