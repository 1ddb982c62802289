"""Validate content before it is built: every problem, named precisely."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

from intents.normalise import fold
from knowledge.content import AUDIENCES, KINDS, Content, Problem
from knowledge.placeholders import placeholders_in

MIN_QUESTIONS = 3
_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def check(content: Content, known_placeholders: Iterable[str], spec_ids: Iterable[str] = ()) -> list[Problem]:
    """All problems with ``content``: those found on loading, then these checks.

    ``known_placeholders`` are the names the configuration can fill;
    ``spec_ids`` are intent ids that must have an entry.
    """
    problems = list(content.problems)
    known = set(known_placeholders)
    seen: dict[str, str] = {}
    asked: dict[str, tuple[str, str]] = {}
    ids = {e.id for e in content.entries}
    for entry in content.entries:
        where, name = entry.source, entry.id
        if not _SLUG.match(entry.id):
            problems.append(Problem(where, name, "id", "use lower case letters, digits, '.', '-' only"))
        if entry.id in seen:
            problems.append(Problem(where, name, "id", f"duplicate id: also in {seen[entry.id]}"))
        seen.setdefault(entry.id, where)
        if entry.kind not in KINDS:
            problems.append(Problem(where, name, "kind", f"{entry.kind!r} is not one of {', '.join(KINDS)}"))
        if entry.audience not in AUDIENCES:
            problems.append(
                Problem(where, name, "audience", f"{entry.audience!r} is not one of {', '.join(AUDIENCES)}")
            )
        if not _SLUG.match(entry.topic):
            problems.append(Problem(where, name, "topic", "use lower case letters, digits and '-' only"))
        if len(entry.questions) < MIN_QUESTIONS:
            problems.append(
                Problem(where, name, "questions", f"has {len(entry.questions)}; write at least {MIN_QUESTIONS}")
            )
        for question in entry.questions:
            key = fold(question)
            if not key:
                problems.append(Problem(where, name, "questions", f"{question!r} has no words"))
                continue
            other = asked.get(key)
            if other is not None and other[0] != entry.id:
                problems.append(
                    Problem(where, name, "questions", f"{question!r} is also an example of {other[0]} ({other[1]})")
                )
            asked.setdefault(key, (entry.id, where))
        for placeholder in placeholders_in(entry.answer):
            if placeholder not in known:
                problems.append(
                    Problem(
                        where,
                        name,
                        "answer",
                        f"unknown placeholder {{{placeholder}}}: add it to [council] "
                        "(or [council.pages]) in the configuration, or fix the name",
                    )
                )
        for follow_up in entry.follow_ups:
            if follow_up not in ids:
                problems.append(Problem(where, name, "follow_ups", f"no entry has the id {follow_up!r}"))
    for spec_id in spec_ids:
        if spec_id not in seen:
            problems.append(Problem("spec", spec_id, "id", "the specification lists this intent; no entry has it"))
    return problems


def spec_ids(path: Path) -> tuple[list[str], list[Problem]]:
    """Intent ids listed in a specification file like ``kb-spec/intents.toml``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        return [], [Problem(str(path), "-", "-", f"cannot read the specification: {error}")]
    intents = data.get("intent", [])
    ids = [i["id"] for i in intents if isinstance(i, dict) and isinstance(i.get("id"), str)]
    if not ids:
        return [], [Problem(str(path), "-", "intent", "no [[intent]] with an id found")]
    return ids, []
