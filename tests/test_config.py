"""bot.config: where the configuration comes from and how it is checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import config_defaults
from bot.config import Config, ConfigError, load, parse

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder with no COUNCILBOT_CONFIG set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COUNCILBOT_CONFIG", raising=False)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(isolated: Path) -> None:
    config = load()
    assert config == Config(base_dir=config.base_dir)
    assert config.source == "built-in defaults"
    assert config.council.name == config_defaults.COUNCIL["name"]
    assert config.council.pages == config_defaults.PAGES
    assert config.content_dir is None
    assert config.path(config.storage.state_db) == isolated / "data" / "state.db"
    placeholders = config.council.placeholders()
    assert placeholders["council.phone"] == config_defaults.COUNCIL["phone"]
    assert placeholders["page.bin_day"] == config_defaults.PAGES["bin_day"]


def test_explicit_file_that_does_not_exist(isolated: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load(str(isolated / "nope.toml"))


def test_environment_file_that_does_not_exist(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNCILBOT_CONFIG", str(isolated / "gone.toml"))
    with pytest.raises(ConfigError, match=r"gone\.toml"):
        load()


@pytest.mark.parametrize(
    ("explicit", "env", "local", "expected"),
    [
        (True, True, True, "Explicit"),
        (True, False, True, "Explicit"),
        (False, True, True, "Environment"),
        (False, False, True, "Local"),
        (False, True, False, "Environment"),
        (False, False, False, config_defaults.COUNCIL["name"]),
    ],
)
def test_precedence(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, explicit: bool, env: bool, local: bool, expected: str
) -> None:
    explicit_path = write(isolated / "a" / "explicit.toml", '[council]\nname = "Explicit"\n')
    env_path = write(isolated / "b" / "env.toml", '[council]\nname = "Environment"\n')
    if local:
        write(isolated / "config.toml", '[council]\nname = "Local"\n')
    if env:
        monkeypatch.setenv("COUNCILBOT_CONFIG", str(env_path))
    config = load(str(explicit_path) if explicit else None)
    assert config.council.name == expected


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[councl]\nname = "x"\n', ["councl"]),
        ('[council]\ncolour = "blue"\n', ["council.colour"]),
        ("[matcher]\nanswer_treshold = 0.5\n", ["matcher.answer_treshold"]),
        ("[council.pages]\nbin_day = 5\n", ["council.pages.bin_day"]),
        ("[council]\nname = 12\n", ["council.name", "text"]),
        ('[matcher]\nmax_options = "three"\n', ["matcher.max_options"]),
        ("[matcher]\nmax_options = true\n", ["matcher.max_options"]),
        ("[chat]\nmax_message_chars = 1.5\n", ["chat.max_message_chars"]),
        ('[storage]\nstate_db = ["a"]\n', ["storage.state_db"]),
        ('council = "Example"\n', ["council"]),
        ('[council]\npages = "none"\n', ["council.pages"]),
    ],
)
def test_bad_keys_and_types_name_file_and_key(isolated: Path, text: str, names: list[str]) -> None:
    path = write(isolated / "config.toml", text)
    with pytest.raises(ConfigError) as caught:
        load(str(path))
    message = str(caught.value)
    assert str(path) in message
    for name in names:
        assert name in message
    assert "\n" not in message


@pytest.mark.parametrize("key", ["telegram_token", "slack_bot_token", "api_secret"])
def test_token_like_key_points_to_environment(isolated: Path, key: str) -> None:
    path = write(isolated / "config.toml", f'[council]\n{key} = "abc123"\n')
    with pytest.raises(ConfigError) as caught:
        load(str(path))
    message = str(caught.value)
    assert key in message
    assert "environment variable" in message
    assert "abc123" not in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[matcher]\nanswer_threshold = 1.5\n", "answer_threshold"),
        ("[matcher]\nclarify_threshold = 0.9\nanswer_threshold = 0.5\n", "clarify_threshold"),
        ("[matcher]\nmax_options = 1\n", "max_options"),
        ("[chat]\nmax_message_chars = 3\n", "max_message_chars"),
    ],
)
def test_out_of_range_values(isolated: Path, text: str, key: str) -> None:
    path = write(isolated / "config.toml", text)
    with pytest.raises(ConfigError, match=key) as caught:
        load(str(path))
    assert str(path) in str(caught.value)


def test_int_accepted_for_float(isolated: Path) -> None:
    config = load(str(write(isolated / "config.toml", "[matcher]\nanswer_threshold = 1\nclarify_threshold = 0\n")))
    assert config.matcher.answer_threshold == 1.0
    assert isinstance(config.matcher.answer_threshold, float)


def test_pages_merge_with_defaults(isolated: Path) -> None:
    path = write(
        isolated / "config.toml",
        '[council]\nname = "Testshire"\n\n[council.pages]\nbin_day = "https://testshire.example/bins"\n'
        'ferry = "https://testshire.example/ferry"\n',
    )
    config = load(str(path))
    pages = config.council.pages
    assert pages["bin_day"] == "https://testshire.example/bins"
    assert pages["ferry"] == "https://testshire.example/ferry"
    assert pages["missed_bin"] == config_defaults.PAGES["missed_bin"]
    assert set(config_defaults.PAGES) <= set(pages)
    placeholders = config.council.placeholders()
    assert placeholders["page.ferry"] == "https://testshire.example/ferry"
    assert placeholders["council.name"] == "Testshire"
    assert placeholders["council.phone"] == config_defaults.COUNCIL["phone"]
    assert config_defaults.PAGES["bin_day"] != pages["bin_day"]  # the defaults were not changed in place
    assert Config().council.pages["bin_day"] == config_defaults.PAGES["bin_day"]


def test_relative_paths_resolve_against_config_folder(isolated: Path) -> None:
    folder = isolated / "deploy" / "council"
    path = write(
        folder / "settings.toml",
        '[storage]\ncontent_dir = "content"\nknowledge_db = "db/knowledge.db"\nstate_db = "/var/tmp/x/state.db"\n',
    )
    config = load(str(path))
    assert config.base_dir == folder.resolve()
    assert config.content_dir == folder.resolve() / "content"
    assert config.path(config.storage.knowledge_db) == folder.resolve() / "db" / "knowledge.db"
    assert config.path(config.storage.state_db) == Path("/var/tmp/x/state.db")


def test_relative_config_path_resolves_too(isolated: Path) -> None:
    write(isolated / "sub" / "c.toml", '[storage]\nstate_db = "s.db"\n')
    config = load("sub/c.toml")
    assert config.path(config.storage.state_db) == (isolated / "sub" / "s.db").resolve()


def test_invalid_toml_names_file_and_line(isolated: Path) -> None:
    path = write(isolated / "config.toml", '[council]\nname = "ok"\nphone = \n')
    with pytest.raises(ConfigError) as caught:
        load(str(path))
    message = str(caught.value)
    assert str(path) in message
    assert "line 3" in message


def test_not_utf8(isolated: Path) -> None:
    path = isolated / "config.toml"
    path.write_bytes(b'[council]\nname = "Caf\xe9"\n')
    with pytest.raises(ConfigError, match="UTF-8"):
        load(str(path))


def test_parse_directly(tmp_path: Path) -> None:
    config = parse({"council": {"name": "X", "opening_hours": "9 to 5"}}, "inline", tmp_path)
    assert config.council.name == "X"
    assert config.council.opening_hours == "9 to 5"
    assert config.source == "inline"
    assert config.base_dir == tmp_path
    with pytest.raises(ConfigError, match="inline"):
        parse({"nope": {}}, "inline", tmp_path)


def test_example_config_parses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    example = REPO / "config.example.toml"
    if not example.is_file():
        # Not written yet: nothing to check, but say so in the result.
        pytest.fail("config.example.toml is missing from the repository root")
    monkeypatch.chdir(tmp_path)
    config = load(str(example))
    assert config.source == str(example)
    assert config.council.name
