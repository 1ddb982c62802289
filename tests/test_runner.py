"""bot.runner: ``councilbot run`` serving the web chat, in-process and as a real process.

Every server listens on a free port on 127.0.0.1 with its storage in
tmp_path. The knowledge base is the small one from conftest, compiled into
tmp_path beside an empty content folder (so it is never rebuilt from the
bundled content while the test runs).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import tomli_w
from conftest import COUNCIL, ENTRIES, config_data

from bot.config import Config, parse
from bot.runner import Runner
from knowledge import build
from knowledge.content import Content

COUNCILBOT = Path(sys.executable).with_name("councilbot")
READY = re.compile(r"councilbot is serving the web chat at (http://127\.0\.0\.1:\d+)")
SECRET_WORD = "Zanzibarquokka"
"""A word no log line has any business containing."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(folder: Path, **web: object) -> dict:
    """Compile the small knowledge base into ``folder`` and return configuration data for it."""
    (folder / "content").mkdir(exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    build.build(Content(list(ENTRIES), {"rubbish": "bin"}), folder / "data" / "knowledge.db")
    return config_data(
        storage={"content_dir": "content", "knowledge_db": "data/knowledge.db", "state_db": "data/state.db"},
        web={"host": "127.0.0.1", "port": free_port(), **web},
        log={"level": "INFO"},
    )


def make_config(folder: Path, **web: object) -> Config:
    return parse(prepare(folder, **web), "test", folder)


@contextlib.asynccontextmanager
async def running(config: Config) -> AsyncIterator[tuple[Runner, str]]:
    """A real Runner serving on config.web.port in this event loop; stopped afterwards."""
    runner = Runner(config, env={})
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(runner.serve(ready=ready.set_result))
    async with asyncio.timeout(15):
        await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
        raise AssertionError("the runner stopped before it was ready")
    try:
        yield runner, ready.result()
    finally:
        runner.stop()
        async with asyncio.timeout(15):
            await task


# -- in-process -------------------------------------------------------------------


async def test_healthz_and_web_chat_answer_through_the_real_http_server(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    async with running(config) as (runner, address):
        assert address == f"http://127.0.0.1:{config.web.port}"
        async with httpx.AsyncClient(base_url=address, timeout=10) as client:
            health = await client.get("/healthz")
            assert health.status_code == 200
            assert health.text.strip() == "ok"

            page = await client.get("/")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert f"Chat with {COUNCIL}" in page.text

            answer = await client.post("/api/messages", json={"text": "hi", "id": "first"})
            assert answer.status_code == 200, answer.text
            data = answer.json()
            assert data["action"] == "answer"
            assert data["sent"]["role"] == "resident"
            assert data["sent"]["text"] == "hi"
            assert {m["role"] for m in data["messages"]} == {"bot"}
            assert "Hello!" in data["messages"][-1]["text"]
    assert runner.stopping.is_set()


async def test_stop_finishes_delivery_and_closes_the_database(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    async with running(config) as (_runner, address), httpx.AsyncClient(base_url=address, timeout=10) as client:
        reply = await client.post("/api/messages", json={"text": "talk to a person"})
        assert reply.status_code == 200
        assert reply.json()["action"] == "escalate"
    state = tmp_path / "data" / "state.db"
    with contextlib.closing(sqlite3.connect(state)) as db:
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
        waiting = db.execute("select count(*) from outbox where status in ('pending', 'sending')").fetchone()[0]
        assert waiting == 0, "the last delivery pass left messages in the outbox"
        inbox = db.execute("select count(*) from officer_inbox where officer = 'duty'").fetchone()[0]
        assert inbox == 1, "the duty officer's notification was not delivered to the command-line inbox"
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=2) as client:
            await client.get(f"{address}/healthz")


# -- councilbot run as a process ---------------------------------------------------------


def child_env() -> dict[str, str]:
    """The environment without anything that would change the configuration or start another channel."""
    dropped = ("COUNCILBOT_CONFIG", "COUNCILBOT_SESSION_SECRET", "TELEGRAM_", "SLACK_")
    return {k: v for k, v in os.environ.items() if not k.startswith(dropped)}


class Server:
    """``councilbot run --port N`` started in a folder holding config.toml."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.out = folder / "stdout.txt"
        self.err = folder / "stderr.txt"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [str(COUNCILBOT), "run", "--port", str(port)],
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=child_env(),
            )
        self.address = self._wait_ready()

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = READY.search(self.stdout())
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                raise AssertionError(f"councilbot run exited {self.process.returncode}:\n{self.stderr()}")
            time.sleep(0.05)
        raise AssertionError(f"councilbot run did not print its address in 20 s:\n{self.stderr()}")

    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    data = prepare(tmp_path)
    port = data["web"].pop("port")
    (tmp_path / "config.toml").write_text(tomli_w.dumps(data), encoding="utf-8")
    started = Server(tmp_path, port)
    yield started
    started.stop()


def slow_post(address: str, body: bytes, go: threading.Event) -> httpx.Response:
    """POST ``body`` in two parts, the second only once ``go`` is set: a request in flight."""

    def parts() -> Iterator[bytes]:
        yield body[:5]
        if not go.wait(15):
            raise AssertionError("the test never released the request body")
        yield body[5:]

    with httpx.Client(timeout=20) as client:
        return client.post(f"{address}/api/messages", content=parts(), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_serves_and_stops_cleanly_on_a_signal_finishing_the_request_in_hand(
    server: Server, sig: signal.Signals
) -> None:
    assert server.address == f"http://127.0.0.1:{server.port}"
    with httpx.Client(base_url=server.address, timeout=10) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert f"Chat with {COUNCIL}" in page.text
        assert client.get("/healthz").text.strip() == "ok"

    go = threading.Event()
    body = json.dumps({"text": "my bin was missed", "id": "in-flight"}).encode()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(slow_post, server.address, body, go)
        time.sleep(0.5)  # the request's headers and first bytes have reached the server
        assert not pending.done()
        signalled = time.monotonic()
        server.process.send_signal(sig)
        time.sleep(0.3)
        go.set()
        response = pending.result(timeout=20)
    code = server.process.wait(timeout=20)
    took = time.monotonic() - signalled

    assert code == 0, server.stderr()
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["sent"]["text"] == "my bin was missed"
    assert any("Report a missed bin" in m["text"] for m in data["messages"]), (
        f"the request in hand when {sig.name} came was answered without the bot's reply (after {took:.1f} s): {data}"
    )
    assert took < 5, f"took {took:.1f} s to stop after {sig.name}"

    with contextlib.closing(sqlite3.connect(server.folder / "data" / "state.db")) as db:
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert db.execute("pragma foreign_key_check").fetchall() == []
        waiting = db.execute("select count(*) from outbox where status in ('pending', 'sending')").fetchone()[0]
        assert waiting == 0
        roles = [r[0] for r in db.execute("select role from web_messages order by id")]
        assert roles[0] == "resident"
        assert set(roles[1:]) == {"bot"}, roles
    assert "Traceback" not in server.stderr()


def test_run_logs_json_lines_without_what_residents_wrote(server: Server) -> None:
    with httpx.Client(base_url=server.address, timeout=10) as client:
        for text in (
            f"hello, my name is {SECRET_WORD}",
            f"{SECRET_WORD} wants to talk to a person",
            f"my {SECRET_WORD} bin was missed",
        ):
            response = client.post("/api/messages", json={"text": text})
            assert response.status_code == 200, response.text
            assert SECRET_WORD in response.json()["sent"]["text"]
        assert client.get("/api/messages", params={"after": "x"}).status_code == 400
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=15) == 0

    logs = server.stderr()
    lines = [line for line in logs.splitlines() if line.strip()]
    assert lines, "councilbot run logged nothing"
    events = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"a line on stderr is not JSON: {line!r}")
        assert isinstance(entry, dict)
        assert {"time", "level", "event"} <= set(entry), line
        events.append(entry["event"])
    assert any("councilbot is running" in e for e in events), events
    assert any("councilbot stopped" in e for e in events), events
    assert SECRET_WORD.lower() not in logs.lower()
    assert SECRET_WORD not in server.stdout()


def test_run_on_a_port_in_use_says_so_plainly(tmp_path: Path) -> None:
    data = prepare(tmp_path)
    (tmp_path / "config.toml").write_text(tomli_w.dumps(data), encoding="utf-8")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(COUNCILBOT), "run", "--port", str(port)],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=child_env(),
            timeout=30,
            check=False,
        )
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, stderr
    assert f"cannot listen on 127.0.0.1:{port}" in stderr
    assert "Traceback" not in stderr
