"""bot.redact and bot.logs: personal data kept out of logs and analytics."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from conftest import Talk

from bot import logs
from bot.redact import RedactingFilter, redact
from bot.store import Store

PHONES = [
    "07700 900123",
    "07700900123",
    "07700-900-123",
    "+44 7700 900123",
    "+447700900123",
    "+44 (0)7700 900123",
    "01632 960123",
    "020 7946 0123",
    "0161 496 0123",
    "+44 20 7946 0958",
    "0800 123 4567",
]
EMAILS = ["jo.bloggs@example.com", "jo.bloggs+bins@example.co.uk", "J_Smith-99@mail.council.gov.uk"]
POSTCODES = ["SW1A 1AA", "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT", "EC1A 1BB", "sw1a1aa", "W1A 0AX"]
NI_NUMBERS = ["QQ 12 34 56 C", "AB123456C", "qq123456c", "JG 10 37 75 A"]
CARDS = ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "3782 822463 10005", "5555555555554444"]

KINDS = {
    "phone number": PHONES,
    "email": EMAILS,
    "postcode": POSTCODES,
    "national insurance number": NI_NUMBERS,
    "card number": CARDS,
}
ALL = [(label, value) for label, values in KINDS.items() for value in values]

ORDINARY = [
    "When is my bin day?",
    "My bin day is Tuesday and the green bin was missed",
    "Any update on CB-ABC234?",
    "CB-XYZ789 please",
    "I moved here in 2012",
    "In an emergency call 999",
    "Samaritans are on 116 123",
    "Flat 2, 10 Downing Street",
    "My bill is £1,250.00 this year",
    "Collection on 15/01/2024 at 10:00",
    "2024-01-15T10:00:00+00:00",
    "The A12 and the M25 are closed",
    "council tax account 12345678",
    "Opening hours Mon-Fri 09:00-17:00",
]

REFERENCES_LIKE_POSTCODES = ["CB-AB23CD", "CB-A2B3CD", "CB-HA34XY"]
"""Real reference shapes (letters A-Z without I/O, digits 2-9) that look like a postcode after the dash."""


# -- redact() -----------------------------------------------------------------------------


@pytest.mark.parametrize(("label", "value"), ALL, ids=[v for _, v in ALL])
def test_each_kind_is_replaced_by_its_label(label: str, value: str) -> None:
    assert redact(value) == f"[{label}]"


@pytest.mark.parametrize(("label", "value"), ALL, ids=[v for _, v in ALL])
def test_personal_data_inside_a_sentence(label: str, value: str) -> None:
    text = f"Hello, it's about my bin: {value}. Thanks!"
    redacted = redact(text)
    assert value not in redacted
    assert redacted == f"Hello, it's about my bin: [{label}]. Thanks!"


def test_several_kinds_in_one_message() -> None:
    text = (
        "I'm Jo, ring me on 07700 900123 or email jo@example.com; I live at SW1A 1AA, "
        "NI QQ 12 34 56 C, card 4111 1111 1111 1111."
    )
    redacted = redact(text)
    for value in ("07700 900123", "jo@example.com", "SW1A 1AA", "QQ 12 34 56 C", "4111 1111 1111 1111"):
        assert value not in redacted
    for label in KINDS:
        assert f"[{label}]" in redacted
    assert redacted.startswith("I'm Jo, ring me on [phone number]")


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_not_mangled(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("ref", REFERENCES_LIKE_POSTCODES)
def test_escalation_references_are_never_mangled(ref: str) -> None:
    # Any reference new_reference() can produce must survive: officers search the logs for them.
    assert redact(f"escalation timer: {ref}: reminded duty") == f"escalation timer: {ref}: reminded duty"


def test_redact_is_idempotent() -> None:
    once = redact("call 07700 900123, jo@example.com, SW1A 1AA")
    assert redact(once) == once


# -- the logging filter ----------------------------------------------------------------------


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put the root logger back as it was after a test reconfigures it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch, root_logging: None) -> io.StringIO:
    """bot.logs.configure() writing into a string instead of stderr."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    logs.configure("DEBUG")
    return stream


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_configured_logging_redacts_the_message_args_and_extras(captured: io.StringIO) -> None:
    log = logging.getLogger("councilbot.test")
    for label, value in ALL:
        log.info(f"literal {value} in the message")
        log.info("argument %s in the message", value)
        log.warning("extra field", extra={"text": f"resident wrote {value}", "kind": label})
    out = captured.getvalue()
    for _, value in ALL:
        assert value not in out, value
    entries = lines(captured)
    assert len(entries) == 3 * len(ALL)
    assert all(e["logger"] == "councilbot.test" for e in entries)
    assert entries[0]["event"] == f"literal [{ALL[0][0]}] in the message"
    assert entries[1]["event"] == f"argument [{ALL[0][0]}] in the message"
    assert entries[2]["text"] == f"resident wrote [{ALL[0][0]}]"
    assert entries[2]["level"] == "warning"


def test_configured_logging_leaves_ordinary_text_alone(captured: io.StringIO) -> None:
    log = logging.getLogger("councilbot.test")
    for text in ORDINARY:
        log.info("said %s", text, extra={"text": text})
    entries = lines(captured)
    assert [e["event"] for e in entries] == [f"said {t}" for t in ORDINARY]
    assert [e["text"] for e in entries] == ORDINARY


def test_non_text_arguments_are_redacted_too(captured: io.StringIO) -> None:
    # Adapters log exceptions as arguments: log.warning("could not ... %s", error).
    log = logging.getLogger("councilbot.test")
    log.warning("send failed: %s", ValueError("chat of jo@example.com on 07700 900123 not found"))
    log.info("numbers %s", ["SW1A 1AA", "QQ 12 34 56 C"])
    out = captured.getvalue()
    for value in ("jo@example.com", "07700 900123", "SW1A 1AA", "QQ 12 34 56 C"):
        assert value not in out, value
    assert len(lines(captured)) == 2


def test_exception_text_is_redacted(captured: io.StringIO) -> None:
    log = logging.getLogger("councilbot.test")
    try:
        raise RuntimeError("no account for jo@example.com at SW1A 1AA")
    except RuntimeError:
        log.exception("lookup failed for %s", "07700 900123")
    (entry,) = lines(captured)
    assert entry["level"] == "error"
    assert entry["event"] == "lookup failed for [phone number]"
    assert "RuntimeError" in entry["error"]
    assert "[email]" in entry["error"] and "[postcode]" in entry["error"]
    assert "jo@example.com" not in captured.getvalue()


def test_configure_sets_the_level(monkeypatch: pytest.MonkeyPatch, root_logging: None) -> None:
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    logs.configure("WARNING")
    log = logging.getLogger("councilbot.test")
    log.info("quiet 07700 900123")
    log.warning("loud 07700 900123")
    (entry,) = lines(captured)
    assert entry["event"] == "loud [phone number]"


def test_filter_and_formatter_on_any_handler() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("councilbot.test.handler")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info(
            "from %s about %s",
            "jo@example.com",
            "DN55 1PT",
            extra={"phone": "+44 7700 900123", "ni": "AB123456C", "card": "4111111111111111", "count": 3},
        )
    finally:
        log.removeHandler(handler)
        log.propagate = True
    (entry,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert entry["event"] == "from [email] about [postcode]"
    assert entry["phone"] == "[phone number]"
    assert entry["ni"] == "[national insurance number]"
    assert entry["card"] == "[card number]"
    assert entry["count"] == 3


def test_filter_redacts_the_record_in_place() -> None:
    record = logging.makeLogRecord({"msg": "call %s or %s", "args": ("07700 900123", 42)})
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == "call [phone number] or 42"


# -- analytics ----------------------------------------------------------------------------


def test_analytics_rows_hold_redacted_text(talk: Talk, state: Store) -> None:
    talk("my bin was missed, call me on 07700 900123 or jo@example.com, I'm at SW1A 1AA")
    talk("my NI number is QQ 12 34 56 C and my card 4111 1111 1111 1111, when is my bin day")
    rows = list(state.db.query("select * from analytics order by id"))
    assert len(rows) == 2
    texts = " ".join(r["text"] for r in rows)
    for value in ("07700 900123", "jo@example.com", "SW1A 1AA", "QQ 12 34 56 C", "4111 1111 1111 1111"):
        assert value not in texts
    for label in KINDS:
        assert f"[{label}]" in texts
    assert "my bin was missed" in rows[0]["text"] and "when is my bin day" in rows[1]["text"]
    assert all(r["platform"] == "web" and r["action"] for r in rows)
    assert "res-1" not in json.dumps(rows)  # analytics are not linked to the person
