"""``/metrics`` in Prometheus text format, read from state.db at scrape time
(so the numbers survive restarts and need no counters in memory)."""

from __future__ import annotations

from datetime import datetime

from bot.store import Store


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(store: Store, now: datetime) -> str:
    """The metrics page."""
    lines = [
        "# HELP councilbot_messages_total Messages answered, by what the bot did.",
        "# TYPE councilbot_messages_total counter",
    ]
    for row in store.db.query(
        "select action, count(*) as n from messages where direction = 'out' group by action order by action"
    ):
        lines.append(f'councilbot_messages_total{{action="{_escape(row["action"] or "none")}"}} {row["n"]}')
    open_count = store.db.execute("select count(*) from escalations where status != 'closed'").fetchone()[0]
    overdue = store.db.execute(
        "select count(*) from escalations where status in ('open', 'claimed') and due_at != '' and due_at < ?",
        [now.isoformat()],
    ).fetchone()[0]
    urgent = store.db.execute("select count(*) from escalations where status != 'closed' and urgent = 1").fetchone()[0]
    backlog = store.db.execute("select count(*) from outbox where status in ('pending', 'sending')").fetchone()[0]
    failed = store.db.execute("select count(*) from outbox where status in ('failed', 'blocked')").fetchone()[0]
    for name, help_text, value in (
        ("councilbot_escalations_open", "Escalations not yet closed.", open_count),
        ("councilbot_escalations_overdue", "Open escalations past their reply-by time.", overdue),
        ("councilbot_escalations_urgent_open", "Safeguarding escalations not yet closed.", urgent),
        ("councilbot_outbox_backlog", "Messages waiting to be delivered.", backlog),
        ("councilbot_outbox_failed", "Messages that could not be delivered (failed or blocked).", failed),
    ):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]
    return "\n".join(lines) + "\n"
