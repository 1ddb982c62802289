"""Read the reviewed content files (``knowledge/content/*.toml``).

Loading never raises on bad content: every problem comes back as a
``Problem`` naming the file, the entry and the field, so an officer sees
the whole list at once.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

BUNDLED = Path(__file__).resolve().parent / "content"
"""The content shipped with councilbot."""

SYNONYMS_FILE = "synonyms.toml"
KINDS = ("faq", "smalltalk", "safety", "handoff", "route")
AUDIENCES = ("resident", "councillor", "officer", "anyone")
REQUIRED = ("id", "kind", "topic", "audience", "questions", "answer")
OPTIONAL = ("title", "follow_ups")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the content, printed as ``file: entry: field: what``."""

    file: str
    entry: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.entry}: {self.field}: {self.message}"


@dataclass
class Entry:
    """One intent's content: who asks, how they ask, and the answer."""

    id: str
    kind: str
    topic: str
    audience: str
    questions: list[str]
    answer: str
    follow_ups: list[str] = field(default_factory=list)
    title: str = ""
    source: str = ""

    def as_dict(self) -> dict:
        """The entry as plain data, in the field order of the content files."""
        return {
            "id": self.id,
            "kind": self.kind,
            "topic": self.topic,
            "audience": self.audience,
            "questions": list(self.questions),
            "answer": self.answer,
            "title": self.title,
            "follow_ups": list(self.follow_ups),
        }


@dataclass
class Content:
    """Everything read from a content folder, with what was wrong with it."""

    entries: list[Entry] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _read_toml(path: Path, content: Content) -> dict | None:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        content.problems.append(Problem(str(path), "-", "-", f"not UTF-8 text (byte {error.start}); save it as UTF-8"))
    except tomllib.TOMLDecodeError as error:
        content.problems.append(Problem(str(path), "-", "-", f"not valid TOML: {error}"))
    except OSError as error:
        content.problems.append(Problem(str(path), "-", "-", f"cannot read: {error.strerror}"))
    return None


def _entry(path: Path, number: int, raw: object, content: Content) -> Entry | None:
    where = str(path)
    if not isinstance(raw, dict):
        content.problems.append(Problem(where, f"entry {number}", "-", "must be a table"))
        return None
    name = raw.get("id") if isinstance(raw.get("id"), str) and raw.get("id") else f"entry {number}"
    bad = len(content.problems)
    for key in raw:
        if key not in REQUIRED + OPTIONAL:
            allowed = ", ".join(REQUIRED + OPTIONAL)
            content.problems.append(Problem(where, name, key, f"unknown field (allowed: {allowed})"))
    for key in REQUIRED:
        if key not in raw:
            content.problems.append(Problem(where, name, key, "missing"))
    for key in ("id", "kind", "topic", "audience", "answer", "title"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            content.problems.append(Problem(where, name, key, "must be non-empty text"))
    for key in ("questions", "follow_ups"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            content.problems.append(Problem(where, name, key, "must be a list of non-empty texts"))
    if len(content.problems) > bad:
        return None
    return Entry(
        id=raw["id"].strip(),
        kind=raw["kind"].strip(),
        topic=raw["topic"].strip(),
        audience=raw["audience"].strip(),
        questions=[q.strip() for q in raw["questions"]],
        answer=raw["answer"].strip(),
        follow_ups=[f.strip() for f in raw.get("follow_ups", [])],
        title=raw.get("title", "").strip(),
        source=where,
    )


def load(folder: Path = BUNDLED) -> Content:
    """Read every ``*.toml`` file in ``folder``: entries and synonyms."""
    content = Content()
    if not folder.is_dir():
        content.problems.append(Problem(str(folder), "-", "-", "no such content folder"))
        return content
    for path in sorted(folder.glob("*.toml")):
        data = _read_toml(path, content)
        if data is None:
            continue
        if path.name == SYNONYMS_FILE:
            _synonyms(path, data, content)
            continue
        for key in data:
            if key != "entry":
                content.problems.append(Problem(str(path), "-", key, "unknown table; entries go in [[entry]]"))
        entries = data.get("entry", [])
        if not isinstance(entries, list):
            content.problems.append(Problem(str(path), "-", "entry", "write entries as [[entry]]"))
            continue
        for number, raw in enumerate(entries, 1):
            entry = _entry(path, number, raw, content)
            if entry is not None:
                content.entries.append(entry)
    return content


def _synonyms(path: Path, data: dict, content: Content) -> None:
    for section, table in data.items():
        if not isinstance(table, dict):
            content.problems.append(Problem(str(path), section, "-", 'must be a table of "word" = "replacement"'))
            continue
        for key, value in table.items():
            if not isinstance(value, str):
                content.problems.append(Problem(str(path), section, key, "replacement must be text"))
            elif key.casefold() in content.synonyms and content.synonyms[key.casefold()] != value:
                content.problems.append(Problem(str(path), section, key, "defined twice with different replacements"))
            else:
                content.synonyms[key.casefold()] = value
