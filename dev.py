#!/usr/bin/env python3
"""Set up councilbot in ./.venv and run it: needs nothing but Python 3.11+.

    python3 dev.py chat    # talk to the bot in this terminal
    python3 dev.py run     # serve the web chat on http://127.0.0.1:8080
    python3 dev.py test    # run the whole test suite (and ruff)
    python3 dev.py setup   # only create .venv and install

The virtual environment is created on first use and reinstalled whenever
pyproject.toml changes. ``test`` also needs Debian's Chromium for the
browser test: if /usr/bin/chromium is missing it is installed with apt-get
(as root), never downloaded from elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".councilbot-installed"


def setup() -> None:
    """Create .venv and install councilbot with its test tools, if needed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit(f"councilbot needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.is_file() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("creating .venv ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing councilbot and its dependencies ...", file=sys.stderr)
    subprocess.run(
        [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", f"{ROOT}[test]"],
        check=True,
    )
    STAMP.write_text(wanted)


def browser() -> None:
    """Make sure Debian's Chromium is installed for the browser test."""
    if Path("/usr/bin/chromium").exists():
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        sys.exit("the browser test needs Debian's Chromium: run 'sudo apt-get install -y chromium' and try again")
    print("installing Debian's chromium for the browser test ...", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=True, env=env)


def main(argv: list[str]) -> int:
    """Run one of: chat, test, setup."""
    command = argv[0] if argv else "chat"
    setup()
    if command == "setup":
        return 0
    if command in ("chat", "run"):
        os.execv(str(BIN / "councilbot"), [str(BIN / "councilbot"), command, *argv[1:]])
    if command == "test":
        browser()
        lint = subprocess.run([str(BIN / "ruff"), "check", str(ROOT)], cwd=ROOT)
        tests = subprocess.run([str(BIN / "python"), "-m", "pytest", *argv[1:]], cwd=ROOT)
        return tests.returncode or lint.returncode
    sys.exit(f"unknown command {command!r}; use chat, run, test or setup")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
