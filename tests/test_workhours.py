"""bot.workhours: reading rota text, "N working hours from now", and plain-English times."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.workhours import HoursError, WorkingHours, describe

LONDON = ZoneInfo("Europe/London")
OFFICE = "Mon-Fri 09:00-17:00"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- parse ---------------------------------------------------------------------------


def test_parse_weekdays() -> None:
    hours = WorkingHours.parse(OFFICE)
    assert set(hours.spans) == {0, 1, 2, 3, 4}
    assert all(span == (9 * 60, 17 * 60) for span in hours.spans.values())
    assert hours.zone == LONDON


def test_parse_several_spans_and_any_case() -> None:
    hours = WorkingHours.parse("MON-thu 08:30-17:00, Fri 8:30-16:30")
    assert hours.spans[0] == (8 * 60 + 30, 17 * 60)
    assert hours.spans[3] == (8 * 60 + 30, 17 * 60)
    assert hours.spans[4] == (8 * 60 + 30, 16 * 60 + 30)
    assert 5 not in hours.spans and 6 not in hours.spans


def test_parse_range_that_wraps_the_week() -> None:
    hours = WorkingHours.parse("Fri-Mon 10:00-12:00")
    assert set(hours.spans) == {4, 5, 6, 0}


def test_parse_single_day_and_other_zone() -> None:
    hours = WorkingHours.parse("Sat 10:00-13:00", "Europe/Dublin")
    assert set(hours.spans) == {5}
    assert hours.zone == ZoneInfo("Europe/Dublin")


@pytest.mark.parametrize(
    ("text", "zone", "hint"),
    [
        ("", "Europe/London", "Mon-Fri 09:00-17:00"),
        ("9 to 5", "Europe/London", "Mon-Fri 09:00-17:00"),
        ("Mon-Fri", "Europe/London", "Mon-Fri 09:00-17:00"),
        ("Monday-Friday 09:00-17:00", "Europe/London", "Mon-Fri 09:00-17:00"),
        ("Mon-Fri 09:00-17:00,", "Europe/London", "Mon-Fri 09:00-17:00"),
        ("Mon-Fri 0900-1700", "Europe/London", "Mon-Fri 09:00-17:00"),
        ("Mon-Fry 09:00-17:00", "Europe/London", "Mon, Tue, Wed, Thu, Fri, Sat, Sun"),
        ("Xyz 09:00-17:00", "Europe/London", "Mon, Tue, Wed, Thu, Fri, Sat, Sun"),
        ("Mon-Fri 17:00-09:00", "Europe/London", "end must be after the start"),
        ("Mon 09:00-09:00", "Europe/London", "end must be after the start"),
        ("Mon-Fri 09:00-25:00", "Europe/London", "hour"),
        ("Mon-Fri 09:75-17:00", "Europe/London", "minute"),
        ("Mon-Fri 09:00-17:00", "Mars/Olympus_Mons", "unknown time zone"),
    ],
)
def test_parse_errors_say_how_to_write_it(text: str, zone: str, hint: str) -> None:
    with pytest.raises(HoursError) as caught:
        WorkingHours.parse(text, zone)
    message = str(caught.value)
    assert hint in message
    assert "\n" not in message
    assert isinstance(caught.value, ValueError)


def test_parse_error_quotes_the_bad_part() -> None:
    with pytest.raises(HoursError, match="sat 25:00-26:00"):
        WorkingHours.parse("Mon-Fri 09:00-17:00, Sat 25:00-26:00")


# -- is_open ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2024, 1, 15, 10, 0), True),  # Monday 10:00 GMT
        (utc(2024, 1, 15, 9, 0), True),  # opening time counts
        (utc(2024, 1, 15, 8, 59), False),
        (utc(2024, 1, 15, 17, 0), False),  # closing time does not
        (utc(2024, 1, 19, 16, 59), True),  # Friday
        (utc(2024, 1, 20, 10, 0), False),  # Saturday
        (utc(2024, 1, 21, 10, 0), False),  # Sunday
        (utc(2024, 6, 10, 8, 30), True),  # Monday 09:30 BST
        (utc(2024, 6, 10, 16, 30), False),  # Monday 17:30 BST
    ],
)
def test_is_open(moment: datetime, expected: bool) -> None:
    assert WorkingHours.parse(OFFICE).is_open(moment) is expected


# -- add -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (utc(2024, 1, 15, 10, 0), 4, utc(2024, 1, 15, 14, 0)),  # same day
        (utc(2024, 1, 15, 10, 0), 7, utc(2024, 1, 15, 17, 0)),  # exactly to closing
        (utc(2024, 1, 15, 16, 0), 3, utc(2024, 1, 16, 11, 0)),  # overnight
        (utc(2024, 1, 15, 10, 0), 8, utc(2024, 1, 16, 10, 0)),  # overnight, whole day's worth
        (utc(2024, 1, 15, 10, 0), 16, utc(2024, 1, 17, 10, 0)),  # two nights
        (utc(2024, 1, 15, 7, 0), 1, utc(2024, 1, 15, 10, 0)),  # before opening
        (utc(2024, 1, 15, 20, 0), 1, utc(2024, 1, 16, 10, 0)),  # after closing
        (utc(2024, 1, 19, 16, 0), 2, utc(2024, 1, 22, 10, 0)),  # Friday across the weekend
        (utc(2024, 1, 20, 3, 0), 1, utc(2024, 1, 22, 10, 0)),  # Saturday night
        (utc(2024, 1, 19, 16, 30), 0.5, utc(2024, 1, 19, 17, 0)),  # part of an hour
        (utc(2024, 1, 19, 16, 30), 40.5, utc(2024, 1, 26, 17, 0)),  # a whole working week later
    ],
)
def test_add_working_hours(start: datetime, hours: float, expected: datetime) -> None:
    result = WorkingHours.parse(OFFICE).add(start, hours)
    assert result == expected
    assert result.tzinfo is UTC


def test_add_with_several_spans() -> None:
    hours = WorkingHours.parse("Mon-Thu 08:30-17:00, Fri 08:30-16:30")
    # Friday 16:00: half an hour on Friday, then Monday from 08:30.
    assert hours.add(utc(2024, 1, 19, 16, 0), 1) == utc(2024, 1, 22, 9, 0)


def test_add_across_the_clocks_going_forward() -> None:
    # Friday 29 March 2024 16:00 GMT; the clocks go forward on Sunday 31 March.
    # Monday 1 April opens at 09:00 BST, which is 08:00 UTC; one hour on Friday, one on Monday.
    assert WorkingHours.parse(OFFICE).add(utc(2024, 3, 29, 16, 0), 2) == utc(2024, 4, 1, 9, 0)


def test_add_in_summer_time_is_local_hours() -> None:
    # Monday 10 June 2024 16:00 BST (15:00 UTC) + 2 working hours -> Tuesday 10:00 BST (09:00 UTC).
    assert WorkingHours.parse(OFFICE).add(utc(2024, 6, 10, 15, 0), 2) == utc(2024, 6, 11, 9, 0)


def test_add_round_the_clock_rota_is_plain_time() -> None:
    hours = WorkingHours.parse("Mon-Sun 00:00-23:59")
    start = utc(2024, 1, 20, 3, 0)
    assert hours.add(start, 2) == start + timedelta(hours=2)


def test_add_result_is_always_open_or_closing_time() -> None:
    hours = WorkingHours.parse(OFFICE)
    start = utc(2024, 1, 15, 0, 0)
    for quarter in range(0, 24 * 4 * 7, 7):
        moment = start + timedelta(minutes=15 * quarter)
        for amount in (0.25, 1, 4, 8, 16):
            due = hours.add(moment, amount)
            assert due > moment
            local = due.astimezone(LONDON)
            assert local.weekday() < 5
            assert time(9) < local.time() <= time(17)


# -- describe --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "now", "expected"),
    [
        (utc(2024, 1, 15, 17, 0), utc(2024, 1, 15, 10, 0), "by 5pm today"),
        (utc(2024, 1, 15, 14, 30), utc(2024, 1, 15, 10, 0), "by 2:30pm today"),
        (utc(2024, 1, 15, 12, 0), utc(2024, 1, 15, 10, 0), "by 12pm today"),
        (utc(2024, 1, 16, 10, 0), utc(2024, 1, 15, 10, 0), "by 10am tomorrow"),
        (utc(2024, 1, 16, 9, 30), utc(2024, 1, 15, 23, 59), "by 9:30am tomorrow"),
        (utc(2024, 1, 17, 10, 0), utc(2024, 1, 15, 10, 0), "by 10am on Wednesday 17 January"),
        (utc(2024, 1, 22, 10, 0), utc(2024, 1, 19, 16, 0), "by 10am on Monday 22 January"),
        (utc(2024, 2, 1, 9, 0), utc(2024, 1, 31, 16, 0), "by 9am tomorrow"),
    ],
)
def test_describe(moment: datetime, now: datetime, expected: str) -> None:
    assert describe(moment, LONDON, now) == expected


def test_describe_uses_local_time_and_local_dates() -> None:
    # 23:30 UTC on Sunday 9 June is already 00:30 on Monday in London (BST);
    # 09:00 UTC on Monday is 10am local, so "today".
    assert describe(utc(2024, 6, 10, 9, 0), LONDON, utc(2024, 6, 9, 23, 30)) == "by 10am today"
    # And the day after that, in the same week, by name.
    assert describe(utc(2024, 6, 12, 15, 0), LONDON, utc(2024, 6, 10, 9, 0)) == "by 4pm on Wednesday 12 June"


def test_round_the_clock_has_no_gap_at_midnight() -> None:
    hours = WorkingHours.parse("Mon-Sun 00:00-24:00")
    start = datetime(2024, 1, 15, 23, 30, tzinfo=UTC)
    assert hours.add(start, 1) == datetime(2024, 1, 16, 0, 30, tzinfo=UTC)
    assert hours.is_open(datetime(2024, 1, 15, 23, 59, 30, tzinfo=UTC))


def test_hours_are_real_time_across_the_clocks_going_forward() -> None:
    hours = WorkingHours.parse("Mon-Sun 00:00-24:00")
    start = datetime(2024, 3, 31, 0, 30, tzinfo=UTC)  # 00:30 GMT, the night BST starts
    assert hours.add(start, 2) == datetime(2024, 3, 31, 2, 30, tzinfo=UTC)
