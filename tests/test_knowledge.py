"""knowledge: content loading, checks, the build, the reader, placeholders, exchange."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
import tomli_w

from knowledge import build, check, content, exchange, placeholders
from knowledge.base import KnowledgeBase, KnowledgeBaseError, reflow, title_of
from knowledge.content import Content, Entry

KNOWN = {"council.name", "council.phone", "page.missed_bin", "page.bin_day"}


def entry(**changes: object) -> dict:
    """A valid raw entry (as written in a content file), with ``changes``."""
    raw: dict = {
        "id": "service.bins.missed",
        "kind": "faq",
        "topic": "waste",
        "audience": "resident",
        "questions": ["my bin was missed", "missed bin", "bin men skipped our street"],
        "answer": "Sorry. Report it at {page.missed_bin}.",
    }
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def write(folder: Path, name: str, *entries: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(tomli_w.dumps({"entry": list(entries)}), encoding="utf-8")
    return path


def problems_of(folder: Path, spec: list[str] = ()) -> list[str]:
    return [str(p) for p in check.check(content.load(folder), KNOWN, spec)]


# -- content.load -----------------------------------------------------------------


def test_load_valid_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "streets.toml",
        entry(title="Missed bin", follow_ups=["service.bins.day"]),
        entry(id="service.bins.day", questions=["bin day?", "when is my bin day", "which day are bins"]),
    )
    loaded = content.load(tmp_path)
    assert loaded.problems == []
    assert [e.id for e in loaded.entries] == ["service.bins.missed", "service.bins.day"]
    first = loaded.entries[0]
    assert first.kind == "faq"
    assert first.questions == ["my bin was missed", "missed bin", "bin men skipped our street"]
    assert first.follow_ups == ["service.bins.day"]
    assert first.title == "Missed bin"
    assert first.source == str(path)
    assert check.check(loaded, KNOWN) == []


def test_load_reads_synonyms_file(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", entry())
    (tmp_path / "synonyms.toml").write_text('[waste]\n"Rubbish" = "bin"\n"refuse" = "bin"\n', encoding="utf-8")
    loaded = content.load(tmp_path)
    assert loaded.problems == []
    assert loaded.synonyms == {"rubbish": "bin", "refuse": "bin"}


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "good.toml", entry())
    bad = tmp_path / "bad.toml"
    bad.write_text('[[entry]]\nid = "x"\nkind = "faq"\ntopic = \n', encoding="utf-8")
    loaded = content.load(tmp_path)
    assert len(loaded.problems) == 1
    message = str(loaded.problems[0])
    assert str(bad) in message
    assert "line 4" in message
    assert [e.id for e in loaded.entries] == ["service.bins.missed"]  # the good file still loads


def test_not_utf8_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    (tmp_path / "latin.toml").write_bytes(b'[[entry]]\nid = "caf\xe9"\n')
    loaded = content.load(tmp_path)
    assert len(loaded.problems) == 1
    assert "latin.toml" in str(loaded.problems[0])
    assert "UTF-8" in str(loaded.problems[0])


def test_missing_folder_is_a_problem(tmp_path: Path) -> None:
    loaded = content.load(tmp_path / "nowhere")
    assert loaded.entries == []
    assert "no such content folder" in str(loaded.problems[0])


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (entry(answer=None), "answer", "missing"),
        (entry(topic=None), "topic", "missing"),
        (entry(questions=None), "questions", "missing"),
        (entry(kind=3), "kind", "non-empty text"),
        (entry(answer=""), "answer", "non-empty text"),
        (entry(questions="missed bin"), "questions", "list"),
        (entry(questions=["ok", 5, "fine"]), "questions", "list"),
        (entry(follow_ups="service.other"), "follow_ups", "list"),
        (entry(colour="blue"), "colour", "unknown field"),
    ],
)
def test_entry_problems_name_file_entry_and_field(tmp_path: Path, raw: dict, field: str, words: str) -> None:
    path = write(tmp_path, "streets.toml", raw)
    loaded = content.load(tmp_path)
    assert loaded.entries == []
    assert len(loaded.problems) == 1
    problem = loaded.problems[0]
    assert problem.file == str(path)
    assert problem.entry == "service.bins.missed"
    assert problem.field == field
    assert words in problem.message
    assert str(problem) == f"{path}: service.bins.missed: {field}: {problem.message}"


def test_entry_without_id_is_named_by_number(tmp_path: Path) -> None:
    write(tmp_path, "streets.toml", entry(), entry(id=None))
    loaded = content.load(tmp_path)
    assert [(p.entry, p.field) for p in loaded.problems] == [("entry 2", "id")]


def test_unknown_top_level_table(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text(tomli_w.dumps({"entry": [entry()], "entries": [entry(id="b")]}), encoding="utf-8")
    loaded = content.load(tmp_path)
    assert [(p.file, p.field) for p in loaded.problems] == [(str(path), "entries")]


# -- check.check ------------------------------------------------------------------


def test_duplicate_id_across_two_files(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", entry())
    write(tmp_path, "b.toml", entry(questions=["bin missed again", "no bin pick up", "they forgot my bin"]))
    problems = problems_of(tmp_path)
    assert len(problems) == 1
    assert "b.toml: service.bins.missed: id: duplicate id" in problems[0]
    assert "a.toml" in problems[0]


def test_same_question_under_two_intents(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", entry())
    write(
        tmp_path,
        "b.toml",
        entry(id="service.bins.day", questions=["when is my bin day", "My bin was missed!", "bin day"]),
    )
    problems = problems_of(tmp_path)
    assert len(problems) == 1
    assert "service.bins.day: questions:" in problems[0]
    assert "service.bins.missed" in problems[0]


def test_unknown_placeholder(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", entry(answer="Call {council.phone} or see {page.no_such_page}. Literal {{braces}}."))
    problems = problems_of(tmp_path)
    assert len(problems) == 1
    assert "service.bins.missed: answer:" in problems[0]
    assert "page.no_such_page" in problems[0]


def test_unknown_follow_up(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", entry(follow_ups=["service.nope"]))
    problems = problems_of(tmp_path)
    assert len(problems) == 1
    assert "follow_ups" in problems[0]
    assert "service.nope" in problems[0]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "question"}, "kind"),
        ({"audience": "everyone"}, "audience"),
        ({"id": "Service Bins"}, "id"),
        ({"topic": "Waste Services"}, "topic"),
        ({"questions": ["one", "two"]}, "questions"),
        ({"questions": ["one", "two", "???"]}, "questions"),
    ],
)
def test_bad_values(tmp_path: Path, changes: dict, field: str) -> None:
    write(tmp_path, "a.toml", entry(**changes))
    problems = problems_of(tmp_path)
    assert len(problems) == 1
    assert f": {field}: " in problems[0]


def test_missing_spec_id(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", entry())
    spec = tmp_path / "spec" / "intents.toml"
    spec.parent.mkdir()
    spec.write_text(
        '[[intent]]\nid = "service.bins.missed"\n\n[[intent]]\nid = "service.roads.pothole"\n', encoding="utf-8"
    )
    ids, spec_problems = check.spec_ids(spec)
    assert ids == ["service.bins.missed", "service.roads.pothole"]
    assert spec_problems == []
    problems = problems_of(tmp_path, ids)
    assert len(problems) == 1
    assert "service.roads.pothole" in problems[0]
    assert ": id: " in problems[0]


def test_unreadable_spec(tmp_path: Path) -> None:
    ids, problems = check.spec_ids(tmp_path / "missing.toml")
    assert ids == []
    assert len(problems) == 1
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing\n", encoding="utf-8")
    ids, problems = check.spec_ids(empty)
    assert ids == []
    assert "no [[intent]]" in str(problems[0])


def test_bundled_content_checks_clean() -> None:
    loaded = content.load()
    known = {p for e in loaded.entries for p in placeholders.placeholders_in(e.answer)}
    assert loaded.entries
    assert check.check(loaded, known) == []


# -- build and KnowledgeBase --------------------------------------------------------


def small_content(folder: Path) -> Content:
    write(
        folder,
        "a.toml",
        entry(
            title="Missed bin",
            follow_ups=["service.bins.day"],
            answer="Sorry your bin was missed.\nReport it at {page.missed_bin}\nand we will come back.\n\n"
            "- put it out by 7am\n- keep the lid shut",
        ),
        entry(id="service.bins.day", questions=["bin day?", "when is my bin day", "which day are bins"]),
    )
    (folder / "synonyms.toml").write_text('[waste]\n"rubbish" = "bin"\n', encoding="utf-8")
    loaded = content.load(folder)
    assert loaded.problems == []
    return loaded


def test_build_then_read(tmp_path: Path) -> None:
    loaded = small_content(tmp_path / "content")
    target = tmp_path / "out" / "knowledge.db"
    counts = build.build(loaded, target)
    assert counts == {"entries": 2, "questions": 6, "synonyms": 1}
    kb = KnowledgeBase(target)
    assert set(kb.entries) == {"service.bins.missed", "service.bins.day"}
    assert kb.examples == [
        ("service.bins.day", "bin day?"),
        ("service.bins.day", "when is my bin day"),
        ("service.bins.day", "which day are bins"),
        ("service.bins.missed", "my bin was missed"),
        ("service.bins.missed", "missed bin"),
        ("service.bins.missed", "bin men skipped our street"),
    ]
    assert kb.synonyms == {"rubbish": "bin"}
    missed = kb.get("service.bins.missed")
    assert missed is not None
    assert missed.title == "Missed bin"
    assert kb.get("service.bins.day").title == "Day"  # from the id
    assert missed.follow_ups == ("service.bins.day",)
    assert missed.answer == (
        "Sorry your bin was missed. Report it at {page.missed_bin} and we will come back.\n\n"
        "- put it out by 7am\n- keep the lid shut"
    )
    assert kb.ids_of_kind("faq") == ["service.bins.day", "service.bins.missed"]
    assert kb.topics() == {"waste"}
    assert kb.get("nope") is None
    assert [p.name for p in target.parent.iterdir()] == ["knowledge.db"]  # no temporary left


def test_failed_build_leaves_previous_database(tmp_path: Path) -> None:
    loaded = small_content(tmp_path / "content")
    target = tmp_path / "knowledge.db"
    build.build(loaded, target)
    before = target.read_bytes()
    broken = Content([*loaded.entries, loaded.entries[0]], dict(loaded.synonyms))  # duplicate primary key
    with pytest.raises(sqlite3.IntegrityError):
        build.build(broken, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content", "knowledge.db"]
    assert len(KnowledgeBase(target).entries) == 2


def test_interrupted_build_leaves_previous_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = small_content(tmp_path / "content")
    target = tmp_path / "knowledge.db"
    build.build(loaded, target)
    before = target.read_bytes()

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(build.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        build.build(Content(loaded.entries[:1], {}), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content", "knowledge.db"]


def test_build_into_a_file_as_folder_fails_cleanly(tmp_path: Path) -> None:
    loaded = small_content(tmp_path / "content")
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(OSError):
        build.build(loaded, blocker / "knowledge.db")
    assert blocker.read_text(encoding="utf-8") == "not a folder"


def test_knowledge_base_errors(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match="kb build"):
        KnowledgeBase(tmp_path / "missing.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(KnowledgeBaseError):
        KnowledgeBase(junk)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one\ntwo\nthree", "one two three"),
        ("one\n\ntwo", "one\n\ntwo"),
        ("intro\n- a\n- b", "intro\n- a\n- b"),
        ("steps:\n1. first\n2. second\n   continued", "steps:\n1. first\n2. second continued"),
        ("  padded  \n", "padded"),
    ],
)
def test_reflow(text: str, expected: str) -> None:
    assert reflow(text) == expected


@pytest.mark.parametrize(
    ("entry_id", "title", "expected"),
    [
        ("service.bins.missed", "", "Missed"),
        ("service.bins.bulky-waste", "", "Bulky waste"),
        ("handoff.human", "  Talk to a person ", "Talk to a person"),
    ],
)
def test_title_of(entry_id: str, title: str, expected: str) -> None:
    assert title_of(entry_id, title) == expected


# -- placeholders -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call {council.phone}.", "Call 01632 960000."),
        ("See { page.bin_day } now", "See https://example/bin now"),
        ("{council.name}: {council.phone}", "Example Council: 01632 960000"),
        ("Literal {{council.phone}} braces", "Literal {council.phone} braces"),
        ("A {{ and a }}", "A { and a }"),
        ("Unknown {page.nope} stays", "Unknown {page.nope} stays"),
        ("No placeholders", "No placeholders"),
    ],
)
def test_render(text: str, expected: str) -> None:
    values = {"council.phone": "01632 960000", "council.name": "Example Council", "page.bin_day": "https://example/bin"}
    assert placeholders.render(text, values) == expected


def test_placeholders_in() -> None:
    assert placeholders.placeholders_in("{a} {{b}} { c } {{ {d} }}") == ["a", "c", "d"]


def test_render_does_not_reexpand_values() -> None:
    assert placeholders.render("{x}", {"x": "{y}", "y": "no"}) == "{y}"


# -- exchange ---------------------------------------------------------------------

TRICKY = [
    Entry(
        id="service.bins.missed",
        kind="faq",
        topic="waste",
        audience="resident",
        questions=[
            'my "green" bin, the big one, was missed',
            "bin wasn't emptied; again!",
            "caf\u00e9 bins \u2014 na\u00efve",
        ],
        answer='Sorry.\nReport it at {page.missed_bin}, "quickly".\n\n- one\n- two',
        follow_ups=["service.bins.day"],
        title="Missed bin, again",
    ),
    Entry(
        id="service.bins.day",
        kind="faq",
        topic="waste",
        audience="anyone",
        questions=["Pryd mae fy miniau\u2019n cael eu casglu?", "\u6211\u7684\u5783\u573e\u6876", "bin day?"],
        answer="Look it up at {page.bin_day}.",
    ),
]


def tricky(folder: Path) -> list[Entry]:
    return [Entry(**{**e.__dict__, "source": str(folder / "streets.toml")}) for e in TRICKY]


def test_to_jsonl(tmp_path: Path) -> None:
    entries = tricky(tmp_path)
    lines = exchange.to_jsonl(entries).splitlines()
    assert len(lines) == len(entries)
    for line, original in zip(lines, entries, strict=True):
        row = json.loads(line)
        assert {"id", "topic", "questions", "answer"} <= set(row)
        assert row["id"] == original.id
        assert row["topic"] == original.topic
        assert row["questions"] == original.questions
        assert row["answer"] == original.answer
        assert row["source"] == "streets.toml"


def test_csv_round_trip(tmp_path: Path) -> None:
    entries = tricky(tmp_path)
    path = tmp_path / "faqs.csv"
    path.write_text(exchange.to_csv(entries), encoding="utf-8-sig", newline="")
    imported = exchange.read_csv(path, tmp_path)
    assert imported.problems == []
    assert imported.entries == entries


def test_csv_has_one_row_per_entry(tmp_path: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(exchange.to_csv(tricky(tmp_path)), newline="")))
    assert [r["id"] for r in rows] == ["service.bins.missed", "service.bins.day"]
    assert tuple(rows[0]) == exchange.COLUMNS
    assert rows[0]["questions"].split("\n") == TRICKY[0].questions


def test_csv_round_trip_through_files(tmp_path: Path) -> None:
    folder = tmp_path / "content"
    folder.mkdir()
    entries = tricky(folder)
    exchange.write_files(Content(entries, {}), {str(folder / "streets.toml")})
    loaded = content.load(folder)
    assert loaded.problems == []
    assert loaded.entries == entries


def test_import_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "faqs.csv"
    path.write_text("id,kind,topic,audience,questions\nx,faq,waste,resident,q\n", encoding="utf-8")
    imported = exchange.read_csv(path, tmp_path)
    assert imported.entries == []
    assert len(imported.problems) == 1
    assert imported.problems[0].field == "answer"
    assert "missing column" in imported.problems[0].message


def test_import_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "faqs.csv"
    path.write_bytes(b"id,kind,topic,audience,questions,answer\nx,faq,waste,resident,caf\xe9,a\n")
    imported = exchange.read_csv(path, tmp_path)
    assert imported.entries == []
    assert "UTF-8" in str(imported.problems[0])


def test_import_bad_source(tmp_path: Path) -> None:
    rows = exchange.to_csv(tricky(tmp_path)).replace("streets.toml", "../evil.toml", 1)
    path = tmp_path / "faqs.csv"
    path.write_text(rows, encoding="utf-8", newline="")
    imported = exchange.read_csv(path, tmp_path)
    assert [p.field for p in imported.problems] == ["source"]


def test_import_problem_names_the_right_line(tmp_path: Path) -> None:
    path = tmp_path / "faqs.csv"
    path.write_text(
        "id,kind,topic,audience,questions,answer,source\n"
        "a.one,faq,waste,resident,q1,ans,../bad.toml\n"
        "a.two,faq,waste,resident,q2,ans,ok.toml\n"
        "a.three,faq,waste,resident,q3,ans,ok.toml\n",
        encoding="utf-8",
    )
    imported = exchange.read_csv(path, tmp_path)
    assert [e.id for e in imported.entries] == ["a.two", "a.three"]
    (problem,) = imported.problems
    assert problem.entry == "a.one"
    assert problem.file == f"{path}:2"  # the bad row is on line 2 of the file


def _config_for(tmp_path: Path, folder: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\ncontent_dir = "{folder.name}"\nknowledge_db = "data/knowledge.db"\nstate_db = "data/state.db"\n',
        encoding="utf-8",
    )
    return config


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda text: text.replace("answer", "reply", 1), id="missing-column"),
        pytest.param(lambda text: text.replace(",faq,", ",question,", 1), id="bad-kind"),
        pytest.param(lambda text: text.replace("{page.bin_day}", "{page.unknown}", 1), id="bad-placeholder"),
    ],
)
def test_import_rejects_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str], edit) -> None:
    from bot import cli

    folder = tmp_path / "content"
    folder.mkdir()
    exchange.write_files(Content(tricky(folder), {}), {str(folder / "streets.toml")})
    before = _snapshot(folder)
    csv_path = tmp_path / "faqs.csv"
    csv_path.write_text(edit(exchange.to_csv(content.load(folder).entries)), encoding="utf-8", newline="")
    status = cli.main(["--config", str(_config_for(tmp_path, folder)), "kb", "import", str(csv_path)])
    captured = capsys.readouterr()
    assert status == 1
    assert "no content file was changed" in captured.err
    assert _snapshot(folder) == before


def test_import_updates_and_adds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot import cli

    folder = tmp_path / "content"
    folder.mkdir()
    exchange.write_files(Content(tricky(folder), {}), {str(folder / "streets.toml")})
    rows = list(csv.DictReader(io.StringIO(exchange.to_csv(content.load(folder).entries), newline="")))
    rows[1]["answer"] = "New answer: {page.bin_day}."
    rows.append(
        {
            "id": "service.roads.pothole",
            "kind": "faq",
            "topic": "highways",
            "audience": "resident",
            "title": "",
            "questions": "pothole\nhole in road\nreport a pothole",
            "answer": "Report it to {council.name}.",
            "follow_ups": "",
            "source": "",
        }
    )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=exchange.COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    csv_path = tmp_path / "faqs.csv"
    csv_path.write_text(out.getvalue(), encoding="utf-8", newline="")
    status = cli.main(["--config", str(_config_for(tmp_path, folder)), "kb", "import", str(csv_path)])
    capsys.readouterr()
    assert status == 0
    loaded = content.load(folder)
    assert loaded.problems == []
    by_id = {e.id: e for e in loaded.entries}
    assert set(by_id) == {"service.bins.missed", "service.bins.day", "service.roads.pothole"}
    assert by_id["service.bins.day"].answer == "New answer: {page.bin_day}."
    assert by_id["service.bins.missed"].questions == TRICKY[0].questions
    assert by_id["service.roads.pothole"].source == str(folder / exchange.IMPORTED_FILE)
