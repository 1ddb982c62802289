"""bot.routing: who gets an escalation, and the configuration checks of the rota."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import (
    OFFICERS,
    SATURDAY_03,
    SELF_HARM,
    TAXI,
    TRADE_WASTE,
    UNMATCHED,
    Clock,
    Talk,
    config_data,
    outbox,
)

from bot.config import Config, ConfigError, EscalationConfig, OfficerConfig, load, parse
from bot.escalations import Desk, address_of
from bot.officer_cli import cli_sender
from bot.outbox import Dispatcher
from bot.routing import Router, routing_problems
from bot.store import Store

ROOT = Path(__file__).resolve().parent.parent


# -- the router ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "urgent", "expected"),
    [
        ("waste", False, "waste"),
        ("council-tax", False, "tax"),
        ("general", False, "duty"),
        ("licensing", False, "duty"),  # nobody lists it: the default officer
        ("no-such-topic", False, "duty"),
        ("", False, "duty"),
        ("safeguarding", False, "safe"),
        ("waste", True, "safe"),  # urgent always goes to safeguarding
        ("general", True, "safe"),
    ],
)
def test_officer_for(rota: Config, topic: str, urgent: bool, expected: str) -> None:
    assert Router(rota).officer_for(topic, urgent).id == expected


def test_first_officer_listing_a_topic_is_the_specialist(tmp_path: Path) -> None:
    officers = copy.deepcopy(OFFICERS)
    officers[2]["topics"] = ["council-tax", "waste"]  # tax also lists waste, after waste
    config = parse(config_data(officers=officers), "test", tmp_path)
    assert Router(config).officer_for("waste").id == "waste"


def test_coverage_marks_default_only_topics(rota: Config) -> None:
    coverage = Router(rota).coverage(["waste", "licensing", "safeguarding", "waste"])
    assert list(coverage) == ["licensing", "safeguarding", "waste"]
    assert coverage["waste"][0].id == "waste" and coverage["waste"][1] is False
    assert coverage["licensing"][0].id == "duty" and coverage["licensing"][1] is True
    assert coverage["safeguarding"][0].id == "safe" and coverage["safeguarding"][1] is False


def test_get_unknown_officer_is_none(rota: Config) -> None:
    router = Router(rota)
    assert router.get("waste").name == "Wyn Jones"
    assert router.get("nobody") is None


@pytest.mark.parametrize(
    ("contact", "address"),
    [
        ("cli", ("cli", "waste")),
        ("slack:U0WASTE1", ("slack", "U0WASTE1")),
        ("slack:C0TEAM", ("slack", "C0TEAM")),
        ("telegram:123456789", ("telegram", "123456789")),
        ("telegram:-100200300", ("telegram", "-100200300")),
    ],
)
def test_address_of(contact: str, address: tuple[str, str]) -> None:
    assert address_of(OfficerConfig(id="waste", name="Wyn Jones", contact=contact)) == address


# -- routing through the engine -----------------------------------------------------------


def test_topic_goes_to_the_specialist(talk: Talk, state: Store) -> None:
    outcome = talk(TRADE_WASTE)
    assert outcome.action == "escalate"
    assert outcome.intent == "route.waste.commercial"
    assert outcome.officer == "waste"
    assert "Wyn Jones" in outcome.text and "Waste Services officer" in outcome.text
    (row,) = state.db.query("select * from escalations")
    assert (row["topic"], row["officer"], row["urgent"]) == ("waste", "waste", 0)
    (notify,) = outbox(state, purpose="notify")
    assert (notify["platform"], notify["conversation"], notify["ref"]) == ("cli", "waste", outcome.reference)


def test_unknown_topic_goes_to_the_default_officer(talk: Talk, state: Store) -> None:
    outcome = talk(TAXI)
    assert outcome.action == "escalate"
    assert outcome.officer == "duty"
    (row,) = state.db.query("select * from escalations")
    assert (row["topic"], row["officer"]) == ("licensing", "duty")
    (notify,) = outbox(state, purpose="notify")
    assert (notify["platform"], notify["conversation"]) == ("cli", "duty")


def test_unmatched_question_goes_to_the_default_officer(talk: Talk, state: Store) -> None:
    outcome = talk(UNMATCHED)
    assert outcome.officer == "duty"
    (row,) = state.db.query("select * from escalations")
    assert (row["topic"], row["officer"]) == ("general", "duty")


def test_notifications_go_to_the_officers_platform(tmp_path: Path, kb_small, clock: Clock, state_path: Path) -> None:
    from bot.engine import Engine
    from bot.messages import IncomingMessage
    from bot.wiring import make_matcher

    officers = copy.deepcopy(OFFICERS)
    officers[1]["contact"] = "slack:U0WASTE1"
    officers[0]["contact"] = "telegram:-100200300"
    config = parse(config_data(officers=officers), "test", tmp_path)
    store = Store(state_path)
    try:
        engine = Engine(kb_small, make_matcher(kb_small, config), config, store, clock=clock)
        engine.handle(IncomingMessage("web", "res-1", TRADE_WASTE, event_id="1"))
        engine.handle(IncomingMessage("web", "res-2", TAXI, event_id="2"))
        notes = outbox(store, purpose="notify")
        assert [(n["platform"], n["conversation"]) for n in notes] == [
            ("slack", "U0WASTE1"),
            ("telegram", "-100200300"),
        ]
    finally:
        store.close()


def test_out_of_hours_question_is_due_in_working_hours(talk: Talk, clock: Clock, state: Store) -> None:
    clock.now = SATURDAY_03
    outcome = talk(TRADE_WASTE)
    # 16 working hours from Saturday night: all of Monday and all of Tuesday.
    assert "by 5pm on Tuesday 23 January" in outcome.text
    (row,) = state.db.query("select due_at from escalations")
    assert datetime.fromisoformat(row["due_at"]) == datetime(2024, 1, 23, 17, 0, tzinfo=UTC)


def test_safety_message_goes_to_safeguarding_at_once_out_of_hours(
    talk: Talk, clock: Clock, state: Store, rota: Config
) -> None:
    clock.now = SATURDAY_03
    outcome = talk(SELF_HARM)
    assert outcome.urgent is True
    assert outcome.officer == "safe"
    assert "Sol Reid" in outcome.text and outcome.reference in outcome.text
    (row,) = state.db.query("select * from escalations")
    assert row["urgent"] == 1
    assert row["officer"] == "safe"
    assert datetime.fromisoformat(row["due_at"]) <= SATURDAY_03.replace(hour=4)
    (notify,) = outbox(state, purpose="notify")
    assert (notify["platform"], notify["conversation"]) == ("cli", "safe")
    assert datetime.fromisoformat(notify["next_attempt_at"]) <= SATURDAY_03
    assert notify["text"].startswith("URGENT")
    # Delivered at 03:00 on a Saturday, not held until Monday.
    dispatcher = Dispatcher(state, {"cli": cli_sender(state, clock)}, clock)
    assert dispatcher.run_once() == 1
    (delivered,) = state.db.query("select * from officer_inbox")
    assert delivered["officer"] == "safe"
    assert outcome.reference in delivered["text"]
    assert "URGENT" in delivered["text"]


def test_urgent_escalation_is_reminded_then_passed_to_the_backup(
    talk: Talk, clock: Clock, state: Store, rota: Config
) -> None:
    clock.now = SATURDAY_03
    ref = talk(SELF_HARM).reference
    desk = Desk(state, rota, clock)
    clock.advance(minutes=29)
    assert desk.tick() == []
    clock.now = SATURDAY_03.replace(minute=30)
    (line,) = desk.tick()
    assert ref in line and "safe" in line
    clock.now = SATURDAY_03.replace(hour=4)
    (line,) = desk.tick()
    assert ref in line and "duty" in line
    (row,) = state.db.query("select * from escalations")
    assert row["officer"] == "duty"
    assert row["urgent"] == 1
    last = outbox(state, purpose="notify")[-1]
    assert (last["conversation"], last["ref"]) == ("duty", ref)
    assert last["text"].startswith("URGENT")


# -- configuration checks -------------------------------------------------------------------


def _officers(index: int, **change: object) -> list[dict]:
    """The test rota with one officer's keys changed."""
    officers = copy.deepcopy(OFFICERS)
    officers[index].update(change)
    return officers


@pytest.mark.parametrize(
    ("sections", "key"),
    [
        ({"officers": _officers(1, backup="ghost")}, "officers[1] (waste).backup"),
        ({"officers": _officers(0, backup="duty")}, "officers[0] (duty).backup"),
        ({"escalation": {"default_officer": "ghost"}}, "escalation.default_officer"),
        ({"escalation": {"safeguarding_officer": "ghost"}}, "escalation.safeguarding_officer"),
        ({"officers": _officers(0, contact="email:dana@example.org")}, "officers[0] (duty).contact"),
        ({"officers": _officers(1, contact="slack:")}, "officers[1] (waste).contact"),
        ({"officers": _officers(1, contact="telegram:@wyn")}, "officers[1] (waste).contact"),
        ({"officers": _officers(2, hours="9 to 5")}, "officers[2] (tax).hours"),
        ({"officers": _officers(2, hours="Mon-Fri 17:00-09:00")}, "officers[2] (tax).hours"),
        ({"officers": _officers(2, id="waste")}, "id 'waste' is used twice"),
        ({"escalation": {"reply_within_hours": 0}}, "escalation.reply_within_hours"),
        ({"escalation": {"remind_after_hours": -1}}, "escalation.remind_after_hours"),
        ({"escalation": {"remind_after_hours": 8, "reassign_after_hours": 4}}, "escalation.reassign_after_hours"),
        ({"escalation": {"timezone": "Mars/Olympus_Mons"}}, "escalation.timezone"),
        ({"escalation": {"reply_by": 4}}, "escalation.reply_by"),
        ({"officers": _officers(0, email="dana@example.org")}, "officers[0].email"),
        ({"officers": [{"id": "duty"}]}, "missing key 'name'"),
        ({"officers": _officers(0, topics="general")}, "officers[0].topics"),
        ({"officers": []}, "escalation.default_officer"),
    ],
    ids=[
        "unknown-backup",
        "own-backup",
        "unknown-default",
        "unknown-safeguarding",
        "contact-email",
        "contact-empty-slack",
        "contact-telegram-name",
        "hours-words",
        "hours-backwards",
        "duplicate-id",
        "reply-within-zero",
        "remind-negative",
        "reassign-before-remind",
        "unknown-timezone",
        "unknown-escalation-key",
        "unknown-officer-key",
        "officer-without-name",
        "topics-not-a-list",
        "no-officers",
    ],
)
def test_rota_problems_stop_the_config(tmp_path: Path, sections: dict, key: str) -> None:
    data = config_data()
    for name, value in sections.items():
        data[name] = {**data[name], **value} if isinstance(value, dict) else value
    with pytest.raises(ConfigError) as caught:
        parse(data, "site.toml", tmp_path)
    message = str(caught.value)
    assert message.startswith("site.toml: ")
    assert key in message
    assert "\n" not in message


def test_routing_problems_lists_every_problem() -> None:
    officers = [
        OfficerConfig(id="duty", name="Dana Price", backup="ghost", contact="fax"),
        OfficerConfig(id="duty", name="Dana Again", hours="whenever"),
    ]
    config = Config(
        officers=officers,
        escalation=EscalationConfig(default_officer="duty", safeguarding_officer="nobody", reply_within_hours=0),
    )
    problems = routing_problems(config)
    text = "\n".join(problems)
    for expected in (
        "used twice",
        "officers[0] (duty).backup",
        "officers[0] (duty).contact",
        "officers[1] (duty).hours",
        "escalation.safeguarding_officer",
        "escalation.reply_within_hours",
    ):
        assert expected in text
    assert "escalation.default_officer" not in text


def test_good_rotas_have_no_problems(rota: Config) -> None:
    assert routing_problems(rota) == []
    assert routing_problems(Config()) == []  # the built-in example team
    example = load(str(ROOT / "config.example.toml"))
    assert routing_problems(example) == []
    assert {o.id for o in example.officers} >= {example.escalation.default_officer}
