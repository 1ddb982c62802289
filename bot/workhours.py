"""Working hours: when an officer is at work, and "N working hours from now".

Hours are written as in a council's rota: ``"Mon-Fri 09:00-17:00"``, or
several spans separated by commas (``"Mon-Thu 08:30-17:00, Fri 08:30-16:30"``).
Bank holidays are not known here; a council that needs them lists the
working days explicitly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class HoursError(ValueError):
    """A working-hours text that cannot be read; the message says how to write it."""


@dataclass(frozen=True)
class WorkingHours:
    """Opening spans per weekday (0 = Monday), in one time zone."""

    spans: dict[int, tuple[time, time]]
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str, zone: str = "Europe/London") -> WorkingHours:
        """Read ``"Mon-Fri 09:00-17:00"`` style text."""
        spans: dict[int, tuple[time, time]] = {}
        for part in text.lower().split(","):
            m = _SPAN.match(part)
            if not m:
                raise HoursError(f"{part.strip()!r}: write working hours like 'Mon-Fri 09:00-17:00'")
            first, last = m.group(1), m.group(2) or m.group(1)
            if first not in DAYS or last not in DAYS:
                raise HoursError(f"{part.strip()!r}: days are Mon, Tue, Wed, Thu, Fri, Sat, Sun")
            try:
                start = time(int(m.group(3)), int(m.group(4)))
                end = time(int(m.group(5)), int(m.group(6)))
            except ValueError as error:
                raise HoursError(f"{part.strip()!r}: {error}") from error
            if end <= start:
                raise HoursError(f"{part.strip()!r}: the end must be after the start")
            a, b = DAYS.index(first), DAYS.index(last)
            for day in range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]:
                spans[day] = (start, end)
        try:
            return cls(spans, ZoneInfo(zone))
        except Exception as error:  # zoneinfo raises several kinds
            raise HoursError(f"{zone!r}: unknown time zone (e.g. 'Europe/London')") from error

    def is_open(self, moment: datetime) -> bool:
        """Whether ``moment`` falls inside working hours."""
        local = moment.astimezone(self.zone)
        span = self.spans.get(local.weekday())
        return span is not None and span[0] <= local.time() < span[1]

    def add(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` working hours after ``start`` (in UTC)."""
        if not self.spans:
            return start + timedelta(hours=hours)
        remaining = timedelta(hours=hours)
        local = start.astimezone(self.zone)
        for _ in range(800):
            span = self.spans.get(local.weekday())
            if span is not None:
                opens = local.replace(hour=span[0].hour, minute=span[0].minute, second=0, microsecond=0)
                closes = local.replace(hour=span[1].hour, minute=span[1].minute, second=0, microsecond=0)
                begin = max(local, opens)
                if begin < closes:
                    available = closes - begin
                    if remaining <= available:
                        return (begin + remaining).astimezone(start.tzinfo)
                    remaining -= available
            local = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return start + timedelta(hours=hours)


def describe(moment: datetime, zone: ZoneInfo, now: datetime) -> str:
    """A plain-English time: "by 5pm today", "by 11am on Tuesday 24 November"."""
    local = moment.astimezone(zone)
    today = now.astimezone(zone).date()
    clock = local.strftime("%I:%M%p").lstrip("0").replace(":00", "").lower()
    if local.date() == today:
        return f"by {clock} today"
    if local.date() == today + timedelta(days=1):
        return f"by {clock} tomorrow"
    return f"by {clock} on {local.strftime('%A')} {local.day} {local.strftime('%B')}"
