"""Structured logs: one JSON object per line, one line per event.

Message text and personal data stay out of INFO: events carry ids, actions
and counts, not what people wrote.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from bot.redact import RedactingFilter, redact

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line with its extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        entry.update({k: redact(v) if isinstance(v, str) else v for k, v in extras.items()})
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info).splitlines()[-1])
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str = "INFO") -> None:
    """Send councilbot's and its libraries' logs to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "telegram", "slack_sdk", "slack_bolt", "uvicorn.error", "aiohttp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
