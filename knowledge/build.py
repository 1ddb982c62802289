"""Compile content into ``knowledge.db``, atomically.

The database is written beside the target under a temporary name and moved
into place only when complete, so a failed or interrupted build leaves the
previous knowledge base untouched.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from knowledge.content import Content

SCHEMA_VERSION = 1


def build(content: Content, target: Path) -> dict[str, int]:
    """Write ``content`` to ``target``; return counts of what was written.

    The caller checks the content first; this only writes.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".knowledge-", suffix=".db", dir=target.parent)
    os.close(handle)
    try:
        db = sqlite_utils.Database(temporary, recreate=True)
        db["entries"].create(
            {
                "id": str,
                "kind": str,
                "topic": str,
                "audience": str,
                "answer": str,
                "title": str,
                "follow_ups": str,
                "source": str,
            },
            pk="id",
        )
        db["questions"].create(
            {"entry_id": str, "position": int, "question": str},
            pk=("entry_id", "position"),
            foreign_keys=[("entry_id", "entries", "id")],
        )
        db["synonyms"].create({"phrase": str, "replacement": str}, pk="phrase")
        db["meta"].create({"key": str, "value": str}, pk="key")
        db["entries"].insert_all(
            (
                {
                    "id": e.id,
                    "kind": e.kind,
                    "topic": e.topic,
                    "audience": e.audience,
                    "answer": e.answer,
                    "title": e.title,
                    "follow_ups": json.dumps(e.follow_ups),
                    "source": Path(e.source).name,
                }
                for e in content.entries
            ),
        )
        db["questions"].insert_all(
            (
                {"entry_id": e.id, "position": n, "question": q}
                for e in content.entries
                for n, q in enumerate(e.questions)
            ),
        )
        db["synonyms"].insert_all({"phrase": k, "replacement": v} for k, v in sorted(content.synonyms.items()))
        db["meta"].insert_all(
            [
                {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                {"key": "built_at", "value": datetime.now(UTC).isoformat(timespec="seconds")},
            ],
        )
        counts = {
            "entries": db["entries"].count,
            "questions": db["questions"].count,
            "synonyms": db["synonyms"].count,
        }
        db.close()
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return counts
