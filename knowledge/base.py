"""Read a built ``knowledge.db``: the run-time view of the knowledge base."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils


class KnowledgeBaseError(Exception):
    """The knowledge database is missing, unreadable or from another version."""


@dataclass(frozen=True)
class Answer:
    """One entry as the bot uses it at run time."""

    id: str
    kind: str
    topic: str
    audience: str
    answer: str
    follow_ups: tuple[str, ...]
    title: str


_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")


def reflow(text: str) -> str:
    """Join the hard-wrapped lines of each paragraph; keep blank lines and list items."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines: list[str] = []
        for line in block.splitlines():
            if lines and not _LIST_ITEM.match(line):
                lines[-1] = f"{lines[-1]} {line.strip()}"
            else:
                lines.append(line.strip())
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def title_of(entry_id: str, title: str) -> str:
    """A short human label for an entry: its title, else words from its id."""
    if title.strip():
        return title.strip()
    words = entry_id.rsplit(".", 1)[-1].replace("-", " ")
    return words[:1].upper() + words[1:]


class KnowledgeBase:
    """Entries, example questions and synonyms, loaded once, read-only."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise KnowledgeBaseError(f"{path}: no knowledge base here; run 'councilbot kb build' first")
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            db = sqlite_utils.Database(conn)
            entries = list(db.query("select * from entries order by id"))
            questions = list(db.query("select entry_id, question from questions order by entry_id, position"))
            synonyms = {r["phrase"]: r["replacement"] for r in db.query("select * from synonyms")}
            conn.close()
        except sqlite3.DatabaseError as error:
            raise KnowledgeBaseError(
                f"{path}: not a knowledge base ({error}); rebuild it with 'councilbot kb build'"
            ) from error
        self.path = path
        self.examples: list[tuple[str, str]] = [(q["entry_id"], q["question"]) for q in questions]
        self.synonyms: dict[str, str] = synonyms
        self.entries: dict[str, Answer] = {
            e["id"]: Answer(
                id=e["id"],
                kind=e["kind"],
                topic=e["topic"],
                audience=e["audience"],
                answer=reflow(e["answer"]),
                follow_ups=tuple(json.loads(e["follow_ups"] or "[]")),
                title=title_of(e["id"], e.get("title") or ""),
            )
            for e in entries
        }

    def get(self, entry_id: str) -> Answer | None:
        """The entry with this id, or None."""
        return self.entries.get(entry_id)

    def ids_of_kind(self, kind: str) -> list[str]:
        """Ids of every entry of one kind (``safety``, ``faq``...)."""
        return [e.id for e in self.entries.values() if e.kind == kind]

    def topics(self) -> set[str]:
        """Every topic an entry routes to."""
        return {e.topic for e in self.entries.values()}
