"""Secrets (tokens, signing secrets) come from environment variables only,
and never print: ``repr`` and ``str`` show stars, ``reveal()`` gives the value."""

from __future__ import annotations

import os
from collections.abc import Mapping


class Secret:
    """A secret value that does not leak into logs, tracebacks or reprs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one call that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def from_env(name: str, env: Mapping[str, str] | None = None) -> Secret | None:
    """The environment variable ``name`` as a Secret, or None if unset or empty."""
    value = (env if env is not None else os.environ).get(name, "").strip()
    return Secret(value) if value else None
