"""End to end: simulated residents chatting with a real ``councilbot run`` through the web chat API.

For each concurrency level a fresh ``councilbot run --port N`` starts on a free 127.0.0.1 port, with its
storage in a temporary folder and rate limits (and the connection limit) raised in its configuration so the
test measures the bot rather than its limits. numpy and pandas are hidden from it, as on a production install.
Then that many residents start at once, each with its own cookie jar (so its own session): each loads the
chat page (which sets the session cookie), then sends 5 to 10 messages from the development set, one after
another, each ``POST /api/messages {"text", "id"}`` waiting for its reply. A global time limit stops the level
by itself. Every response is checked: HTTP 200 with exactly one bot message in ``messages`` (two on a
session's first message, when the bot adds its privacy notice). Messages per second counts only responses
that carried their reply. Afterwards the outbox in ``state.db`` is polled until nothing is ``pending`` or
``sending`` (up to ``DRAIN_SECONDS``), the server is stopped with SIGTERM and the outbox is checked again.
The disk's SQLite commit latency is measured first (``commit_latency``): the web chat commits several times
per message, and fsync latency on a shared machine varies with other work. Last, one level runs again with
the server under cProfile (``python -m cProfile -m bot.cli run``) to show where the server's time goes.

Only loopback addresses are used; request counts and time are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench import common

DRAIN_SECONDS = 15.0
START_TIMEOUT = 90.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(folder: Path, port: int, concurrency: int) -> Path:
    """A configuration with storage in ``folder`` and limits raised for the load test."""
    path = folder / "config.toml"
    path.write_text(
        "[storage]\n"
        'knowledge_db = "data/knowledge.db"\n'
        'state_db = "data/state.db"\n\n'
        "[web]\n"
        f"port = {port}\n"
        f"max_connections = {max(1000, concurrency * 4)}\n"
        "session_rate_per_minute = 100000\n"
        "address_rate_per_minute = 10000000\n\n"
        "[log]\n"
        'level = "WARNING"\n',
        encoding="utf-8",
    )
    return path


def outbox_counts(state_db: Path) -> dict[str, int]:
    """Outbox rows by status (``pending`` and ``sending`` are the undelivered ones)."""
    if not state_db.is_file():
        return {}
    conn = sqlite3.connect(f"file:{state_db}?mode=ro", uri=True, timeout=10)
    try:
        return {row[0]: row[1] for row in conn.execute("select status, count(*) from outbox group by status")}
    finally:
        conn.close()


def table_counts(state_db: Path) -> dict[str, int]:
    """Rows the load left in state.db: messages logged in and out, replies queued for the web."""
    queries = {
        "logged_in": "select count(*) from messages where platform = 'web' and direction = 'in'",
        "logged_out": "select count(*) from messages where platform = 'web' and direction = 'out'",
        "web_replies_queued": "select count(*) from outbox where platform = 'web' and purpose = 'reply'",
        "escalations": "select count(*) from escalations",
    }
    conn = sqlite3.connect(f"file:{state_db}?mode=ro", uri=True, timeout=10)
    counts = {}
    try:
        for name, sql in queries.items():
            try:
                counts[name] = conn.execute(sql).fetchone()[0]
            except sqlite3.Error:
                counts[name] = -1
    finally:
        conn.close()
    return counts


async def _wait_ready(base: str, proc: subprocess.Popen, timeout: float) -> float:
    import aiohttp

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"councilbot run exited with {proc.returncode} before it was ready")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            await asyncio.sleep(0.1)
    raise RuntimeError(f"councilbot run was not ready after {timeout} s")


async def _load(base: str, residents: int, texts: list[str], seed: int, limit_seconds: float, sizes: tuple) -> dict:
    import aiohttp

    rng = random.Random(seed)
    plans = [[rng.choice(texts) for _ in range(rng.randint(*sizes))] for _ in range(residents)]
    latencies: list[float] = []
    problems: Counter = Counter()
    replies: Counter = Counter()
    first_replies: Counter = Counter()
    actions: Counter = Counter()
    # keep-alive shorter than uvicorn's 5 s, so the client never reuses a connection the server is closing
    connector = aiohttp.TCPConnector(limit=residents + 10, limit_per_host=0, keepalive_timeout=2.0)
    samples: dict[str, str] = {}
    timeout = aiohttp.ClientTimeout(total=30)
    deadline = time.monotonic() + limit_seconds
    stopped_by_limit = 0

    async def resident(number: int, plan: list[str]) -> None:
        nonlocal stopped_by_limit
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(
            connector=connector, connector_owner=False, cookie_jar=jar, timeout=timeout
        ) as session:
            try:
                async with session.get(f"{base}/") as page:
                    await page.read()
                    if page.status != 200:
                        problems[f"page HTTP {page.status}"] += 1
            except (aiohttp.ClientError, TimeoutError) as error:
                problems[f"page {type(error).__name__}"] += 1
            for n, text in enumerate(plan):
                if time.monotonic() > deadline:
                    stopped_by_limit += len(plan) - n
                    return
                began = time.perf_counter()
                try:
                    async with session.post(f"{base}/api/messages", json={"text": text, "id": f"r{number}-{n}"}) as r:
                        body = await r.json(content_type=None) if r.status == 200 else await r.text()
                        status = r.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    problems[type(error).__name__] += 1
                    samples.setdefault(type(error).__name__, str(error)[:200])
                    continue
                took = time.perf_counter() - began
                if status != 200:
                    problems[f"HTTP {status}"] += 1
                    continue
                latencies.append(took)
                got = len(body.get("messages") or []) if isinstance(body, dict) else 0
                (first_replies if n == 0 else replies)[got] += 1
                actions[body.get("action", "?") if isinstance(body, dict) else "?"] += 1

    started = time.perf_counter()
    cpu_before = time.process_time()
    try:
        await asyncio.gather(*(resident(n, plan) for n, plan in enumerate(plans)))
    finally:
        await connector.close()
    elapsed = time.perf_counter() - started
    planned = sum(len(p) for p in plans)
    return {
        "residents": residents,
        "planned_messages": planned,
        "answered": len(latencies),
        "replied": len(latencies) - replies.get(0, 0) - first_replies.get(0, 0),
        "not_sent_time_limit": stopped_by_limit,
        "seconds": round(elapsed, 3),
        "responses_per_second": round(len(latencies) / elapsed, 1) if elapsed else None,
        "messages_per_second": round((len(latencies) - replies.get(0, 0) - first_replies.get(0, 0)) / elapsed, 1)
        if elapsed
        else None,
        "p50_ms": round(common.percentile(latencies, 0.5) * 1000, 2),
        "p90_ms": round(common.percentile(latencies, 0.9) * 1000, 2),
        "p99_ms": round(common.percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2) if latencies else None,
        "replies_per_response": {str(k): v for k, v in sorted(replies.items())},
        "replies_per_first_response": {str(k): v for k, v in sorted(first_replies.items())},
        "later_responses": sum(replies.values()),
        "later_with_exactly_one_reply": replies.get(1, 0),
        "responses_without_reply": replies.get(0, 0) + first_replies.get(0, 0),
        "bot_messages_received": sum(k * v for k, v in (replies + first_replies).items()),
        "errors": dict(problems),
        "error_samples": samples,
        "actions": dict(actions),
        "client_cpu_seconds": round(time.process_time() - cpu_before, 2),
    }


def level(
    workspace: common.Workspace,
    residents: int,
    texts: list[str],
    limit_seconds: float = 45.0,
    sizes: tuple[int, int] = (5, 10),
    seed: int = 8,
    profile: bool = False,
) -> dict:
    """Start a server, load it with ``residents`` at once, check the outbox, stop it.

    With ``profile`` the server runs under cProfile, and the result has where its time went.
    """
    folder = workspace.folder / f"e2e-{residents}{'-profiled' if profile else ''}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    port = free_port()
    config = write_config(folder, port, residents)
    base = f"http://127.0.0.1:{port}"
    command = [*common.councilbot_command(), "--config", str(config), "run", "--port", str(port)]
    stats = folder / "server.prof"
    if profile:
        command = [sys.executable, "-m", "cProfile", "-o", str(stats), "-m", "bot.cli", *command[1:]]
    log = (folder / "server.log").open("w")
    env = common.child_env(hide_in=workspace.folder)
    if profile:  # build knowledge.db and the index cache first, so the profile is mostly the load
        prepare = [*common.councilbot_command(), "--config", str(config), "ask", "hello"]
        subprocess.run(prepare, cwd=folder, env=env, capture_output=True, timeout=300, check=True)
    proc = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env)
    state_db = folder / "data" / "state.db"
    try:
        ready = asyncio.run(_wait_ready(base, proc, START_TIMEOUT))
        warm = asyncio.run(_load(base, 1, texts, seed + 1, 20.0, (10, 10)))
        server_cpu = common.cpu_seconds(proc.pid)
        load_before = common.load_average()
        result = asyncio.run(_load(base, residents, texts, seed, limit_seconds, sizes))
        result["server_cpu_seconds"] = round(common.cpu_seconds(proc.pid) - server_cpu, 2)
        result["server_cpu_ms_per_message"] = (
            round(result["server_cpu_seconds"] * 1000 / result["answered"], 2) if result["answered"] else None
        )
        result["start_seconds"] = round(ready, 2)
        result["load_average_before"] = load_before
        drained = time.perf_counter()
        left = outbox_counts(state_db)
        while left.get("pending", 0) + left.get("sending", 0) and time.perf_counter() - drained < DRAIN_SECONDS:
            time.sleep(0.25)
            left = outbox_counts(state_db)
        result["outbox_while_running"] = left
        result["drain_seconds"] = round(time.perf_counter() - drained, 2)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    result["server_exit_code"] = proc.returncode
    result["outbox_after_stop"] = outbox_counts(state_db)
    result["undelivered_after_stop"] = sum(result["outbox_after_stop"].get(s, 0) for s in ("pending", "sending"))
    result["state_db"] = table_counts(state_db)
    result["warm_up_messages"] = warm["answered"]
    result["load_average_after"] = common.load_average()
    if profile:
        result["profile"] = server_profile(stats)
    return result


def _category(filename: str, name: str) -> str:
    text = f"{filename} {name}"
    for needle, label in (
        ("epoll", "waiting for the network (epoll)"),
        ("/intents/", "matcher (intents/, rapidfuzz, snowball)"),
        ("rapidfuzz", "matcher (intents/, rapidfuzz, snowball)"),
        ("snowballstemmer", "matcher (intents/, rapidfuzz, snowball)"),
        ("tomllib", "start-up (configuration, content)"),
        ("importlib", "start-up (imports)"),
        ("sqlite3", "SQLite (the sqlite3 module's C calls)"),
        ("sqlite_utils", "sqlite-utils"),
        ("/bot/", "councilbot (bot/)"),
        ("/knowledge/", "councilbot (knowledge/)"),
        ("uvicorn", "web server (uvicorn, h11, starlette)"),
        ("starlette", "web server (uvicorn, h11, starlette)"),
        ("/h11/", "web server (uvicorn, h11, starlette)"),
        ("httptools", "web server (uvicorn, h11, starlette)"),
        ("anyio", "web server (uvicorn, h11, starlette)"),
        ("itsdangerous", "session cookies (itsdangerous)"),
        ("json", "json"),
        ("asyncio", "asyncio"),
    ):
        if needle in text:
            return label
    return "other"


def server_profile(path: Path, top: int = 15) -> dict:
    """Where a profiled server's time went: own time by category, and the functions with the most."""
    import pstats

    if not path.is_file():
        return {"error": "the profiled server wrote no statistics"}
    stats = pstats.Stats(str(path))
    categories: Counter = Counter()
    rows = []
    for (filename, line, name), (_cc, calls, tottime, _cumtime, callers) in stats.stats.items():
        category = _category(filename, name)
        if filename == "~" and callers and category == "other":
            # a built-in (str.join, re.sub...): its time goes to the parts that called it
            shares: Counter = Counter()
            for (caller_file, _line, caller_name), timing in callers.items():
                shares[_category(caller_file, caller_name)] += timing[2]
            categories.update(shares)
            category = f"{shares.most_common(1)[0][0]} (built-in)" if shares else category
        else:
            categories[category] += tottime
        where = f"{Path(filename).parent.name}/{Path(filename).name}:{line}({name})" if line else name
        rows.append({"function": where, "category": category, "calls": calls, "own_seconds": round(tottime, 4)})
    busy = sum(v for k, v in categories.items() if not k.startswith("waiting")) or 1.0
    rows = [r for r in rows if not r["category"].startswith("waiting")]
    rows.sort(key=lambda r: -r["own_seconds"])
    return {
        "busy_seconds": round(busy, 3),
        "categories": {
            k: {"seconds": round(v, 3), "share_of_busy": round(v / busy, 4) if not k.startswith("waiting") else None}
            for k, v in categories.most_common()
        },
        "top": [{**r, "share_of_busy": round(r["own_seconds"] / busy, 4)} for r in rows[:top]],
    }


def commit_latency(folder: Path, commits: int = 100) -> dict[str, float]:
    """Milliseconds per small SQLite commit in WAL mode on ``folder``'s disk, with synchronous FULL and NORMAL.

    The web chat commits several times per message, so the disk's fsync latency (which other work on the
    machine changes) matters; this measures it at the time of the run.
    """
    result = {}
    for mode in ("FULL", "NORMAL"):
        path = folder / f"commit-latency-{mode.lower()}.db"
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("pragma journal_mode = wal")
            conn.execute(f"pragma synchronous = {mode}")
            conn.execute("create table if not exists t (x)")
            started = time.perf_counter()
            for n in range(commits):
                conn.execute("begin immediate")
                conn.execute("insert into t values (?)", [n])
                conn.execute("commit")
            result[mode] = round((time.perf_counter() - started) / commits * 1000, 3)
        finally:
            conn.close()
    return result


def run(
    workspace: common.Workspace,
    levels: tuple[int, ...] = (50, 500),
    limit_seconds: float = 45.0,
    sizes: tuple[int, int] = (5, 10),
    profile_residents: int | None = 50,
) -> dict:
    """Every concurrency level against its own fresh server; then one level again with the server profiled."""
    texts = common.dev_texts()
    latency = commit_latency(workspace.folder)
    results = []
    for residents in levels:
        results.append(level(workspace, residents, texts, limit_seconds, sizes))
        result = results[-1]
        print(
            f"  e2e {residents:>4} residents: {result['messages_per_second']} msg/s, p99 {result['p99_ms']} ms, "
            f"{result['answered']}/{result['planned_messages']} answered, "
            f"undelivered {result['undelivered_after_stop']}",
            file=sys.stderr,
            flush=True,
        )
    profiled = None
    if profile_residents:
        profiled = level(workspace, profile_residents, texts, limit_seconds, sizes, profile=True)
    return {
        "ran_at": common.now(),
        "commit_ms": latency,
        "profiled": profiled,
        "levels": results,
        "messages_per_resident": list(sizes),
        "limit_seconds": limit_seconds,
    }
