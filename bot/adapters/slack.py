"""Slack: councillors and staff ask the bot; officers handle escalations.

A thin runner over slack-bolt's ``AsyncApp``. People ask in a direct
message or by mentioning the bot in a channel (answered in a thread).
Officers get escalations as Block Kit messages with Claim, Reply, Close,
Reassign and Add-to-knowledge-base controls; a reply written in a
notification's thread is relayed to the resident. Desk actions run through
``Services.act``; the message is updated as the escalation changes.

Events arrive over Socket Mode (``[slack] mode = "socket"``, needs
SLACK_APP_TOKEN) or the HTTP Events API (``mode = "http"``, served at
``events_path`` on councilbot's web server; bolt checks the signature and
refuses requests older than five minutes). Every listener acknowledges
first and works after; a Slack retry carries the same event id, which the
engine's inbox (and the relay below) recognise, so nothing is answered
twice. Outgoing messages come from the outbox through ``send``. The
payload-to-value conversions live in ``bot.adapters.slack_blocks``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.adapters.slack_blocks import (
    CHOICE,
    CLAIM,
    CLOSE,
    CLOSE_VIEW,
    DESK_ACTIONS,
    NOT_AN_OFFICER,
    PLATFORM,
    REASSIGN,
    REPLY,
    REPLY_VIEW,
    SUGGEST,
    choice_to_incoming,
    chosen_blocks,
    close_modal,
    delivery_error,
    desk_action,
    escape,
    is_person_message,
    is_user,
    mentions,
    message_requests,
    message_to_incoming,
    notification_request,
    parse_conversation,
    read_metadata,
    reply_modal,
    strip_mention,
    submitted,
    thread_of,
    ticked,
    unslack,
    update_request,
    where_pressed,
)
from bot.channels import Services
from bot.config import ConfigError, OfficerConfig, SlackConfig
from bot.escalations import DeskError
from bot.messages import IncomingMessage, OutgoingMessage
from bot.outbox import DeliveryError, messages_for, ref_for_message
from bot.secret import Secret

log = logging.getLogger("councilbot.slack")

CONNECT_WAIT = 10.0
"""Seconds ``start`` waits for Socket Mode to connect before leaving it to keep trying in the background."""
API_TIMEOUT = 15
MAX_PARTIAL = 500
NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


class SlackChannel:
    """Slack for councilbot: one ``AsyncApp``, Socket Mode or HTTP events, and the outbox's sender."""

    platform = PLATFORM

    def __init__(
        self,
        services: Services,
        bot_token: Secret,
        config: SlackConfig,
        app_token: Secret | None = None,
        signing_secret: Secret | None = None,
    ) -> None:
        if config.mode == "socket" and not app_token:
            raise ConfigError(
                "Slack Socket Mode needs SLACK_APP_TOKEN (an app-level token starting xapp-, with the "
                'connections:write scope), or set [slack] mode = "http" with SLACK_SIGNING_SECRET'
            )
        if config.mode == "http" and not signing_secret:
            raise ConfigError("Slack's HTTP Events API mode needs SLACK_SIGNING_SECRET (Basic Information in the app)")
        self.services = services
        self.config = config
        self.app_token = app_token
        self.client = AsyncWebClient(token=bot_token.reveal(), base_url=config.api_base_url, timeout=API_TIMEOUT)
        self.app = AsyncApp(
            client=self.client,
            signing_secret=signing_secret.reveal() if signing_secret else "",
            request_verification_enabled=config.mode == "http",
            name="councilbot",
        )
        self.app.event("message")(self._on_message)
        self.app.event("app_mention")(self._on_mention)
        self.app.action(re.compile(f"^{CHOICE}_"))(self._on_choice)
        for action_id in DESK_ACTIONS:
            self.app.action(action_id)(self._on_desk_action)
        self.app.view(REPLY_VIEW)(self._on_reply_view)
        self.app.view(CLOSE_VIEW)(self._on_close_view)
        self._requests = AsyncSlackRequestHandler(self.app)
        self.handler: AsyncSocketModeHandler | None = None
        self._connecting: asyncio.Task | None = None
        self._dms: dict[str, str] = {}
        """User id -> the id of the bot's DM with them (chat.update needs the DM's id)."""
        self._partial: dict[tuple[str, str, str, str], list[str]] = {}
        """Messages split in several parts: the ts of the parts already posted, so a retry does not repeat them."""

    # -- the Channel protocol ---------------------------------------------------------

    async def start(self) -> None:
        """Connect Socket Mode (or check the token, in HTTP mode)."""
        if self.config.mode == "socket":
            assert self.app_token is not None
            self.handler = AsyncSocketModeHandler(self.app, self.app_token.reveal())
            self._connecting = asyncio.create_task(self.handler.connect_async())
            done, _ = await asyncio.wait({self._connecting}, timeout=CONNECT_WAIT)
            if not done:
                log.warning("Slack Socket Mode is not connected yet; it keeps trying in the background")
            elif self._connecting.exception() is not None:
                log.error("Slack Socket Mode could not connect: %s", self._connecting.exception())
            else:
                log.info("Slack Socket Mode connected")
            return
        try:
            who = await self.client.auth_test()
            log.info("Slack: receiving events at %s as @%s", self.config.events_path, who.get("user"))
        except SlackApiError as error:
            log.error("Slack rejected the bot token: %s", error.response.get("error"))
        except NETWORK_ERRORS as error:
            log.warning("Slack could not be reached to check the bot token: %s", error)

    async def stop(self) -> None:
        """Disconnect Socket Mode; HTTP events stop with the web server."""
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self.handler is not None:
            await self.handler.close_async()
            self.handler = None

    def routes(self) -> list:
        """The Events API endpoint (HTTP mode only)."""
        if self.config.mode != "http":
            return []
        return [Route(self.config.events_path, self._endpoint, methods=["POST"])]

    async def send(self, message: OutgoingMessage) -> str | None:
        """Post one outbox message; return its ts (the first part's, if it was split)."""
        requests = self._build(message)
        key = (message.conversation, message.purpose, message.ref, message.text)
        posted = self._partial.setdefault(key, [])
        for request in requests[len(posted) :]:
            response = await self._call(self.client.chat_postMessage, message.conversation, **request)
            posted.append(str(response["ts"]))
            if is_user(request["channel"]) and response.get("channel"):
                self._dms[request["channel"]] = str(response["channel"])
        del self._partial[key]
        while len(self._partial) > MAX_PARTIAL:
            self._partial.pop(next(iter(self._partial)))
        await self._mirror(message)
        return posted[0] if posted else None

    # -- sending ----------------------------------------------------------------------

    def _names(self) -> dict[str, str]:
        return {o.id: o.name for o in self.services.router.officers.values()}

    def _picker(self) -> list[tuple[str, str]]:
        return [(o.id, f"{o.name} ({o.role})" if o.role else o.name) for o in self.services.router.officers.values()]

    def _build(self, message: OutgoingMessage) -> list[dict]:
        if message.purpose == "notify" and message.ref:
            escalation = self.services.desk.find(message.ref)
            if escalation is not None:
                return [notification_request(message, escalation, self._names(), self._picker())]
        return message_requests(message)

    async def _call(self, method: Callable, conversation: str, **kwargs: Any) -> Any:
        """One Web API call, its failure turned into a ``DeliveryError``."""
        try:
            return await method(**kwargs)
        except SlackApiError as error:
            response = error.response
            data = response.data if isinstance(response.data, dict) else {}
            raise delivery_error(
                str(data.get("error", "")), response.status_code, response.headers, conversation
            ) from error
        except NETWORK_ERRORS as error:
            raise DeliveryError(f"Slack could not be reached: {type(error).__name__} {error}") from error

    async def _mirror(self, message: OutgoingMessage) -> None:
        """Copy an officer's notification to ``[slack] escalation_channel`` (through the outbox)."""
        channel = self.config.escalation_channel
        if not channel or message.purpose != "notify" or not message.ref:
            return
        if parse_conversation(message.conversation)[0] == channel:
            return
        try:
            await self.services.say(OutgoingMessage(PLATFORM, channel, message.text, ref=message.ref), "notify")
        except Exception:  # the notification itself went; do not send it twice
            log.exception("could not queue the copy of %s for %s", message.ref, channel)

    async def _dm_of(self, channel: str) -> str:
        """The conversation id to update a message in (a user id becomes the bot's DM with them)."""
        if not is_user(channel):
            return channel
        if channel not in self._dms:
            try:
                response = await self.client.conversations_open(users=channel)
                self._dms[channel] = response["channel"]["id"]
            except (SlackApiError, *NETWORK_ERRORS) as error:
                log.warning("could not open the DM with %s: %s", channel, error)
                return channel
        return self._dms[channel]

    async def _refresh(self, ref: str) -> None:
        """Bring every Slack notification about ``ref`` up to date (claimed, answered, closed)."""
        escalation = self.services.desk.find(ref)
        if escalation is None:
            return
        names, picker = self._names(), self._picker()
        for row in messages_for(self.services.engine.store, escalation["ref"], PLATFORM):
            channel = await self._dm_of(parse_conversation(row["conversation"])[0])
            request = update_request(channel, row["platform_message_id"], row["text"], escalation, names, picker)
            try:
                await self.client.chat_update(**request)
            except (SlackApiError, *NETWORK_ERRORS) as error:
                log.warning("could not update the Slack notification of %s: %s", ref, error)

    async def _tell(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        """A message only ``user`` sees, where they pressed or wrote."""
        kwargs: dict = {"channel": channel or user, "user": user, "text": escape(text)}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        try:
            await self.client.chat_postEphemeral(**kwargs)
        except (SlackApiError, *NETWORK_ERRORS) as error:
            log.warning("could not show %s a message: %s", user, error)

    # -- receiving --------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        if request.headers.get("x-slack-retry-num"):
            log.info(
                "Slack retry %s (%s)", request.headers["x-slack-retry-num"], request.headers.get("x-slack-retry-reason")
            )
        return await self._requests.handle(request)

    def _officer(self, user: str) -> OfficerConfig | None:
        return self.services.router.by_identity(PLATFORM, user)

    def _notification_ref(self, channel: str, thread_ts: str, user: str) -> str | None:
        """The escalation whose notification starts this thread, if it is one."""
        store = self.services.engine.store
        ref = ref_for_message(store, PLATFORM, channel, thread_ts)
        if ref is None and channel.startswith("D"):
            ref = ref_for_message(store, PLATFORM, user, thread_ts)  # notifications addressed to the user id
        return ref

    def _bot_thread(self, channel: str, thread_ts: str) -> bool:
        """Whether the bot has been talking in this thread (a follow-up needs no mention there)."""
        rows = self.services.engine.store.db.execute(
            "select 1 from outbox where platform = ? and conversation = ? limit 1",
            [PLATFORM, f"{channel}:{thread_ts}"],
        ).fetchall()
        return bool(rows)

    async def _receive(self, incoming: IncomingMessage | None) -> None:
        if incoming is not None:
            await self.services.receive(incoming)

    async def _on_message(self, body: dict, event: dict, context: dict) -> None:
        """A message: in a DM, a question; in a notification's thread, an officer's reply."""
        if not is_person_message(event):
            return
        event_id = body.get("event_id", "")
        bot = context.get("bot_user_id")
        thread = thread_of(event)
        if thread:
            ref = self._notification_ref(event["channel"], thread, event["user"])
            if ref is not None:
                await self._relay(event_id, event, thread, ref, bot)
                return
        if event.get("channel_type") == "im":
            await self._receive(message_to_incoming(event, event_id, bot))
        elif thread and not mentions(event.get("text") or "", bot) and self._bot_thread(event["channel"], thread):
            await self._receive(message_to_incoming(event, event_id, bot))

    async def _on_mention(self, body: dict, event: dict, context: dict) -> None:
        """A mention in a channel: a question, answered in a thread."""
        if not is_person_message(event):
            return
        thread = thread_of(event)
        if thread and self._notification_ref(event["channel"], thread, event["user"]) is not None:
            return  # a reply to a notification: the message event relays it
        await self._receive(message_to_incoming(event, body.get("event_id", ""), context.get("bot_user_id")))

    async def _relay(self, event_id: str, event: dict, thread: str, ref: str, bot: str | None) -> None:
        """An officer's reply in a notification's thread, sent to the resident (once, however often Slack retries)."""
        channel, user = event["channel"], event["user"]
        officer = self._officer(user)
        if officer is None:
            await self._tell(channel, user, "Only configured officers' replies are sent to the resident.", thread)
            return
        text = unslack(strip_mention(event.get("text") or "", bot))
        store, desk = self.services.engine.store, self.services.desk

        def relay() -> dict | None:
            with store.transaction():
                if store.seen(PLATFORM, event_id):
                    return None
                return desk.reply(ref, officer.id, text)

        try:
            done = await self.services.act(relay)
        except DeskError as error:
            await self._tell(channel, user, str(error), thread)
            return
        if done is not None:
            await self._refresh(ref)
            await self._tell(channel, user, f"Sent to the resident ({ref}).", thread)

    async def _on_choice(self, ack: Callable, body: dict, action: dict) -> None:
        """A clarification button: the option id goes to the engine as a choice."""
        await ack()
        await self._receive(choice_to_incoming(body, action))
        channel, ts, _ = where_pressed(body)
        message = body.get("message") or {}
        if message.get("blocks") and ts:
            try:
                await self.client.chat_update(
                    channel=channel,
                    ts=ts,
                    text=message.get("text") or " ",
                    blocks=chosen_blocks(message["blocks"], action),
                )
            except (SlackApiError, *NETWORK_ERRORS) as error:
                log.warning("could not mark the choice on %s: %s", ts, error)

    async def _act(
        self, ref: str, action: Callable[[], object], channel: str, user: str, thread: str | None, done: str = ""
    ) -> bool:
        """Run a desk action; show a DeskError to the officer; update the notifications."""
        try:
            await self.services.act(action)
        except DeskError as error:
            await self._tell(channel, user, str(error), thread)
            return False
        await self._refresh(ref)
        if done:
            await self._tell(channel, user, done, thread)
        return True

    async def _on_desk_action(self, ack: Callable, body: dict, action: dict) -> None:
        """Claim, Reply, Close, Reassign or Add to knowledge base, pressed on a notification."""
        await ack()
        user = body["user"]["id"]
        channel, _, thread = where_pressed(body)
        action_id, ref, to = desk_action(body, action)
        officer = self._officer(user)
        if officer is None:
            await self._tell(channel, user, NOT_AN_OFFICER, thread)
            return
        desk = self.services.desk
        if action_id == CLAIM:
            await self._act(ref, lambda: desk.claim(ref, officer.id), channel, user, thread)
        elif action_id == REASSIGN:
            target = self.services.router.get(to)
            name = target.name if target else to
            await self._act(
                ref, lambda: desk.reassign(ref, officer.id, to), channel, user, thread, f"{ref} is now with {name}."
            )
        elif action_id == SUGGEST:
            await self._act(
                ref,
                lambda: desk.suggest(ref, officer.id),
                channel,
                user,
                thread,
                f"The last reply to {ref} is suggested for the knowledge base; it will be reviewed before use.",
            )
        elif action_id in (REPLY, CLOSE):
            try:
                escalation = await self.services.act(lambda: desk.show(ref, officer.id))
            except DeskError as error:
                await self._tell(channel, user, str(error), thread)
                return
            if action_id == REPLY:
                view = reply_modal(escalation["ref"], escalation["question"], channel, thread)
            else:
                view = close_modal(escalation["ref"], bool(escalation["urgent"]), channel, thread)
            try:
                await self.client.views_open(trigger_id=body["trigger_id"], view=view)
            except (SlackApiError, *NETWORK_ERRORS) as error:
                log.warning("could not open the %s form: %s", action_id, error)
                await self._tell(channel, user, "Slack would not open the form; please press the button again.", thread)

    async def _form_officer(self, body: dict, view: dict) -> tuple | None:
        """For a submitted form: (officer, ref, channel, user, thread), or None after refusing a non-officer."""
        ref, channel, thread = read_metadata(view)
        user = body["user"]["id"]
        officer = self._officer(user)
        if officer is None:
            await self._tell(channel, user, NOT_AN_OFFICER, thread)
            return None
        return officer, ref, channel, user, thread

    async def _on_reply_view(self, ack: Callable, body: dict, view: dict) -> None:
        """The Reply form submitted: the answer goes to the resident."""
        text = submitted(view, "reply")
        if not text:
            await ack(response_action="errors", errors={"reply": "Write what the resident should read."})
            return
        await ack()
        form = await self._form_officer(body, view)
        if form is None:
            return
        officer, ref, channel, user, thread = form
        add = ticked(view, "kb", "add")
        await self._act(
            ref,
            lambda: self.services.desk.reply(ref, officer.id, text, add_to_kb=add),
            channel,
            user,
            thread,
            f"Sent to the resident ({ref}).",
        )

    async def _on_close_view(self, ack: Callable, body: dict, view: dict) -> None:
        """The Close form submitted: the escalation is closed with its note."""
        await ack()
        form = await self._form_officer(body, view)
        if form is None:
            return
        officer, ref, channel, user, thread = form
        note = submitted(view, "note")
        await self._act(
            ref, lambda: self.services.desk.close(ref, officer.id, note), channel, user, thread, f"{ref} is closed."
        )
