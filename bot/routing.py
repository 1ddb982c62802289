"""Which named officer gets an escalation, and whether the rota makes sense."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.workhours import HoursError, WorkingHours

if TYPE_CHECKING:
    from bot.config import Config, OfficerConfig

SAFEGUARDING = "safeguarding"
_CONTACT = re.compile(r"^(cli|slack:[A-Z0-9]+|telegram:-?\d+)$")


def routing_problems(config: Config) -> list[str]:
    """Everything wrong with the officers and escalation settings."""
    problems = []
    try:
        ZoneInfo(config.escalation.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return [f"escalation.timezone: {config.escalation.timezone!r} is not a time zone (e.g. 'Europe/London')"]
    ids = [o.id for o in config.officers]
    known = set(ids)
    for officer_id in {i for i in ids if ids.count(i) > 1}:
        problems.append(f"officers: id {officer_id!r} is used twice")
    for n, officer in enumerate(config.officers):
        where = f"officers[{n}] ({officer.id})"
        if officer.backup and officer.backup not in known:
            problems.append(f"{where}.backup: no officer has the id {officer.backup!r}")
        if officer.backup == officer.id:
            problems.append(f"{where}.backup: an officer cannot be their own backup")
        if not _CONTACT.match(officer.contact):
            problems.append(
                f"{where}.contact: {officer.contact!r} must be 'cli', 'slack:<user or channel id>' "
                "or 'telegram:<chat id>'"
            )
        try:
            WorkingHours.parse(officer.hours, config.escalation.timezone)
        except HoursError as error:
            problems.append(f"{where}.hours: {error}")
    e = config.escalation
    for key in ("default_officer", "safeguarding_officer"):
        if getattr(e, key) not in known:
            problems.append(f"escalation.{key}: no officer has the id {getattr(e, key)!r}")
    for key in ("reply_within_hours", "remind_after_hours", "reassign_after_hours"):
        if getattr(e, key) <= 0:
            problems.append(f"escalation.{key}: must be more than 0")
    if e.reassign_after_hours < e.remind_after_hours:
        problems.append("escalation.reassign_after_hours: must not be less than remind_after_hours")
    return problems


class Router:
    """Chooses the officer for a topic: a specialist, else the default."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.officers: dict[str, OfficerConfig] = {o.id: o for o in config.officers}
        self.by_topic: dict[str, OfficerConfig] = {}
        for officer in config.officers:
            for topic in officer.topics:
                self.by_topic.setdefault(topic, officer)
        self.hours = {o.id: WorkingHours.parse(o.hours, config.escalation.timezone) for o in config.officers}

    def officer_for(self, topic: str, urgent: bool = False) -> OfficerConfig:
        """The officer who should take a question on ``topic``."""
        if urgent or topic == SAFEGUARDING:
            return self.officers[self.config.escalation.safeguarding_officer]
        return self.by_topic.get(topic) or self.officers[self.config.escalation.default_officer]

    def by_identity(self, platform: str, user: str) -> OfficerConfig | None:
        """The officer who is ``user`` on ``platform``, if any (only configured officers may act)."""
        for officer in self.officers.values():
            if (platform, str(user)) in officer.identities():
                return officer
        return None

    def get(self, officer_id: str) -> OfficerConfig | None:
        """The officer with this id, or None."""
        return self.officers.get(officer_id)

    def coverage(self, topics: Iterable[str]) -> dict[str, tuple[OfficerConfig, bool]]:
        """For each topic: who gets it, and whether that is only the default."""
        return {t: (self.officer_for(t), t not in self.by_topic and t != SAFEGUARDING) for t in sorted(set(topics))}
