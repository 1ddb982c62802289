"""Remove personal data from text bound for logs and analytics.

Phone numbers, email addresses, postcodes, National Insurance numbers and
payment card numbers are replaced by a label in brackets. Patterns are UK
shaped and err towards removing too much.
"""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("card number", re.compile(r"\b(?:\d[ -]?){12,18}\d\b")),
    ("national insurance number", re.compile(r"\b[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b", re.I)),
    ("postcode", re.compile(r"(?<!CB-)\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.I)),
    ("phone number", re.compile(r"(?<![\w+])(?:\+44\s?\(?0?\)?\s?|0)\d(?:[\s-]?\d){8,9}\b")),
]


def redact(text: str) -> str:
    """``text`` with personal data replaced by labels such as ``[phone number]``."""
    for label, pattern in _PATTERNS:
        text = pattern.sub(f"[{label}]", text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True
