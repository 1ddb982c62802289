"""Configuration: ``config.toml`` read with tomllib, checked key by key.

Where it comes from: ``--config PATH``, else ``$COUNCILBOT_CONFIG``, else
``./config.toml``, else the embedded defaults. An unknown key or a wrong
type is a ``ConfigError`` naming the file and the key. Secrets (tokens)
never live here: they come from environment variables only.
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path

from bot import config_defaults


class ConfigError(Exception):
    """A configuration problem, worded for the person who edits the file."""


@dataclass(frozen=True)
class CouncilConfig:
    """The council's own details, filled into answers as placeholders."""

    name: str = config_defaults.COUNCIL["name"]
    phone: str = config_defaults.COUNCIL["phone"]
    website: str = config_defaults.COUNCIL["website"]
    email: str = config_defaults.COUNCIL["email"]
    address: str = config_defaults.COUNCIL["address"]
    opening_hours: str = config_defaults.COUNCIL["opening_hours"]
    out_of_hours_phone: str = config_defaults.COUNCIL["out_of_hours_phone"]
    childrens_services_phone: str = config_defaults.COUNCIL["childrens_services_phone"]
    adult_social_care_phone: str = config_defaults.COUNCIL["adult_social_care_phone"]
    privacy_notice_url: str = config_defaults.COUNCIL["privacy_notice_url"]
    pages: dict[str, str] = field(default_factory=lambda: dict(config_defaults.PAGES))

    def placeholders(self) -> dict[str, str]:
        """The council's placeholders, with their text (see ``Config.placeholders`` for all)."""
        values = {f"council.{f.name}": getattr(self, f.name) for f in fields(self) if f.name != "pages"}
        values.update({f"page.{k}": v for k, v in self.pages.items()})
        return values


@dataclass(frozen=True)
class MatcherConfig:
    """Where match scores (0 to 1) become answers, clarifications or escalations."""

    answer_threshold: float = 0.3
    clarify_threshold: float = 0.2
    margin: float = 0.04
    max_options: int = 3
    safety_threshold: float = 0.45


@dataclass(frozen=True)
class StorageConfig:
    """Where the two databases and the content live (relative to the config file)."""

    content_dir: str = ""
    knowledge_db: str = "data/knowledge.db"
    state_db: str = "data/state.db"


@dataclass(frozen=True)
class ChatConfig:
    """Limits on what people send."""

    max_message_chars: int = 4000


@dataclass(frozen=True)
class OfficerConfig:
    """A named person who answers what the bot cannot.

    ``contact`` says where notifications go: ``cli`` (the command-line
    inbox), ``slack:U0123ABC`` (a user) or ``slack:C0123ABC`` (a channel),
    ``telegram:123456789`` (a chat id). ``slack_user`` and
    ``telegram_user`` say who the officer is when they press a button or
    reply on that platform (defaulting to a user ``contact``).
    """

    id: str
    name: str
    role: str = ""
    topics: list[str] = field(default_factory=list)
    contact: str = "cli"
    hours: str = "Mon-Fri 09:00-17:00"
    backup: str = ""
    sees_all: bool = False
    slack_user: str = ""
    telegram_user: str = ""

    def identities(self) -> set[tuple[str, str]]:
        """(platform, user id) pairs that identify this officer when they act."""
        found = {("cli", self.id)}
        platform, _, address = self.contact.partition(":")
        if platform == "slack" and address.startswith(("U", "W")):
            found.add(("slack", address))
        if platform == "telegram" and not address.startswith("-"):
            found.add(("telegram", address))
        if self.slack_user:
            found.add(("slack", self.slack_user))
        if self.telegram_user:
            found.add(("telegram", self.telegram_user))
        return found


@dataclass(frozen=True)
class EscalationConfig:
    """Who gets what by default, and the clock an escalation runs on."""

    default_officer: str = "duty"
    safeguarding_officer: str = "safeguarding"
    reply_within_hours: float = 16.0
    remind_after_hours: float = 4.0
    reassign_after_hours: float = 8.0
    timezone: str = "Europe/London"


@dataclass(frozen=True)
class TelegramConfig:
    """Telegram (started when TELEGRAM_BOT_TOKEN is set in the environment).

    ``mode`` is ``polling`` (no public address needed) or ``webhook``
    (Telegram posts to ``webhook_url``, served by councilbot's web server at
    ``webhook_path``; the TELEGRAM_WEBHOOK_SECRET is checked on every call).
    ``api_base_url`` points at a local Bot API server if the council runs one.
    """

    mode: str = "polling"
    api_base_url: str = "https://api.telegram.org/bot"
    api_file_url: str = "https://api.telegram.org/file/bot"
    webhook_url: str = ""
    webhook_path: str = "/telegram/webhook"
    poll_timeout: int = 30


@dataclass(frozen=True)
class SlackConfig:
    """Slack (started when SLACK_BOT_TOKEN is set in the environment).

    ``mode`` is ``socket`` (Socket Mode, needs SLACK_APP_TOKEN, no public
    address) or ``http`` (the Events API posts to ``events_path`` on
    councilbot's web server; needs SLACK_SIGNING_SECRET).
    """

    mode: str = "socket"
    api_base_url: str = "https://slack.com/api/"
    events_path: str = "/slack/events"
    escalation_channel: str = ""


@dataclass(frozen=True)
class WebConfig:
    """The web chat and the HTTP server every webhook shares."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    embed_origins: list[str] = field(default_factory=list)
    max_connections: int = 200
    session_rate_per_minute: int = 30
    address_rate_per_minute: int = 120


@dataclass(frozen=True)
class PrivacyConfig:
    """How long personal data is kept, and what an erasure leaves behind.

    ``keep_after_erasure`` lists the escalation fields the council keeps for
    its records when a resident's data is erased; everything else about
    them (their words, their platform identity) is removed.
    """

    retain_messages_days: int = 90
    retain_closed_escalations_days: int = 365
    purge_every_hours: float = 24.0
    keep_after_erasure: list[str] = field(
        default_factory=lambda: ["ref", "topic", "intent", "urgent", "status", "officer", "created_at", "closed_at"]
    )


@dataclass(frozen=True)
class LogConfig:
    """Logging: one line per event; no message text or personal data at INFO."""

    level: str = "INFO"


def _default_officers() -> list[OfficerConfig]:
    return [OfficerConfig(**o) for o in config_defaults.OFFICERS]


@dataclass(frozen=True)
class Config:
    """The whole configuration, with the folder relative paths start from."""

    council: CouncilConfig = field(default_factory=CouncilConfig)
    matcher: MatcherConfig = field(default_factory=MatcherConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)
    escalation: EscalationConfig = field(default_factory=EscalationConfig)
    officers: list[OfficerConfig] = field(default_factory=_default_officers)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    slack: SlackConfig = field(default_factory=SlackConfig)
    web: WebConfig = field(default_factory=WebConfig)
    log: LogConfig = field(default_factory=LogConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    base_dir: Path = field(default_factory=Path.cwd)
    source: str = "built-in defaults"

    def path(self, value: str) -> Path:
        """A path from the configuration, made absolute against ``base_dir``."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def placeholders(self) -> dict[str, str]:
        """Every placeholder answers may use: the council's details, pages and retention periods."""
        values = self.council.placeholders()
        values["privacy.retain_messages_days"] = str(self.privacy.retain_messages_days)
        values["privacy.retain_closed_escalations_days"] = str(self.privacy.retain_closed_escalations_days)
        return values

    @property
    def content_dir(self) -> Path | None:
        """The content folder, or None for the bundled content."""
        return self.path(self.storage.content_dir) if self.storage.content_dir else None


_SECTIONS = {f.name: f.type for f in fields(Config) if f.name not in ("base_dir", "source")}


def _type_name(kind: object) -> str:
    return {str: "text", int: "a whole number", float: "a number", bool: "true or false"}.get(
        kind, getattr(kind, "__name__", str(kind))
    )


def _check_value(value: object, kind: object, where: str) -> object:
    origin = typing.get_origin(kind)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: must be a table of names and text")
        _key_type, value_type = typing.get_args(kind)
        return {k: _check_value(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: must be a list")
        (item_type,) = typing.get_args(kind)
        return [_check_value(v, item_type, f"{where}[{n}]") for n, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return _check_value(value, options[0], where)
    if is_dataclass(kind):
        return _section(kind, value, where)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):  # type: ignore[arg-type]
        raise ConfigError(f"{where}: must be {_type_name(kind)}, not {type(value).__name__} {value!r}")
    return value


def _section(cls: type, data: object, where: str) -> object:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a table ([{where.rsplit(': ', 1)[-1]}])")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    for key in required:
        if key not in data:
            raise ConfigError(f"{where}: missing key {key!r}")
    values = {}
    for key, value in data.items():
        if key not in known:
            hint = (
                " Secrets such as tokens go in environment variables, never here."
                if "token" in key or "secret" in key
                else ""
            )
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))}).{hint}")
        values[key] = _check_value(value, hints[key], f"{where}.{key}")
    instance = cls(**values)
    if cls is CouncilConfig and "pages" in values:
        instance = replace(instance, pages={**config_defaults.PAGES, **values["pages"]})
    return instance


def parse(data: dict, source: str, base_dir: Path) -> Config:
    """Build a ``Config`` from parsed TOML, checking every key and type."""
    sections = {}
    hints = typing.get_type_hints(Config)
    for name, value in data.items():
        if name not in _SECTIONS:
            raise ConfigError(f"{source}: [{name}]: unknown section (known: {', '.join(sorted(_SECTIONS))})")
        sections[name] = _check_value(value, hints[name], f"{source}: {name}")
    config = Config(**sections, base_dir=base_dir, source=source)
    _check_limits(config)
    return config


def _check_limits(config: Config) -> None:
    m = config.matcher
    for key in ("answer_threshold", "clarify_threshold", "margin", "safety_threshold"):
        if not 0 <= getattr(m, key) <= 1:
            raise ConfigError(f"{config.source}: matcher.{key}: must be between 0 and 1")
    if m.clarify_threshold > m.answer_threshold:
        raise ConfigError(f"{config.source}: matcher.clarify_threshold: must not be above answer_threshold")
    if not 2 <= m.max_options <= 9:
        raise ConfigError(f"{config.source}: matcher.max_options: must be from 2 to 9")
    if config.chat.max_message_chars < 10:
        raise ConfigError(f"{config.source}: chat.max_message_chars: must be at least 10")
    if config.telegram.mode not in ("polling", "webhook"):
        raise ConfigError(f"{config.source}: telegram.mode: must be 'polling' or 'webhook'")
    if config.slack.mode not in ("socket", "http"):
        raise ConfigError(f"{config.source}: slack.mode: must be 'socket' or 'http'")
    p = config.privacy
    if p.retain_messages_days < 1 or p.retain_closed_escalations_days < 1 or p.purge_every_hours <= 0:
        raise ConfigError(f"{config.source}: privacy: retention days must be at least 1 and purge_every_hours above 0")
    allowed = {
        "ref",
        "topic",
        "intent",
        "urgent",
        "status",
        "officer",
        "created_at",
        "closed_at",
        "claimed_by",
        "due_at",
        "close_note",
    }
    unknown = [f for f in p.keep_after_erasure if f not in allowed]
    if unknown:
        raise ConfigError(
            f"{config.source}: privacy.keep_after_erasure: {unknown[0]!r} cannot be kept "
            f"(choose from {', '.join(sorted(allowed))})"
        )
    if config.log.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{config.source}: log.level: must be DEBUG, INFO, WARNING or ERROR")
    if not 0 < config.web.port < 65536:
        raise ConfigError(f"{config.source}: web.port: must be from 1 to 65535")
    from bot.routing import routing_problems

    problems = routing_problems(config)
    if problems:
        raise ConfigError(f"{config.source}: {problems[0]}")


def load(explicit: str | None = None) -> Config:
    """Find and read the configuration, or fall back to the embedded defaults."""
    chosen = explicit or os.environ.get("COUNCILBOT_CONFIG") or None
    path = Path(chosen) if chosen else Path("config.toml")
    if not path.is_file():
        if chosen:
            raise ConfigError(f"{path}: no such configuration file")
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start})") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from error
    return parse(data, str(path), path.resolve().parent)
