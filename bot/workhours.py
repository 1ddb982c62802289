"""Working hours: when an officer is at work, and "N working hours from now".

Hours are written as in a council's rota: ``"Mon-Fri 09:00-17:00"``, or
several spans separated by commas (``"Mon-Thu 08:30-17:00, Fri 08:30-16:30"``);
``"Mon-Sun 00:00-24:00"`` is round the clock. Durations are real elapsed
time, so the night the clocks change counts its true length.
Bank holidays are not known here; a council that needs them lists the
working days explicitly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class HoursError(ValueError):
    """A working-hours text that cannot be read; the message says how to write it."""


@dataclass(frozen=True)
class WorkingHours:
    """Opening spans per weekday (0 = Monday), in one time zone."""

    spans: dict[int, tuple[int, int]]
    """Per weekday (0 = Monday): opening and closing minute of the day (0 to 1440)."""
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str, zone: str = "Europe/London") -> WorkingHours:
        """Read ``"Mon-Fri 09:00-17:00"`` style text."""
        spans: dict[int, tuple[int, int]] = {}
        for part in text.lower().split(","):
            m = _SPAN.match(part)
            if not m:
                raise HoursError(f"{part.strip()!r}: write working hours like 'Mon-Fri 09:00-17:00'")
            first, last = m.group(1), m.group(2) or m.group(1)
            if first not in DAYS or last not in DAYS:
                raise HoursError(f"{part.strip()!r}: days are Mon, Tue, Wed, Thu, Fri, Sat, Sun")
            start = int(m.group(3)) * 60 + int(m.group(4))
            end = int(m.group(5)) * 60 + int(m.group(6))
            if int(m.group(4)) > 59 or int(m.group(6)) > 59:
                raise HoursError(f"{part.strip()!r}: a minute runs from 00 to 59")
            if start >= 24 * 60 or end > 24 * 60:
                raise HoursError(f"{part.strip()!r}: an hour runs from 00 to 24 (24:00 is midnight at the end)")
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
        minute = local.hour * 60 + local.minute
        return span is not None and span[0] <= minute < span[1]

    def add(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` working hours after ``start`` (in UTC)."""
        if not self.spans:
            return start + timedelta(hours=hours)
        remaining = timedelta(hours=hours)
        moment = start.astimezone(UTC)
        for _ in range(800):
            local = moment.astimezone(self.zone)
            midnight = datetime.combine(local.date(), time(0), tzinfo=self.zone)
            span = self.spans.get(local.weekday())
            if span is not None:
                opens = (midnight + timedelta(minutes=span[0])).astimezone(UTC)
                closes = (midnight + timedelta(minutes=span[1])).astimezone(UTC)
                begin = max(moment, opens)
                if begin < closes:
                    if remaining <= closes - begin:
                        return (begin + remaining).astimezone(start.tzinfo)
                    remaining -= closes - begin
            moment = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=self.zone).astimezone(UTC)
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
