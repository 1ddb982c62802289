"""Pure converters between Slack payloads and councilbot's messages.

Payload in, value out: no I/O, no SDK. ``bot.adapters.slack`` feeds these
the events, actions and view submissions Slack sends and passes what they
return to the Web API. Everything user- or content-derived is escaped for
Slack's mrkdwn (``&``, ``<``, ``>``) before it goes into a block.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from html import unescape

from bot.messages import IncomingMessage, Option, OutgoingMessage
from bot.outbox import DeliveryError

PLATFORM = "slack"

SECTION_LIMIT = 3000
"""Characters in one section block's text."""
SECTIONS_PER_MESSAGE = 12
"""Section blocks per Slack message: 12 x 3,000 stays under the ~40,000 characters a message may hold."""
HEADER_LIMIT = 150
BUTTON_LIMIT = 75
BUTTONS_PER_BLOCK = 25
NOTIFICATION_SECTIONS = 6
MODAL_TITLE_LIMIT = 24

CHOICE = "cb_choice"
"""action_id prefix of the buttons offered with a clarification (value = option id)."""
CLAIM = "cb_claim"
REPLY = "cb_reply"
CLOSE = "cb_close"
REASSIGN = "cb_reassign"
SUGGEST = "cb_suggest"
DESK_ACTIONS = (CLAIM, REPLY, CLOSE, REASSIGN, SUGGEST)
REPLY_VIEW = "cb_reply_view"
CLOSE_VIEW = "cb_close_view"
ESCALATION_BLOCK = "cb_escalation"

NOT_AN_OFFICER = (
    "Sorry, only the officers configured for councilbot can act on escalations. "
    "If you should be one, ask whoever runs councilbot to add your Slack user id to the officers list."
)

PLATFORM_NAMES = {"web": "the web chat", "telegram": "Telegram", "slack": "Slack", "cli": "the terminal"}

PERMANENT_ERRORS = {
    "channel_not_found": "the channel or user does not exist, or the bot cannot see it",
    "is_archived": "the channel is archived",
    "not_in_channel": "the bot is not a member of the channel; invite it with /invite @councilbot",
    "account_inactive": "the bot's account or the recipient's account is deactivated",
    "invalid_auth": "the bot token is not valid; check SLACK_BOT_TOKEN",
    "token_revoked": "the bot token was revoked; reinstall the app and update SLACK_BOT_TOKEN",
    "not_authed": "no bot token was sent; check SLACK_BOT_TOKEN",
    "user_not_found": "no such Slack user",
    "user_disabled": "the Slack user is deactivated",
    "cannot_dm_bot": "that user is a bot and cannot be messaged",
    "missing_scope": "the app lacks a permission; reinstall it from slack-manifest.yml",
    "restricted_action": "the workspace does not allow the bot to post there",
    "team_access_not_granted": "the bot is not allowed in that workspace",
}
"""Slack error codes after which retrying the same message cannot help."""

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#[CG][A-Z0-9]+\|([^>]*)>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_CLI_HINT = re.compile(r"\s*Reply with: councilbot escalations reply \S+ \"\.\.\.\"")


# -- text ---------------------------------------------------------------------------------


def escape(text: str) -> str:
    """``text`` made safe for Slack's mrkdwn: ``&``, ``<`` and ``>`` as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unslack(text: str) -> str:
    """Slack's markup in a message read back as plain text (mentions, channels, links, entities)."""
    text = _MENTION.sub(lambda m: f"@{m.group(1)}", text)
    text = _CHANNEL.sub(lambda m: f"#{m.group(1)}", text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1).removeprefix("mailto:"), text)
    text = _SPECIAL.sub(lambda m: f"@{m.group(1)}", text)
    return unescape(text)


def strip_mention(text: str, bot_user_id: str | None) -> str:
    """The text of a mention without the bot's own ``<@BOTID>`` (and the punctuation after it)."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>[\s,:;-]*", " ", text)
    return " ".join(text.split())


def mentions(text: str, bot_user_id: str | None) -> bool:
    """Whether ``text`` mentions the bot."""
    return bool(bot_user_id) and any(m.group(1) == bot_user_id for m in _MENTION.finditer(text))


def _cut(text: str, limit: int) -> int:
    """Where to end a piece of at most ``limit`` characters: a paragraph, a line, a space, else hard."""
    for mark in ("\n\n", "\n", " "):
        at = text.rfind(mark, 0, limit + 1)
        if at > limit // 2:
            return at
    at = limit
    amp = text.rfind("&", max(0, at - 5), at)
    if amp != -1 and ";" not in text[amp:at]:
        at = amp  # never split an entity such as &amp;
    return at


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Escaped ``text`` in pieces of at most ``limit`` characters, split where it reads best."""
    rest = escape(text).strip()
    pieces: list[str] = []
    while len(rest) > limit:
        at = _cut(rest, limit) or limit
        pieces.append(rest[:at].rstrip())
        rest = rest[at:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def fallback(text: str) -> str:
    """The plain ``text`` of a Block Kit message (notifications, screen readers): escaped, shortened."""
    return _plain(escape(_CLI_HINT.sub("", text)), SECTION_LIMIT)


def _plain(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- conversations ------------------------------------------------------------------------


def conversation_of(channel: str, thread_ts: str | None = None) -> str:
    """councilbot's conversation for a Slack channel, or one thread in it (``C123:1700000000.000100``)."""
    return f"{channel}:{thread_ts}" if thread_ts else channel


def parse_conversation(conversation: str) -> tuple[str, str | None]:
    """(channel, thread_ts or None) from a conversation made by ``conversation_of``."""
    channel, _, thread_ts = conversation.partition(":")
    return channel, thread_ts or None


def is_user(channel: str) -> bool:
    """Whether a Slack id names a user (a message to it goes to the bot's DM with them)."""
    return channel.startswith(("U", "W"))


# -- events in ----------------------------------------------------------------------------


PERSON_SUBTYPES = ("", "file_share", "thread_broadcast")
"""Message subtypes a person writes (a file with or without a caption; a thread reply also sent to the channel)."""


def is_person_message(event: Mapping) -> bool:
    """A message a person wrote (not a bot, not an edit, deletion or join).

    A file without words is still a message: the engine asks for words.
    """
    return (
        event.get("type") in ("message", "app_mention")
        and (event.get("subtype") or "") in PERSON_SUBTYPES
        and not event.get("bot_id")
        and bool(event.get("user"))
        and bool(event.get("channel"))
    )


def thread_of(event: Mapping) -> str | None:
    """The thread a message was written in (None for a message at the top of a channel)."""
    thread_ts = event.get("thread_ts")
    return thread_ts if thread_ts and thread_ts != event.get("ts") else None


def message_to_incoming(event: Mapping, event_id: str, bot_user_id: str | None = None) -> IncomingMessage | None:
    """A direct message, a mention or a message in the bot's thread as an ``IncomingMessage``.

    A mention in a channel is answered in a thread (the thread it was written
    in, else a new one under it); a direct message is answered in the DM.
    """
    if not is_person_message(event):
        return None
    channel = event["channel"]
    if event.get("channel_type") == "im":
        thread_ts = thread_of(event)
    else:
        thread_ts = event.get("thread_ts") or event.get("ts")
    text = unslack(strip_mention(event.get("text") or "", bot_user_id))
    return IncomingMessage(
        PLATFORM,
        event["user"],
        text,
        conversation=conversation_of(channel, thread_ts),
        event_id=event_id,
        shared=event.get("channel_type") != "im",
    )


def choice_to_incoming(body: Mapping, action: Mapping) -> IncomingMessage:
    """A pressed clarification button as an ``IncomingMessage`` carrying the option id."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
    thread_ts = message.get("thread_ts") or container.get("thread_ts")
    message_ts = container.get("message_ts") or message.get("ts", "")
    return IncomingMessage(
        PLATFORM,
        body["user"]["id"],
        "",
        conversation=conversation_of(channel, thread_ts),
        event_id=f"action:{channel}:{message_ts}:{action.get('action_ts', '')}",
        choice=action.get("value", ""),
        shared=not str(channel).startswith("D"),
    )


def chosen_blocks(blocks: Iterable[Mapping], action: Mapping) -> list[dict]:
    """A clarification's blocks once answered: the buttons replaced by what was chosen."""
    label = (action.get("text") or {}).get("text", "")
    kept = [dict(b) for b in blocks if b.get("type") != "actions"]
    kept.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"You chose: *{escape(label)}*"}]})
    return kept


# -- messages out -------------------------------------------------------------------------


def choice_blocks(options: Iterable[Option]) -> list[dict]:
    """Buttons for the options of a clarification (action value = option id)."""
    buttons = [
        {
            "type": "button",
            "action_id": f"{CHOICE}_{n}",
            "text": {"type": "plain_text", "text": _plain(o.label, BUTTON_LIMIT), "emoji": True},
            "value": o.id,
        }
        for n, o in enumerate(options)
    ]
    return [
        {"type": "actions", "block_id": f"{CHOICE}_{n}", "elements": buttons[n : n + BUTTONS_PER_BLOCK]}
        for n in range(0, len(buttons), BUTTONS_PER_BLOCK)
    ]


def message_requests(message: OutgoingMessage) -> list[dict]:
    """chat.postMessage arguments for ``message``: one per Slack message, long text split to Slack's limits.

    Each section holds at most 3,000 characters and each message at most
    ``SECTIONS_PER_MESSAGE`` sections; the option buttons go on the last.
    """
    channel, thread_ts = parse_conversation(message.conversation)
    pieces = split_text(message.text)
    groups = [pieces[n : n + SECTIONS_PER_MESSAGE] for n in range(0, len(pieces), SECTIONS_PER_MESSAGE)]
    requests = []
    for n, group in enumerate(groups):
        blocks: list[dict] = [{"type": "section", "text": {"type": "mrkdwn", "text": p}} for p in group if p]
        if n == len(groups) - 1 and message.options:
            blocks.extend(choice_blocks(message.options))
        request: dict = {
            "channel": channel,
            "text": "\n\n".join(group) or " ",
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts:
            request["thread_ts"] = thread_ts
        requests.append(request)
    return requests


# -- escalations --------------------------------------------------------------------------


def _date(iso: str) -> str:
    """A time Slack shows in each reader's own time zone, with a plain fallback."""
    try:
        moment = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return escape(iso or "")
    fallback = moment.strftime("%d %b %Y %H:%M %Z").strip()
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def status_line(escalation: Mapping, names: Mapping[str, str]) -> str:
    """Where an escalation stands, at a glance (mrkdwn)."""
    holder = escape(names.get(escalation.get("claimed_by") or "", escalation.get("claimed_by") or ""))
    status = escalation.get("status")
    if status == "closed":
        note = escalation.get("close_note") or ""
        return ":lock: *Closed*" + (f": {escape(_plain(note, 300))}" if note else "")
    if status == "answered":
        return f":white_check_mark: *Answered* by {holder}"
    if escalation.get("claimed_by"):
        return f":raising_hand: *Claimed* by {holder}"
    return ":hourglass_flowing_sand: *Waiting*: not claimed yet"


def notification_blocks(
    text: str, escalation: Mapping, names: Mapping[str, str], officers: Iterable[tuple[str, str]]
) -> list[dict]:
    """Block Kit for an officer's notification about ``escalation``, showing its current state.

    ``text`` is the notification as the desk wrote it (the question and the
    conversation so far); ``names`` maps officer ids to names; ``officers``
    are (id, label) pairs offered by the Reassign picker.
    """
    ref = escalation["ref"]
    lines = text.strip().splitlines() or [ref]
    body = _CLI_HINT.sub("", "\n".join(lines[1:])).strip()
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": _plain(lines[0], HEADER_LIMIT), "emoji": True}}
    ]
    pieces = split_text(body) if body else []
    if len(pieces) > NOTIFICATION_SECTIONS:
        pieces = [*pieces[: NOTIFICATION_SECTIONS - 1], "…(shortened; see the full history with the CLI)"]
    blocks.extend({"type": "section", "text": {"type": "mrkdwn", "text": p}} for p in pieces)
    platform = escalation.get("platform", "")
    where = PLATFORM_NAMES.get(platform, platform)
    fields = [
        f"*Reference*\n{escape(ref)}",
        f"*Resident on*\n{escape(where)}",
        f"*Topic*\n{escape(escalation.get('topic') or 'general')}",
        f"*Reply goes to*\n{escape(platform)} `{escape(escalation.get('conversation') or '')}`",
        f"*With*\n{escape(names.get(escalation.get('officer') or '', escalation.get('officer') or ''))}",
        f"*Reply due*\n{_date(escalation.get('due_at') or '')}",
    ]
    if escalation.get("urgent"):
        fields.insert(0, "*Urgent*\n:rotating_light: safeguarding")
    blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": status_line(escalation, names)}]})
    blocks.append({"type": "actions", "block_id": ESCALATION_BLOCK, "elements": desk_buttons(escalation, officers)})
    return blocks


def _button(action_id: str, label: str, value: str, style: str = "") -> dict:
    button = {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": label}, "value": value}
    if style:
        button["style"] = style
    return button


def desk_buttons(escalation: Mapping, officers: Iterable[tuple[str, str]]) -> list[dict]:
    """The buttons an escalation's state allows: Claim, Reply, Close, Reassign, Add to knowledge base."""
    ref = escalation["ref"]
    status = escalation.get("status")
    elements = []
    if status != "closed":
        if not escalation.get("claimed_by"):
            elements.append(_button(CLAIM, "Claim", ref, "primary"))
        elements.append(_button(REPLY, "Reply", ref))
        elements.append(_button(CLOSE, "Close", ref, "danger"))
        choices = [
            {"text": {"type": "plain_text", "text": _plain(label, BUTTON_LIMIT)}, "value": f"{ref}:{officer_id}"}
            for officer_id, label in officers
            if officer_id != escalation.get("officer")
        ][:100]
        if choices:
            elements.append(
                {
                    "type": "static_select",
                    "action_id": REASSIGN,
                    "placeholder": {"type": "plain_text", "text": "Reassign to…"},
                    "options": choices,
                }
            )
    elements.append(_button(SUGGEST, "Add to knowledge base", ref))
    return elements


def notification_request(
    message: OutgoingMessage, escalation: Mapping, names: Mapping[str, str], officers: Iterable[tuple[str, str]]
) -> dict:
    """chat.postMessage arguments for an officer's notification (``message.purpose == 'notify'``)."""
    channel, thread_ts = parse_conversation(message.conversation)
    request = {
        "channel": channel,
        "text": fallback(message.text),
        "blocks": notification_blocks(message.text, escalation, names, officers),
        "unfurl_links": False,
        "unfurl_media": False,
    }
    if thread_ts:
        request["thread_ts"] = thread_ts
    return request


def update_request(
    channel: str, ts: str, text: str, escalation: Mapping, names: Mapping[str, str], officers: Iterable[tuple[str, str]]
) -> dict:
    """chat.update arguments bringing a sent notification up to date with its escalation."""
    return {
        "channel": channel,
        "ts": ts,
        "text": fallback(text),
        "blocks": notification_blocks(text, escalation, names, officers),
    }


def desk_action(body: Mapping, action: Mapping) -> tuple[str, str, str]:
    """(action_id, ref, chosen officer id or '') of a pressed escalation button or picker."""
    action_id = action.get("action_id", "")
    if action_id == REASSIGN:
        value = (action.get("selected_option") or {}).get("value", "")
        ref, _, to = value.partition(":")
        return action_id, ref, to
    return action_id, action.get("value", ""), ""


def where_pressed(body: Mapping) -> tuple[str, str, str | None]:
    """(channel, message ts, thread ts) of the message whose button was pressed."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
    return channel, container.get("message_ts") or message.get("ts", ""), message.get("thread_ts")


def _metadata(ref: str, channel: str, thread_ts: str | None) -> str:
    return json.dumps({"ref": ref, "channel": channel, "thread_ts": thread_ts or ""})


def read_metadata(view: Mapping) -> tuple[str, str, str | None]:
    """(ref, channel, thread ts) a modal was opened for."""
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        data = {}
    return data.get("ref", ""), data.get("channel", ""), data.get("thread_ts") or None


def reply_modal(ref: str, question: str, channel: str, thread_ts: str | None = None) -> dict:
    """The modal an officer writes a reply to the resident in."""
    return {
        "type": "modal",
        "callback_id": REPLY_VIEW,
        "private_metadata": _metadata(ref, channel, thread_ts),
        "title": {"type": "plain_text", "text": _plain(f"Reply to {ref}", MODAL_TITLE_LIMIT)},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Question*\n{split_text(question)[0]}"}},
            {
                "type": "input",
                "block_id": "reply",
                "label": {"type": "plain_text", "text": "Your reply to the resident"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "text",
                    "multiline": True,
                    "max_length": SECTION_LIMIT,
                },
            },
            {
                "type": "input",
                "block_id": "kb",
                "optional": True,
                "label": {"type": "plain_text", "text": "Knowledge base"},
                "element": {
                    "type": "checkboxes",
                    "action_id": "add",
                    "options": [
                        {
                            "text": {"type": "plain_text", "text": "Also suggest this answer for the knowledge base"},
                            "value": "yes",
                        }
                    ],
                },
            },
        ],
    }


def close_modal(ref: str, urgent: bool, channel: str, thread_ts: str | None = None) -> dict:
    """The modal an officer closes an escalation from, with an internal note."""
    label = "What was done (required for safeguarding)" if urgent else "Internal note (optional)"
    return {
        "type": "modal",
        "callback_id": CLOSE_VIEW,
        "private_metadata": _metadata(ref, channel, thread_ts),
        "title": {"type": "plain_text", "text": _plain(f"Close {ref}", MODAL_TITLE_LIMIT)},
        "submit": {"type": "plain_text", "text": "Close it"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "note",
                "optional": not urgent,
                "label": {"type": "plain_text", "text": label},
                "element": {"type": "plain_text_input", "action_id": "text", "multiline": True, "max_length": 2000},
            }
        ],
    }


def submitted(view: Mapping, block_id: str, action_id: str = "text") -> str:
    """The text typed into one input of a submitted modal ('' if empty)."""
    values = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    return ((values.get(action_id) or {}).get("value") or "").strip()


def ticked(view: Mapping, block_id: str, action_id: str) -> bool:
    """Whether any checkbox of one input of a submitted modal was ticked."""
    values = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    return bool((values.get(action_id) or {}).get("selected_options"))


# -- errors -------------------------------------------------------------------------------


def delivery_error(
    error: str, status: int | None, headers: Mapping[str, str] | None, conversation: str
) -> DeliveryError:
    """A Slack Web API failure as the outbox's ``DeliveryError`` (retry-after, permanent or transient)."""
    headers = {str(k).lower(): v for k, v in (headers or {}).items()}
    if status == 429 or error == "ratelimited":
        try:
            wait = float(headers.get("retry-after", "30"))
        except ValueError:
            wait = 30.0
        return DeliveryError(f"Slack rate limit: retry after {wait:g} s", retry_after=max(wait, 1.0))
    if error in PERMANENT_ERRORS:
        return DeliveryError(
            f"Slack refused the message to {conversation}: {error} ({PERMANENT_ERRORS[error]})", permanent=True
        )
    return DeliveryError(f"Slack error: {error or 'no error code'} (HTTP {status})")
