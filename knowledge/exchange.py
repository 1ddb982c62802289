"""Round trips through a spreadsheet: export to JSONL or CSV, import CSV.

Officers edit FAQs in Excel. In CSV a cell holds one example question per
line; ``source`` names the content file an entry lives in. Import adds and
updates entries (it never deletes one) and writes nothing at all unless the
whole result passes ``kb check``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from knowledge.content import Content, Entry, Problem

COLUMNS = ("id", "kind", "topic", "audience", "title", "questions", "answer", "follow_ups", "source")
REQUIRED_COLUMNS = ("id", "kind", "topic", "audience", "questions", "answer")
IMPORTED_FILE = "imported.toml"


def to_jsonl(entries: Iterable[Entry]) -> str:
    """One JSON object per entry and line."""
    return "".join(
        json.dumps(entry.as_dict() | {"source": Path(entry.source).name}, ensure_ascii=False) + "\n"
        for entry in entries
    )


def to_csv(entries: Iterable[Entry]) -> str:
    """A spreadsheet: one row per entry, questions one per line in their cell."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for entry in entries:
        row = entry.as_dict()
        row["questions"] = "\n".join(entry.questions)
        row["follow_ups"] = "\n".join(entry.follow_ups)
        row["source"] = Path(entry.source).name
        writer.writerow(row)
    return out.getvalue()


@dataclass
class Imported:
    """What an import read: entries by row, and what was wrong."""

    entries: list[Entry]
    problems: list[Problem]


def _lines(cell: str) -> list[str]:
    return [line.strip() for line in cell.replace("\r", "\n").split("\n") if line.strip()]


def read_csv(path: Path, folder: Path) -> Imported:
    """Read entries from a CSV file exported (and edited) as by ``to_csv``."""
    problems: list[Problem] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        return Imported(
            [], [Problem(str(path), "-", "-", f"not UTF-8 (byte {error.start}); in Excel save as 'CSV UTF-8'")]
        )
    except OSError as error:
        return Imported([], [Problem(str(path), "-", "-", f"cannot read: {error.strerror}")])
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        return Imported([], [Problem(str(path), "line 1", ",".join(missing), "missing column(s) in the header row")])
    entries = []
    rows = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as error:
        return Imported([], [Problem(str(path), f"line {reader.line_num}", "-", f"not valid CSV: {error}")])
    for line, row in rows:
        where = f"{path}:{line}"
        entry_id = (row.get("id") or "").strip()
        if not entry_id:
            if any((v or "").strip() for k, v in row.items() if k):
                problems.append(Problem(str(path), f"row for {row.get('title') or '?'}", "id", "missing"))
            continue
        source = (row.get("source") or "").strip() or IMPORTED_FILE
        if Path(source).name != source or not source.endswith(".toml"):
            problems.append(Problem(where, entry_id, "source", f"{source!r} must be a file name ending .toml"))
            continue
        entries.append(
            Entry(
                id=entry_id,
                kind=(row.get("kind") or "").strip(),
                topic=(row.get("topic") or "").strip(),
                audience=(row.get("audience") or "").strip(),
                questions=_lines(row.get("questions") or ""),
                answer=(row.get("answer") or "").strip(),
                follow_ups=_lines(row.get("follow_ups") or ""),
                title=(row.get("title") or "").strip(),
                source=str(folder / source),
            )
        )
    return Imported(entries, problems)


def merge(content: Content, incoming: list[Entry]) -> Content:
    """``content`` with ``incoming`` entries replacing same-id ones or added."""
    replaced = {e.id: e for e in incoming}
    kept = [replaced.pop(e.id, e) for e in content.entries]
    fresh = [e for e in incoming if e.id in replaced]
    return Content(kept + fresh, dict(content.synonyms), list(content.problems))


def write_files(content: Content, only: set[str]) -> list[Path]:
    """Rewrite the content files named in ``only`` from ``content``."""
    by_file: dict[str, list[Entry]] = {}
    for entry in content.entries:
        by_file.setdefault(entry.source, []).append(entry)
    written = []
    for source in sorted(only):
        rows = []
        for entry in by_file.get(source, []):
            data = entry.as_dict()
            if not data["title"]:
                del data["title"]
            if not data["follow_ups"]:
                del data["follow_ups"]
            rows.append(data)
        path = Path(source)
        header = f"# {path.stem}: written by 'councilbot kb import'; edit freely.\n\n"
        temporary = path.with_suffix(".toml.tmp")
        temporary.write_text(header + tomli_w.dumps({"entry": rows}, multiline_strings=True), encoding="utf-8")
        temporary.replace(path)
        written.append(path)
    return written
