"""bot.web.chat: the web chat's HTTP API, against a real Runner on 127.0.0.1.

Each test starts ``Runner`` in its own event loop on a free port, with
state.db in tmp_path and the small knowledge base from conftest compiled
beside an empty content folder, and talks to it with httpx over the real
socket, as a browser would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from conftest import ENTRIES, config_data
from itsdangerous import URLSafeSerializer

from bot import replies
from bot.config import Config, parse
from bot.engine import utc_now
from bot.escalations import Desk
from bot.runner import Runner
from bot.store import Store
from bot.web.chat import COOKIE, STATIC
from knowledge import build
from knowledge.content import Content

CLARIFIES = "taxi waste"
"""Half taxi licensing, half trade waste: the small knowledge base offers both."""
REFERENCE = re.compile(r"\bCB-[A-Z2-9]{6}\b")
EXPECTED_METRICS = (
    "councilbot_messages_total",
    "councilbot_escalations_open",
    "councilbot_escalations_overdue",
    "councilbot_outbox_backlog",
    "councilbot_outbox_failed",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_config(folder: Path, chat: dict | None = None, **web: object) -> Config:
    (folder / "content").mkdir(exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    build.build(Content(list(ENTRIES), {"rubbish": "bin"}), folder / "data" / "knowledge.db")
    data = config_data(
        storage={"content_dir": "content", "knowledge_db": "data/knowledge.db", "state_db": "data/state.db"},
        web={"host": "127.0.0.1", "port": free_port(), **web},
    )
    if chat:
        data["chat"] = chat
    return parse(data, "test", folder)


@contextlib.asynccontextmanager
async def serving(config: Config) -> AsyncIterator[tuple[Runner, httpx.AsyncClient]]:
    """A running Runner and a client (with its own cookie jar) pointed at it."""
    runner = Runner(config, env={})
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(runner.serve(ready=ready.set_result))
    async with asyncio.timeout(15):
        await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
        raise AssertionError("the runner stopped before it was ready")
    try:
        async with httpx.AsyncClient(base_url=ready.result(), timeout=10) as client:
            yield runner, client
    finally:
        runner.stop()
        async with asyncio.timeout(15):
            await task


async def post(client: httpx.AsyncClient, text: str = "", **extra: str) -> httpx.Response:
    return await client.post("/api/messages", json={"text": text, **extra})


def set_cookie(response: httpx.Response) -> str:
    cookies = [v for k, v in response.headers.multi_items() if k.lower() == "set-cookie"]
    assert len(cookies) == 1, cookies
    return cookies[0]


def forged_cookies() -> list[str]:
    return [
        "not-a-signed-value",
        URLSafeSerializer("someone else's key", salt="councilbot-web-session").dumps("their-session"),
    ]


async def read_events(response: httpx.Response, until: object, seconds: float = 10) -> list[dict]:
    """Parse server-sent events until ``until(event)`` is true; fail after ``seconds``."""
    events: list[dict] = []
    fields: dict[str, str] = {}
    async with asyncio.timeout(seconds):
        async for line in response.aiter_lines():
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
                continue
            if fields.get("event") == "message":
                event = json.loads(fields["data"])
                assert fields["id"] == str(event["id"])
                events.append(event)
                if until(event):
                    return events
            fields = {}
    raise AssertionError(f"the event stream ended first: {events}")


# -- a conversation ---------------------------------------------------------------------


async def test_a_question_is_answered_in_the_response(tmp_path: Path) -> None:
    async with serving(make_config(tmp_path)) as (_runner, client):
        response = await post(client, "my bin was missed", id="q1")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        data = response.json()
        assert data["action"] == "answer"
        assert data["sent"]["role"] == "resident"
        assert data["sent"]["text"] == "my bin was missed"
        assert isinstance(data["sent"]["id"], int)
        assert {m["role"] for m in data["messages"]} == {"bot"}
        answer = data["messages"][-1]
        assert "Report a missed bin at" in answer["text"]
        assert all(m["id"] > data["sent"]["id"] for m in data["messages"])
        assert answer["options"] == []

        again = await post(client, "how do I pay my council tax", id="q2")
        assert again.status_code == 200
        assert [m["role"] for m in again.json()["messages"]] == ["bot"]
        assert "Pay at" in again.json()["messages"][0]["text"]
        assert again.json()["sent"]["id"] > answer["id"]


async def test_clarifying_options_and_choosing_one(tmp_path: Path) -> None:
    async with serving(make_config(tmp_path)) as (_runner, client):
        response = await post(client, CLARIFIES)
        data = response.json()
        assert data["action"] == "clarify", data
        options = data["messages"][-1]["options"]
        ids = [o["id"] for o in options]
        assert sorted(ids[:-1]) == ["route.licensing.taxi", "route.waste.commercial"]
        assert ids[-1] == "handoff.human"
        assert all(o["label"] for o in options)
        taxi = next(o for o in options if o["id"] == "route.licensing.taxi")

        chosen = await post(client, taxi["label"], choice=taxi["id"], id="pick-1")
        assert chosen.status_code == 200
        picked = chosen.json()
        assert picked["sent"]["text"] == taxi["label"]
        assert "Taxi licences are dealt with by our licensing team" in picked["messages"][-1]["text"]

        trade = next(o for o in options if o["id"] == "route.waste.commercial")
        stale = await post(client, trade["label"], choice=trade["id"])
        assert stale.status_code == 200
        assert stale.json()["action"] == "clarify"
        assert stale.json()["messages"][0]["text"] == replies.stale_choice()


async def test_officer_reply_is_pushed_to_the_open_page_and_kept_for_later(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    async with serving(config) as (_runner, client):
        asked = await post(client, "talk to a person", id="h1")
        data = asked.json()
        assert data["action"] == "escalate", data
        said = " ".join(m["text"] for m in data["messages"])
        found = REFERENCE.search(said)
        assert found, said
        ref = found.group(0)
        last = max(m["id"] for m in data["messages"])

        async with client.stream("GET", "/api/events", params={"after": last}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")

            def reply() -> str:
                store = Store(config.path(config.storage.state_db))
                try:
                    desk = Desk(store, config, utc_now)
                    officer = desk.find(ref)["officer"]
                    desk.reply(ref, officer, "Your bin will be replaced on Friday. <b>Dana</b>")
                    return officer
                finally:
                    store.close()

            officer = await asyncio.to_thread(reply)
            assert officer == "duty"
            events = await read_events(stream, lambda e: e["role"] == "officer")
        pushed = events[-1]
        assert pushed["role"] == "officer"
        assert ref in pushed["text"]
        assert "Your bin will be replaced on Friday. <b>Dana</b>" in pushed["text"]
        assert all(e["id"] > last for e in events)
        cookie = client.cookies[COOKIE]

    async with serving(config) as (_runner, later):
        later.cookies.set(COOKIE, cookie)
        history = await later.get("/api/messages", params={"after": 0})
        assert history.status_code == 200
        messages = history.json()["messages"]
        roles = [m["role"] for m in messages]
        assert roles == ["resident"] + ["bot"] * len(data["messages"]) + ["officer"]
        assert messages[0]["text"] == "talk to a person"
        assert [m["text"] for m in messages[1:-1]] == [m["text"] for m in data["messages"]]
        assert messages[-1]["text"] == pushed["text"]
        assert [m["id"] for m in messages] == sorted(m["id"] for m in messages)

        newer = await later.get("/api/messages", params={"after": messages[-2]["id"]})
        assert [m["role"] for m in newer.json()["messages"]] == ["officer"]

        async with later.stream("GET", "/api/events", params={"after": messages[0]["id"]}) as stream:
            replayed = await read_events(stream, lambda e: e["role"] == "officer")
        assert [e["role"] for e in replayed] == roles[1:]


async def test_transcripts_are_per_session(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    async with serving(config) as (_runner, client):
        await post(client, "my bin was missed")
        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=10) as other:
            mine = await other.get("/api/messages", params={"after": 0})
            assert mine.status_code == 200
            assert mine.json() == {"messages": []}
            await post(other, "hi")
            theirs = (await other.get("/api/messages")).json()["messages"]
        assert [m["text"] for m in theirs if m["role"] == "resident"] == ["hi"]
        ours = (await client.get("/api/messages")).json()["messages"]
        assert [m["text"] for m in ours if m["role"] == "resident"] == ["my bin was missed"]


# -- limits -----------------------------------------------------------------------------


async def test_too_many_messages_from_one_session_get_429_with_retry_after(tmp_path: Path) -> None:
    config = make_config(tmp_path, session_rate_per_minute=3, address_rate_per_minute=100)
    async with serving(config) as (_runner, client):
        for n in range(3):
            ok = await post(client, "hi", id=f"r{n}")
            assert ok.status_code == 200, (n, ok.text)
        limited = await post(client, "hi", id="r3")
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert "too quickly" in limited.json()["error"]
        history = (await client.get("/api/messages")).json()["messages"]
        assert [m["role"] for m in history].count("resident") == 3

        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=10) as someone_else:
            assert (await post(someone_else, "hi")).status_code == 200


async def test_too_many_messages_from_one_address_get_429(tmp_path: Path) -> None:
    config = make_config(tmp_path, session_rate_per_minute=30, address_rate_per_minute=2)
    async with serving(config) as (_runner, client):
        statuses = []
        for _ in range(3):
            async with httpx.AsyncClient(base_url=str(client.base_url), timeout=10) as fresh:
                response = await post(fresh, "hi")
                statuses.append(response.status_code)
        assert statuses == [200, 200, 429]
        assert int(response.headers["retry-after"]) >= 1


async def test_an_oversize_message_gets_413(tmp_path: Path) -> None:
    config = make_config(tmp_path, chat={"max_message_chars": 50})
    async with serving(config) as (_runner, client):
        longest = await post(client, "b" * 50)
        assert longest.status_code == 200
        over = await post(client, "b" * 51)
        assert over.status_code == 413
        assert "50 characters" in over.json()["error"]
        huge = await client.post(
            "/api/messages",
            content=b'{"text": "' + b"x" * 100_000 + b'"}',
            headers={"Content-Type": "application/json"},
        )
        assert huge.status_code == 413
        history = (await client.get("/api/messages")).json()["messages"]
        assert [m["text"] for m in history if m["role"] == "resident"] == ["b" * 50]


# -- sessions ---------------------------------------------------------------------------


async def test_a_first_message_creates_a_session_with_a_safe_cookie(tmp_path: Path) -> None:
    async with serving(make_config(tmp_path)) as (_runner, client):
        first = await post(client, "hi")
        assert first.status_code == 200
        header = set_cookie(first)
        assert header.startswith(f"{COOKIE}=")
        attributes = {part.strip().split("=")[0].lower(): part.strip() for part in header.split(";")[1:]}
        assert "httponly" in attributes
        assert attributes["samesite"].lower() == "samesite=strict"
        assert attributes["path"] == "Path=/"
        assert "secure" not in attributes  # plain http on 127.0.0.1
        second = await post(client, "my bin was missed")
        assert "set-cookie" not in second.headers
        history = (await client.get("/api/messages")).json()["messages"]
        assert [m["text"] for m in history if m["role"] == "resident"] == ["hi", "my bin was missed"]

        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=10) as newcomer:
            page = await newcomer.get("/")
        page_cookie = set_cookie(page)
        assert "HttpOnly" in page_cookie
        assert "samesite=strict" in page_cookie.lower()


async def test_the_cookie_is_secure_behind_https(tmp_path: Path) -> None:
    config = make_config(tmp_path, public_url="https://chat.example.gov.uk")
    async with serving(config) as (_runner, client):
        response = await post(client, "hi")
        assert "secure" in [p.strip().lower() for p in set_cookie(response).split(";")]


async def test_a_forged_cookie_gets_401_everywhere(tmp_path: Path) -> None:
    async with serving(make_config(tmp_path)) as (runner, client):
        await post(client, "hi")
        for forged in forged_cookies():
            client.cookies.clear()
            client.cookies.set(COOKIE, forged)
            sent = await post(client, "my bin was missed")
            assert sent.status_code == 401, forged
            assert "reload" in sent.json()["error"].lower()
            assert "set-cookie" not in sent.headers
            assert (await client.get("/api/messages", params={"after": 0})).status_code == 401
            async with client.stream("GET", "/api/events") as events:
                assert events.status_code == 401
        rows = runner.services.engine.store.db.execute("select count(*) from web_messages where role = 'resident'")
        assert rows.fetchone()[0] == 1


async def test_events_without_a_session_get_401(tmp_path: Path) -> None:
    async with serving(make_config(tmp_path)) as (_runner, client):
        async with client.stream("GET", "/api/events") as events:
            assert events.status_code == 401


# -- what comes in ----------------------------------------------------------------------


async def test_markup_is_returned_as_plain_json_text(tmp_path: Path) -> None:
    attacks = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]
    async with serving(make_config(tmp_path)) as (_runner, client):
        for attack in attacks:
            response = await post(client, attack)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/json")
            assert response.json()["sent"]["text"] == attack
            assert "&lt;" not in response.text
        history = (await client.get("/api/messages")).json()["messages"]
        assert [m["text"] for m in history if m["role"] == "resident"] == attacks
        page = await client.get("/")
        assert "alert(1)" not in page.text


def test_the_page_never_inserts_html() -> None:
    script = (STATIC / "chat.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert "textContent" in script
    assert "innerHTML" not in (STATIC / "widget.js").read_text(encoding="utf-8")


async def test_bad_json_gets_400_with_a_clear_error(tmp_path: Path) -> None:
    async with serving(make_config(tmp_path)) as (_runner, client):
        for body in (b"{not json", b"\xff\xfe", b"[1, 2]", b'{"text": 5}', b'"just a string"'):
            response = await client.post("/api/messages", content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 400, body
            assert '{"text": "your question"}' in response.json()["error"], body
        odd = await post(client, "hi", id="x" * 101)
        assert odd.status_code == 400
        assert '"id"' in odd.json()["error"]
        assert (await post(client, "hi")).status_code == 200
        after = await client.get("/api/messages", params={"after": "soon"})
        assert after.status_code == 400
        assert '"after"' in after.json()["error"]


async def test_a_repeated_client_id_is_not_answered_twice(tmp_path: Path) -> None:
    async with serving(make_config(tmp_path)) as (runner, client):
        first = await post(client, "my bin was missed", id="same-id")
        assert first.json()["action"] == "answer"
        answered = len(first.json()["messages"])
        assert answered >= 1
        again = await post(client, "my bin was missed", id="same-id")
        assert again.status_code == 200
        assert again.json()["action"] == "duplicate"
        assert again.json()["messages"] == []
        history = (await client.get("/api/messages")).json()["messages"]
        assert [m["role"] for m in history].count("bot") == answered
        assert [m["role"] for m in history].count("resident") == 1, (
            f"the repeated message is kept twice in the resident's history: {history}"
        )
        store = runner.services.engine.store
        answers = store.db.execute("select count(*) from messages where direction = 'out'").fetchone()[0]
        assert answers == 1


# -- the page and its headers -------------------------------------------------------------


async def test_the_page_has_a_strict_content_security_policy(tmp_path: Path) -> None:
    config = make_config(tmp_path, embed_origins=["https://www.example.gov.uk"])
    async with serving(config) as (_runner, client):
        page = await client.get("/")
        assert page.status_code == 200
        policy = {d.split()[0]: d.split()[1:] for d in page.headers["content-security-policy"].split(";") if d.strip()}
        assert policy["script-src"] == ["'self'"]
        assert policy["default-src"] == ["'none'"]
        assert policy["connect-src"] == ["'self'"]
        assert policy["frame-ancestors"] == ["'self'", "https://www.example.gov.uk"]
        assert "unsafe-inline" not in page.headers["content-security-policy"]
        assert "unsafe-eval" not in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"

        embed = await client.get("/embed")
        assert embed.status_code == 200
        assert 'class="embedded"' in embed.text
        assert "frame-ancestors 'self' https://www.example.gov.uk" in embed.headers["content-security-policy"]

        api = await post(client, "hi")
        assert "frame-ancestors 'none'" in api.headers["content-security-policy"]

        assert "<script>" not in page.text.replace('<script src="/static/chat.js" defer></script>', "")
        loaded = re.findall(r'<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)="([^"]*)"', page.text)
        assert loaded == ["/static/chat.css", "/static/chat.js"]
        for path in loaded:
            static = await client.get(path)
            assert static.status_code == 200, path

        widget = await client.get("/widget.js")
        assert widget.status_code == 200
        assert widget.headers["content-type"].startswith("text/javascript")
        assert f'"{str(client.base_url).rstrip("/")}"' in widget.text
        assert "__COUNCILBOT_URL__" not in widget.text


def test_no_third_party_hosts_in_the_page_or_its_files() -> None:
    url = re.compile(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)
    for name in ("index.html", "chat.js", "chat.css"):
        text = (STATIC / name).read_text(encoding="utf-8")
        assert not url.findall(text), (name, url.findall(text))
        assert "@import" not in text
    assert "url(" not in (STATIC / "chat.css").read_text(encoding="utf-8")


async def test_metrics_are_prometheus_text(tmp_path: Path) -> None:
    async with serving(make_config(tmp_path)) as (_runner, client):
        await post(client, "my bin was missed")
        await post(client, "hi")
        await post(client, "talk to a person")
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        sample = re.compile(r'^([a-z_]+)(\{[a-z_]+="[^"]*"(?:,[a-z_]+="[^"]*")*\})? (\d+(?:\.\d+)?)$')
        values: dict[str, float] = {}
        typed = set()
        for line in response.text.splitlines():
            if line.startswith("# TYPE "):
                typed.add(line.split()[2])
                continue
            if line.startswith("#"):
                assert line.startswith("# HELP "), line
                continue
            match = sample.match(line)
            assert match, f"not a Prometheus sample: {line!r}"
            values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
        for name in EXPECTED_METRICS:
            assert name in typed, name
        assert values['councilbot_messages_total{action="answer"}'] == 2
        assert values['councilbot_messages_total{action="escalate"}'] == 1
        assert values["councilbot_escalations_open"] == 1
        assert values["councilbot_escalations_overdue"] == 0
        assert values["councilbot_outbox_failed"] == 0
        assert values["councilbot_outbox_backlog"] >= 0
