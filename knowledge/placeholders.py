"""Council details in answers: ``{council.phone}``, ``{page.bin_day}``.

Content never hard-codes a council's name, number or web pages; it names a
placeholder that the configuration fills. ``{{`` and ``}}`` are literal
braces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def placeholders_in(text: str) -> list[str]:
    """Names of the placeholders in ``text``, in order (``{{``/``}}`` skipped)."""
    return [m.group(1).strip() for m in _PLACEHOLDER.finditer(text) if m.group(1) is not None]


def render(text: str, values: Mapping[str, str]) -> str:
    """Fill every placeholder of ``text`` from ``values``.

    An unknown placeholder is left visible as written rather than raising:
    ``kb check`` is where unknown names are reported.
    """

    def fill(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return m.group(0)[0]
        return values.get(m.group(1).strip(), m.group(0))

    return _PLACEHOLDER.sub(fill, text)
