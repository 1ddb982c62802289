"""bot.cli: the ``councilbot`` command, run as a real subprocess in tmp_path."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from knowledge import content

SPEC = Path("/work/shared/kb-spec/intents.toml")
JSON_KEYS = {"text", "action", "intent", "confidence", "options", "officer", "reply"}
PROBLEM_LINE = re.compile(r"^\S.*\.toml: [^:]+: [^:]+: .+$")


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COUNCILBOT_CONFIG", "PYTHONIOENCODING", "PYTHONUTF8")}
    env.update(extra)
    return env


def run(
    cwd: Path, *args: str, stdin: bytes | str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        input=data if data is not None else b"",
        capture_output=True,
        env=env or base_env(),
        timeout=60,
        check=False,
    )
    assert b"Traceback" not in result.stderr, result.stderr.decode("utf-8", "replace")
    return result


def out(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stdout.decode("utf-8")


def err(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stderr.decode("utf-8")


def entry(**changes: object) -> dict:
    raw: dict = {
        "id": "service.bins.missed",
        "kind": "faq",
        "topic": "waste",
        "audience": "resident",
        "title": "Missed bin",
        "questions": ["my bin was missed", "missed bin collection", "the bin men skipped my street"],
        "answer": "Report a missed bin at {page.missed_bin}.",
    }
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def small_site(tmp_path: Path) -> Path:
    """A ./config.toml in tmp_path whose content folder holds two good entries."""
    folder = tmp_path / "content"
    folder.mkdir()
    (folder / "streets.toml").write_text(
        tomli_w.dumps(
            {
                "entry": [
                    entry(),
                    entry(
                        id="service.roads.pothole",
                        topic="highways",
                        title="Potholes",
                        questions=["report a pothole", "pothole in my road", "huge hole in the road surface"],
                        answer="Report a pothole at {page.report_pothole}.",
                    ),
                ]
            }
        ),
        encoding="utf-8",
    )
    (tmp_path / "config.toml").write_text(
        '[council]\nname = "Testshire Council"\n\n[storage]\ncontent_dir = "content"\n', encoding="utf-8"
    )
    return folder


# -- help -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [[], ["chat"], ["ask"], ["kb"], ["kb", "build"], ["kb", "check"], ["kb", "export"], ["kb", "import"]],
)
def test_help(tmp_path: Path, command: list[str]) -> None:
    result = run(tmp_path, *command, "--help")
    assert result.returncode == 0
    assert "usage: councilbot" in out(result)
    if command and command != ["kb"]:
        assert "Example:" in out(result)


def test_installed_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "councilbot"
    assert script.is_file()
    result = subprocess.run(
        [str(script), "ask", "--json", "hello"], cwd=tmp_path, capture_output=True, env=base_env(), timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == "hello"
    assert (tmp_path / "data" / "knowledge.db").is_file()


# -- ask ----------------------------------------------------------------------------


def test_ask_prints_a_reply(tmp_path: Path) -> None:
    plain = run(tmp_path, "ask", "when is my bin day")
    assert plain.returncode == 0
    assert out(plain).strip()
    assert not out(plain).lstrip().startswith("{")
    as_json = run(tmp_path, "ask", "--json", "when is my bin day")
    assert out(plain) == json.loads(out(as_json))["reply"] + "\n"
    assert (tmp_path / "data" / "knowledge.db").is_file()
    assert not (tmp_path / "data" / "state.db").exists()  # ask keeps no state


@pytest.mark.parametrize("text", ["hello", "when is my bin day", "bin", "what is the capital of australia", ""])
def test_ask_json(tmp_path: Path, text: str) -> None:
    result = run(tmp_path, "ask", "--json", text)
    assert result.returncode == 0
    lines = out(result).splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert set(data) == JSON_KEYS
    assert data["text"] == text
    assert data["action"] in ("answer", "clarify", "escalate")
    assert isinstance(data["confidence"], int | float) and 0 <= data["confidence"] <= 1
    assert isinstance(data["options"], list)
    assert isinstance(data["reply"], str) and data["reply"]
    if data["action"] == "answer":
        assert data["intent"]
    if data["action"] == "clarify" and data["options"]:
        assert len(data["options"]) >= 2


def test_ask_uses_the_council_details(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[council]\nname = "Testshire Council"\n', encoding="utf-8")
    data = json.loads(out(run(tmp_path, "ask", "--json", "talk to a person")))
    assert data["action"] == "escalate"
    assert "Testshire Council" in data["reply"]
    assert re.search(r"CB-[A-Z0-9]+", data["reply"])


def test_ask_batch_keeps_order(tmp_path: Path) -> None:
    texts = [
        "hello",
        "",
        "when is my bin day",
        "how do I pay council tax",
        "1",
        "i want to kill myself",
        "Pryd mae fy miniau\u2019n cael eu casglu?",
        "\U0001f642",
        "what is the capital of australia",
        "pothole on my road",
    ] * 6
    texts += [f"question number {n} about bins" for n in range(5)]
    result = run(tmp_path, "ask", "--json", stdin="\n".join(texts) + "\n")
    assert result.returncode == 0
    lines = out(result).splitlines()
    assert len(lines) == len(texts) == 65
    rows = [json.loads(line) for line in lines]
    assert [r["text"] for r in rows] == texts
    assert all(set(r) == JSON_KEYS for r in rows)
    by_text = {r["text"]: r for r in rows}
    assert by_text["i want to kill myself"]["action"] == "answer"
    assert by_text["i want to kill myself"]["intent"].startswith("safety.")


def test_ask_batch_with_crlf_and_no_final_newline(tmp_path: Path) -> None:
    result = run(tmp_path, "ask", "--json", stdin="hello\r\nbin day\r\nthanks")
    rows = [json.loads(line) for line in out(result).splitlines()]
    assert [r["text"] for r in rows] == ["hello", "bin day", "thanks"]


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="inherited-locale"),
        pytest.param({"PYTHONIOENCODING": "utf-8"}, id="strict-utf8-locale"),
    ],
)
@pytest.mark.parametrize("command", [["ask", "--json"], ["ask"], ["chat", "--user", "tester"]])
def test_binary_stdin_no_traceback(tmp_path: Path, env: dict[str, str], command: list[str]) -> None:
    # run() fails the test if stderr holds a traceback.
    result = run(tmp_path, *command, stdin=b"hello\n\xff\xfe\x00bad \x80bytes\n\xc3\x28\nthanks\n", env=base_env(**env))
    assert result.returncode in (0, 1, 2)


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="inherited-locale"),
        pytest.param({"PYTHONIOENCODING": "utf-8"}, id="strict-utf8-locale"),
    ],
)
def test_ask_binary_stdin_gives_valid_json_lines(tmp_path: Path, env: dict[str, str]) -> None:
    result = run(tmp_path, "ask", "--json", stdin=b"hello\n\xff\xfe bad bytes\nthanks\n", env=base_env(**env))
    assert result.returncode == 0
    text = result.stdout.decode("utf-8")  # the output must be UTF-8 whatever came in
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == 3
    assert rows[0]["text"] == "hello"
    assert rows[2]["text"] == "thanks"


# -- chat ---------------------------------------------------------------------------


def test_chat_through_stdin(tmp_path: Path) -> None:
    lines = ["hello", "", "bin collection", "1", "7", "talk to a person"]
    result = run(tmp_path, "chat", "--user", "tester", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0
    text = out(result)
    assert text.count("bot> ") == len(lines)
    assert "CB-" in text  # the handoff gave a reference
    state = tmp_path / "data" / "state.db"
    assert state.is_file()
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


def test_chat_state_survives_restart(tmp_path: Path) -> None:
    run(tmp_path, "chat", "--user", "tester", stdin="talk to a person\n")
    import sqlite3

    conn = sqlite3.connect(tmp_path / "data" / "state.db")
    try:
        (count,) = conn.execute("select count(*) from escalations").fetchone()
        (user,) = conn.execute("select user from escalations").fetchone()
    finally:
        conn.close()
    assert count == 1
    assert user == "tester"


# -- kb check / build -----------------------------------------------------------------


def test_kb_check_bundled(tmp_path: Path) -> None:
    result = run(tmp_path, "kb", "check")
    assert result.returncode == 0, out(result)
    assert out(result).startswith("ok:")


def test_kb_check_against_spec(tmp_path: Path) -> None:
    assert SPEC.is_file()
    result = run(tmp_path, "kb", "check", "--spec", str(SPEC))
    assert result.returncode == 0, out(result)


def test_kb_check_reports_missing_spec_ids(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('[[intent]]\nid = "service.not-written-yet"\n', encoding="utf-8")
    result = run(tmp_path, "kb", "check", "--spec", str(spec))
    assert result.returncode == 1
    assert "service.not-written-yet" in out(result)


def test_kb_build_writes_knowledge_db(tmp_path: Path) -> None:
    result = run(tmp_path, "kb", "build")
    assert result.returncode == 0
    db = tmp_path / "data" / "knowledge.db"
    assert db.is_file()
    assert str(db) in out(result) or "knowledge.db" in out(result)


def test_broken_content_fails_check_and_build(tmp_path: Path) -> None:
    folder = small_site(tmp_path)
    built = run(tmp_path, "kb", "build")
    assert built.returncode == 0, out(built) + err(built)
    db = tmp_path / "data" / "knowledge.db"
    before = db.read_bytes()
    (folder / "broken.toml").write_text(
        tomli_w.dumps(
            {
                "entry": [
                    entry(id="service.broken", kind="question", questions=["a q", "b q", "c q"]),
                    entry(id="service.no-answer", answer=None, questions=["x q", "y q", "z q"]),
                ]
            }
        ),
        encoding="utf-8",
    )
    checked = run(tmp_path, "kb", "check")
    assert checked.returncode == 1
    lines = out(checked).splitlines()
    assert len(lines) >= 2
    for line in lines:
        assert PROBLEM_LINE.match(line), line
    assert any("broken.toml: service.broken: kind:" in line for line in lines)
    assert any("broken.toml: service.no-answer: answer:" in line for line in lines)
    assert "problem" in err(checked)

    rebuilt = run(tmp_path, "kb", "build")
    assert rebuilt.returncode == 1
    assert out(rebuilt).splitlines() == lines
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["knowledge.db"]


def test_invalid_toml_content_is_reported_with_line(tmp_path: Path) -> None:
    folder = small_site(tmp_path)
    (folder / "typo.toml").write_text('[[entry]]\nid = "x"\nkind = faq\n', encoding="utf-8")
    result = run(tmp_path, "kb", "check")
    assert result.returncode == 1
    assert "typo.toml" in out(result)
    assert "line 3" in out(result)


# -- export / import --------------------------------------------------------------------


def test_kb_export_jsonl(tmp_path: Path) -> None:
    result = run(tmp_path, "kb", "export", "--format", "jsonl")
    assert result.returncode == 0
    rows = [json.loads(line) for line in out(result).splitlines()]
    loaded = content.load()
    assert [r["id"] for r in rows] == [e.id for e in loaded.entries]
    for row in rows:
        assert {"id", "topic", "questions", "answer"} <= set(row)
        assert row["questions"]


def test_kb_export_csv(tmp_path: Path) -> None:
    result = run(tmp_path, "kb", "export", "--format", "csv")
    assert result.returncode == 0
    rows = list(csv.DictReader(io.StringIO(out(result), newline="")))
    loaded = content.load()
    assert [r["id"] for r in rows] == [e.id for e in loaded.entries]
    assert rows[0]["questions"].split("\n") == loaded.entries[0].questions


def test_kb_export_csv_to_file_has_bom_for_excel(tmp_path: Path) -> None:
    target = tmp_path / "faqs.csv"
    result = run(tmp_path, "kb", "export", "--format", "csv", "--output", str(target))
    assert result.returncode == 0
    assert out(result) == ""
    assert target.read_bytes().startswith(b"\xef\xbb\xbfid,")


def test_kb_import_of_edited_csv(tmp_path: Path) -> None:
    folder = small_site(tmp_path)
    exported = tmp_path / "faqs.csv"
    assert run(tmp_path, "kb", "export", "--format", "csv", "-o", str(exported)).returncode == 0
    rows = list(csv.DictReader(io.StringIO(exported.read_text(encoding="utf-8-sig"), newline="")))
    for row in rows:
        if row["id"] == "service.roads.pothole":
            row["answer"] = "Potholes: use {page.report_pothole}, or call {council.phone}. Diolch!"
            row["questions"] += '\nthere\'s a crater, "huge", in the lane'
    rows.append(
        {
            "id": "service.roads.gritting",
            "kind": "faq",
            "topic": "highways",
            "audience": "resident",
            "title": "Gritting",
            "questions": "is my road gritted\nwhen do you grit\nice on the road",
            "answer": "See {page.gritting}.",
            "follow_ups": "service.roads.pothole",
            "source": "streets.toml",
        }
    )
    edited = tmp_path / "edited.csv"
    with edited.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = run(tmp_path, "kb", "import", str(edited))
    assert result.returncode == 0, out(result) + err(result)
    loaded = content.load(folder)
    assert loaded.problems == []
    by_id = {e.id: e for e in loaded.entries}
    assert set(by_id) == {"service.bins.missed", "service.roads.pothole", "service.roads.gritting"}
    assert by_id["service.roads.pothole"].answer.startswith("Potholes:")
    assert 'there\'s a crater, "huge", in the lane' in by_id["service.roads.pothole"].questions
    assert by_id["service.roads.gritting"].follow_ups == ["service.roads.pothole"]
    assert run(tmp_path, "kb", "check").returncode == 0
    asked = json.loads(out(run(tmp_path, "ask", "--json", "report a pothole")))
    assert asked["intent"] == "service.roads.pothole"
    assert "01632" in asked["reply"]


def test_kb_import_broken_csv_changes_nothing(tmp_path: Path) -> None:
    folder = small_site(tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "id,kind,topic,audience,questions,answer\nservice.x,faq,waste,resident,only one question,Hi {page.nope}\n",
        encoding="utf-8",
    )
    result = run(tmp_path, "kb", "import", str(bad))
    assert result.returncode == 1
    assert "service.x" in out(result)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


# -- configuration errors ------------------------------------------------------------------


@pytest.mark.parametrize("how", ["local", "flag", "env"])
@pytest.mark.parametrize("command", [["ask", "hello"], ["chat"], ["kb", "check"]])
def test_unknown_config_key_exits_2(tmp_path: Path, how: str, command: list[str]) -> None:
    name = "config.toml" if how == "local" else "settings.toml"
    (tmp_path / name).write_text('[council]\nname = "X"\ncolour = "blue"\n', encoding="utf-8")
    args = ["--config", name, *command] if how == "flag" else command
    env = base_env(COUNCILBOT_CONFIG=str(tmp_path / name)) if how == "env" else None
    result = run(tmp_path, *args, env=env)
    assert result.returncode == 2
    message = err(result).strip()
    assert len(message.splitlines()) == 1
    assert "council.colour" in message
    assert name in message
    assert out(result) == ""


def test_token_in_config_exits_2_and_points_to_environment(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[council]\ntelegram_token = "123:abc"\n', encoding="utf-8")
    result = run(tmp_path, "ask", "hello")
    assert result.returncode == 2
    assert "environment variable" in err(result)
    assert "123:abc" not in err(result)


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = run(tmp_path, "--config", "nope.toml", "ask", "hello")
    assert result.returncode == 2
    assert "nope.toml" in err(result)


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "frobnicate")
    assert result.returncode == 2
    assert "usage" in err(result)
