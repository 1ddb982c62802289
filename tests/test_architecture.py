"""The dependency rules of DESIGN.md, read from the source with ast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SDKS = ("telegram", "slack", "slack_sdk", "slack_bolt", "slackclient")


def imported_modules(source: str, package: str) -> set[str]:
    """Every module ``source`` imports (relative imports resolved inside ``package``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            names.add(node.args[0].value)
    return names


def top(module: str) -> str:
    return module.split(".", 1)[0]


def python_files(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def package_of(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = relative.parts[:-1] if relative.name != "__init__" else relative.parts
    return ".".join(parts)


def test_checker_sees_imports() -> None:
    source = (
        "import bot\nfrom bot.engine import Engine\nfrom .. import config\n"
        "import importlib\nimportlib.import_module('telegram.ext')\n"
    )
    found = imported_modules(source, "bot.adapters")
    assert {"bot", "bot.engine", "bot.config", "telegram.ext"} <= found
    assert imported_modules("from . import x", "intents") >= {"intents", "intents.x"}


def test_packages_have_python_files() -> None:
    for package in ("bot", "intents", "knowledge"):
        assert (ROOT / package / "__init__.py").is_file()
    assert len(python_files("intents", "knowledge")) >= 10


@pytest.mark.parametrize("path", python_files("intents", "knowledge"), ids=lambda p: str(p.relative_to(ROOT)))
def test_intents_and_knowledge_never_import_bot(path: Path) -> None:
    imports = imported_modules(path.read_text(encoding="utf-8"), package_of(path))
    assert not {m for m in imports if top(m) == "bot"}


@pytest.mark.parametrize("path", python_files("bot", "intents", "knowledge"), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_platform_sdk_outside_adapters(path: Path) -> None:
    if (ROOT / "bot" / "adapters") in path.parents:
        return
    imports = imported_modules(path.read_text(encoding="utf-8"), package_of(path))
    assert not {m for m in imports if top(m) in SDKS}


@pytest.mark.parametrize("name", ["engine.py", "store.py", "messages.py", "replies.py", "config.py"])
def test_engine_side_never_imports_adapters(name: str) -> None:
    path = ROOT / "bot" / name
    imports = imported_modules(path.read_text(encoding="utf-8"), "bot")
    assert not {m for m in imports if m.startswith("bot.adapters")}
    assert not {m for m in imports if top(m) in SDKS}
