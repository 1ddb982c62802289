"""What every benchmark shares: paths, the workspace of generated knowledge bases, statistics, processes."""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench import generate
from knowledge import build
from knowledge.content import Content

ROOT = Path(__file__).resolve().parents[1]
"""The project's root folder."""

SHARED = ROOT.parent / "shared"
DEV_SET = SHARED / "eval" / "dev.jsonl"
SPEC = SHARED / "kb-spec" / "intents.toml"

PACKAGES = (
    "councilbot",
    "rapidfuzz",
    "snowballstemmer",
    "sqlite-utils",
    "starlette",
    "uvicorn",
    "aiohttp",
    "httpx",
    "scikit-learn",
    "numpy",
    "scipy",
)


def now() -> str:
    """The current time, UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def percentile(values: list[float], share: float) -> float:
    """The ``share`` (0-1) percentile of ``values`` by the nearest-rank method."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(share * len(ordered))))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """This process's resident set size now, in MB."""
    value = _status_mb("VmRSS")
    return float("nan") if value is None else value


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB.

    Linux's ``VmHWM``, which starts afresh when the process starts its program. (``ru_maxrss`` does not: a child
    started by fork and exec keeps the parent's resident size as its starting peak, which made a child of a
    large parent look large.)
    """
    value = _status_mb("VmHWM")
    return value if value is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pin_to_one_core(cpu: int | None = None) -> int | None:
    """Run this process on one CPU only (the last one allowed, by default); return it, or None if impossible."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
        chosen = cpu if cpu is not None and cpu in allowed else allowed[-1]
        os.sched_setaffinity(0, {chosen})
        return chosen
    except (AttributeError, OSError):
        return None


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (other work on the machine skews timings)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds used so far by process ``pid``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def machine() -> dict:
    """The machine's details for the report."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = float("nan")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory, 1),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "packages": versions,
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "load_average": load_average(),
    }


def run_json(command: list[str], timeout: float, env: dict | None = None) -> dict:
    """Run a child benchmark process that prints one JSON object as its last line of output."""
    started = time.perf_counter()
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"{' '.join(command)} printed nothing:\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1])
    result.setdefault("wall_seconds", round(time.perf_counter() - started, 2))
    return result


HIDDEN = ("numpy", "pandas")
"""Packages the bench extra brings in that a production install lacks. sqlite-utils imports them whenever they
are installed, which adds to the start-up time and memory of every councilbot process, so the product's own
measurements run with them hidden (see ``child_env``)."""


def hiding_folder(folder: Path) -> Path:
    """A folder of stand-in modules that make ``import numpy`` (and pandas) fail, as on a production install."""
    stubs = folder / "hide-bench-extras"
    stubs.mkdir(parents=True, exist_ok=True)
    for name in HIDDEN:
        (stubs / f"{name}.py").write_text(
            f'raise ImportError("{name} is hidden by the benchmarks: a production install does not have it")\n'
        )
    return stubs


SITECUSTOMIZE = """\
# Written by the benchmarks for a diagnostic run only: every SQLite connection gets synchronous = {mode}.
import sqlite3

_connect = sqlite3.connect


def connect(*args, **kwargs):
    conn = _connect(*args, **kwargs)
    try:
        conn.execute("pragma synchronous = {mode}")
    except sqlite3.Error:
        pass
    return conn


sqlite3.connect = connect
"""


def synchronous_folder(folder: Path, mode: str = "NORMAL") -> Path:
    """A folder whose ``sitecustomize`` sets ``pragma synchronous = MODE`` on every SQLite connection.

    For diagnostic runs only: they show how much of a cost is waiting for fsync.
    """
    patch = folder / f"what-if-synchronous-{mode.lower()}"
    patch.mkdir(parents=True, exist_ok=True)
    (patch / "sitecustomize.py").write_text(SITECUSTOMIZE.format(mode=mode))
    return patch


def child_env(hide_in: Path | None = None, extra: tuple[Path, ...] = ()) -> dict[str, str]:
    """The environment for child processes: the project importable, one thread for numeric libraries.

    With ``hide_in`` (a folder), numpy and pandas are hidden from the child (see ``HIDDEN``); ``extra``
    folders go first on its import path.
    """
    env = dict(os.environ)
    paths = [str(p) for p in extra] + ([str(hiding_folder(hide_in))] if hide_in is not None else [])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (*paths, str(ROOT), env.get("PYTHONPATH", "")) if p)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    for name in ("TELEGRAM_BOT_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "COUNCILBOT_CONFIG"):
        env.pop(name, None)
    return env


def councilbot_command() -> list[str]:
    """How to start the ``councilbot`` command of this environment."""
    script = Path(sys.executable).with_name("councilbot")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bot.cli"]


def dev_texts(path: Path = DEV_SET) -> list[str]:
    """The development set's messages, in order."""
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class Workspace:
    """Generated knowledge bases, made once per run and shared by the benchmarks that need them."""

    folder: Path
    seed: int = 8
    base: Content | None = None
    contents: dict[int, Content] = field(default_factory=dict)
    databases: dict[int, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def bundled(self) -> Content:
        """The bundled content."""
        if self.base is None:
            self.base = generate.bundled()
        return self.base

    def content(self, size: int) -> Content:
        """The knowledge base of ``size`` example questions."""
        if size not in self.contents:
            started = time.perf_counter()
            self.contents[size] = generate.grow(size, self.bundled(), self.seed)
            self.seconds[f"generate {size}"] = round(time.perf_counter() - started, 2)
        return self.contents[size]

    def database(self, size: int) -> Path:
        """A built ``knowledge.db`` of ``size`` example questions (built like ``kb build``, unchecked)."""
        if size not in self.databases:
            path = self.folder / f"kb-{size}" / "knowledge.db"
            started = time.perf_counter()
            build.build(self.content(size), path)
            self.seconds[f"write knowledge.db {size}"] = round(time.perf_counter() - started, 2)
            self.databases[size] = path
        return self.databases[size]
