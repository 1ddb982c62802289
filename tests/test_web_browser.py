"""The web chat in a real browser: Debian's Chromium driven by Playwright.

A real Runner serves the bundled knowledge base on a free 127.0.0.1 port
from a background thread. The browser is /usr/bin/chromium (never a
downloaded one), headless, with a fresh profile; every request it makes
must go to that address.

axe-core is vendored in tests/vendor/axe.min.js (from the npm package
axe-core, MPL-2.0, licence beside it). The page's Content-Security-Policy
(script-src 'self') blocks inline scripts, and the CSP stays in force in
these tests: axe is served by a Playwright route at a same-origin URL that
the server itself does not have (ROUTED_AXE), and added as
<script src=...>.

Needs: ``apt-get install chromium`` and ``pip install 'playwright>=1.45,<2'``
(no ``playwright install``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import tomli_w
from conftest import OFFICERS, config_data
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, Route, expect, sync_playwright

from bot.config import Config, parse
from bot.runner import Runner
from bot.wiring import make_engine

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
ROUTED_AXE = "/__test-only__/axe.min.js"
COUNCILBOT = Path(sys.executable).with_name("councilbot")
REFERENCE = re.compile(r"\bCB-[A-Z2-9]{6}\b")
WAIT_MS = 10_000
GREETINGS = ["hello", "hi", "good morning"]
"""The first question: the first of these the bundled knowledge base answers outright."""
BROAD = ["bins", "council tax", "parking", "housing", "licence", "planning", "rubbish", "tax", "waste"]
"""Broad questions: the first the bundled knowledge base answers with a choice is used."""
OFFICER_REPLY = "Hello from the council: your new bin arrives on Friday."

expect.set_options(timeout=WAIT_MS)


class Background:
    """A Runner in its own thread and event loop (it and its database connection live there)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.ready = threading.Event()
        self.address = ""
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.runner: Runner | None = None
        self.thread = threading.Thread(target=self._main, name="councilbot-runner", daemon=True)
        self.thread.start()
        if not self.ready.wait(60):
            raise AssertionError("the runner did not start within 60 s")
        if self.error is not None:
            raise AssertionError(f"the runner failed to start: {self.error!r}")

    def _main(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.runner = Runner(self.config, env={})
            await self.runner.serve(ready=self._started)

        try:
            asyncio.run(main())
        except BaseException as error:
            self.error = error
        finally:
            self.ready.set()

    def _started(self, address: str) -> None:
        self.address = address
        self.ready.set()

    def stop(self) -> None:
        if self.loop is not None and self.runner is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.runner.stop)
        self.thread.join(20)
        assert not self.thread.is_alive(), "the runner did not stop within 20 s"
        assert self.error is None, repr(self.error)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Background, Path]]:
    """The runner over the bundled content, and the config.toml the officers' CLI shares with it."""
    folder = tmp_path_factory.mktemp("site")
    data = config_data(
        storage={"knowledge_db": "data/knowledge.db", "state_db": "data/state.db"},
        web={"host": "127.0.0.1", "port": _free_port()},
    )
    assert any(o.get("sees_all") for o in OFFICERS)
    path = folder / "config.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    server = Background(parse(data, str(path), folder))
    yield server, path
    server.stop()


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: apt-get install chromium"
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1024, "height": 768},
            timeout=30_000,
        )
        browser.set_default_timeout(WAIT_MS)
        try:
            yield browser
        finally:
            browser.close()


class Watch:
    """What the page did that it should not: script errors, CSP violations, requests elsewhere."""

    def __init__(self, page: Page, address: str) -> None:
        self.address = address
        self.problems: list[str] = []
        self.requests: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("console", self._console)
        page.on("request", self._request)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            self.problems.append(f"console {message.type}: {message.text}")

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)
        if not request.url.startswith(self.address + "/"):
            self.problems.append(f"request to another host: {request.url}")

    def check(self) -> None:
        assert self.problems == [], self.problems
        assert self.requests, "the page made no requests at all"


@pytest.fixture
def page(context: BrowserContext, site: tuple[Background, Path]) -> Iterator[tuple[Page, Watch]]:
    server, _ = site
    context.clear_cookies()
    tab = context.new_page()
    tab.route(f"{server.address}{ROUTED_AXE}", lambda route: route.fulfill(path=AXE, content_type="text/javascript"))
    watch = Watch(tab, server.address)
    try:
        yield tab, watch
    finally:
        tab.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_with(config: Config, candidates: list[str], action: str) -> str:
    """The first candidate the bundled knowledge base answers with ``action`` (by the engine's preview)."""
    engine = make_engine(config, stateful=False)
    seen = {}
    for text in candidates:
        outcome = engine.preview(text)
        if outcome.action == action:
            return text
        seen[text] = outcome.action
    raise AssertionError(f"no candidate gets {action!r} from the bundled knowledge base any more: {seen}")


def focused(page: Page) -> dict:
    return page.evaluate(
        "() => ({id: document.activeElement.id, tag: document.activeElement.tagName,"
        " text: document.activeElement.textContent.trim()})"
    )


def tab_to(page: Page, wanted: object, key: str = "Tab", presses: int = 25) -> None:
    """Press ``key`` until ``wanted(focused element)`` is true."""
    for _ in range(presses):
        page.keyboard.press(key)
        if wanted(focused(page)):
            return
    raise AssertionError(f"{key} never reached the element; focus is on {focused(page)}")


def say(page: Page, text: str) -> None:
    """Type into the focused message box and press Enter."""
    assert focused(page)["id"] == "message", focused(page)
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def exchange(page: Page, act: Callable[[], None]) -> list[dict]:
    """Do ``act`` (which sends a message); wait for the answer; return the log items it added."""
    before = len(log_items(page))
    with page.expect_response(lambda r: r.url.endswith("/api/messages") and r.request.method == "POST") as sent:
        act()
    assert sent.value.ok, f"POST /api/messages answered {sent.value.status}"
    expect(page.locator("#send")).to_be_enabled()
    expect(page.locator("#message")).to_be_focused()
    added = log_items(page)[before:]
    roles = sorted(item["role"] for item in added)
    assert roles.count("resident") == 1 and set(roles) == {"bot", "resident"}, added
    return added


def log_items(page: Page) -> list[dict]:
    """The conversation as shown: who said it (from the item's class) and the text."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('[role="log"] li.message')).map(item => ({
            role: ["resident", "bot", "officer"].find(role => item.classList.contains(role)),
            text: item.innerText,
            options: Array.from(item.querySelectorAll("ul.options button")).map(b => b.textContent.trim())
        }))"""
    )


def cli(config_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COUNCILBOT_CONFIG", "COUNCILBOT_OFFICER")}
    return subprocess.run(
        [str(COUNCILBOT), "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def run_axe(page: Page) -> list[dict]:
    origin = re.match(r"http://[^/]+", page.url)
    assert origin, page.url
    page.add_script_tag(url=origin.group(0) + ROUTED_AXE)
    # New messages fade in; judge colours once they have (a half-faded message has too little contrast).
    page.wait_for_function("() => document.getAnimations().length === 0")
    return page.evaluate(
        """async () => {
            const results = await axe.run(document, {resultTypes: ["violations"]});
            return results.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(" "))
            }));
        }"""
    )


def assert_accessible(page: Page) -> None:
    violations = run_axe(page)
    for violation in violations:
        print(f"axe {violation['impact']}: {violation['id']}: {violation['help']} at {violation['nodes']}")
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)


def test_a_keyboard_conversation_with_choices_and_an_officers_reply(
    page: tuple[Page, Watch], site: tuple[Background, Path]
) -> None:
    tab, watch = page
    server, config_path = site
    greeting = first_with(server.config, GREETINGS, "answer")
    broad = first_with(server.config, BROAD, "clarify")
    log = tab.locator('[role="log"]')

    tab.goto(server.address + "/")
    expect(tab).to_have_title(re.compile("Chat with"))
    expect(log).to_have_count(1)
    expect(log).to_have_attribute("aria-live", "polite")

    tab_to(tab, lambda f: f["id"] == "message")
    added = exchange(tab, lambda: say(tab, greeting))
    assert any(i["role"] == "resident" and greeting in i["text"] for i in added), added
    expect(tab.locator("#message")).to_have_value("")

    added = exchange(tab, lambda: say(tab, broad))
    offered = [i for i in added if i["options"]]
    assert offered, f"{broad!r} was expected to offer choices: {added}"
    labels = offered[-1]["options"]
    assert len(labels) >= 3, labels
    wanted = labels[0]
    tab_to(tab, lambda f: f["tag"] == "BUTTON" and f["text"] == wanted, key="Shift+Tab")
    added = exchange(tab, lambda: tab.keyboard.press("Enter"))
    assert any(i["role"] == "resident" and wanted in i["text"] for i in added), added

    added = exchange(tab, lambda: say(tab, "talk to a person"))
    found = [REFERENCE.search(i["text"]) for i in added if i["role"] == "bot"]
    refs = [f.group(0) for f in found if f]
    assert refs, f"no reference in the answer to 'talk to a person': {added}"
    ref = refs[-1]

    tab.evaluate("() => { window.notReloaded = true; }")
    listed = cli(config_path, "escalations", "list", "--json", "--as", "lead")
    assert listed.returncode == 0, listed.stderr
    rows = {row["ref"]: row for row in json.loads(listed.stdout)}
    assert ref in rows, rows.keys()
    officer = rows[ref]["officer"]
    replied = cli(config_path, "escalations", "reply", ref, OFFICER_REPLY, "--as", officer)
    assert replied.returncode == 0, replied.stderr

    from_officer = log.locator("li.message.officer")
    expect(from_officer).to_have_count(1)
    expect(from_officer).to_contain_text(OFFICER_REPLY)
    expect(from_officer).to_contain_text("Council officer")
    assert tab.evaluate("() => window.notReloaded === true"), "the page was reloaded"
    watch.check()


def test_each_question_shows_before_its_answer_even_when_the_push_comes_first(
    page: tuple[Page, Watch], site: tuple[Background, Path]
) -> None:
    """Once the page has its event stream open, the answer to the next question is pushed on it
    as well as returned in the response to the POST; here the response is held back a little
    (as a slow connection would), so the pushed answer reaches the page first."""
    tab, watch = page
    server, _ = site
    web = next(c for c in server.runner.channels if c.platform == "web")

    def slow_post(route: Route) -> None:
        if route.request.method != "POST":
            route.fallback()
            return
        response = route.fetch()
        time.sleep(0.5)
        route.fulfill(response=response)

    tab.goto(server.address + "/")
    tab_to(tab, lambda f: f["id"] == "message")
    first = exchange(tab, lambda: say(tab, first_with(server.config, GREETINGS, "answer")))
    assert first[0]["role"] == "resident", first
    deadline = time.monotonic() + 10
    while web.streams < 1:
        assert time.monotonic() < deadline, "the page did not open its event stream after the first answer"
        time.sleep(0.05)
    tab.route(f"{server.address}/api/messages", slow_post)
    second = exchange(tab, lambda: say(tab, "thank you"))
    assert second[0]["role"] == "resident", "the answer is shown above the question it answers: " + json.dumps(
        log_items(tab), indent=1
    )
    watch.check()


def test_no_serious_accessibility_problems(page: tuple[Page, Watch], site: tuple[Background, Path]) -> None:
    tab, watch = page
    server, _ = site
    tab.goto(server.address + "/")
    assert_accessible(tab)
    tab_to(tab, lambda f: f["id"] == "message")
    exchange(tab, lambda: say(tab, first_with(server.config, GREETINGS, "answer")))
    added = exchange(tab, lambda: say(tab, first_with(server.config, BROAD, "clarify")))
    assert any(i["options"] for i in added), added
    assert_accessible(tab)
    watch.check()


def test_small_screens_and_coming_back(page: tuple[Page, Watch], site: tuple[Background, Path]) -> None:
    tab, watch = page
    server, _ = site
    tab.set_viewport_size({"width": 320, "height": 640})
    tab.goto(server.address + "/")
    tab_to(tab, lambda f: f["id"] == "message")
    long_word = "www.example-council-with-a-very-long-address.gov.uk/bins/collection-day"
    exchange(tab, lambda: say(tab, f"what about {long_word}?"))
    shown = log_items(tab)

    tab.reload()
    expect(tab.locator('[role="log"] li.message')).to_have_count(len(shown))
    assert log_items(tab) == shown, "the conversation did not come back as it was"
    for selector in ("#message", "#send"):
        box = tab.locator(selector)
        expect(box).to_be_visible()
        bounds = box.bounding_box()
        assert bounds is not None
        assert bounds["x"] >= 0 and bounds["x"] + bounds["width"] <= 320, (selector, bounds)
    width = tab.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 320, f"the page scrolls sideways at 320 px: scrollWidth {width}"
    watch.check()


def test_markup_a_resident_types_is_shown_as_text(page: tuple[Page, Watch], site: tuple[Background, Path]) -> None:
    tab, watch = page
    server, _ = site
    attacks = ['<img src=x onerror="window.injected = 1">', "<script>window.injected = 2</script>"]
    tab.goto(server.address + "/")
    tab_to(tab, lambda f: f["id"] == "message")
    for attack in attacks:
        added = exchange(tab, lambda attack=attack: say(tab, attack))
        assert any(i["role"] == "resident" and attack in i["text"] for i in added), added
    assert tab.evaluate("""() => document.querySelectorAll('[role="log"] img, [role="log"] script').length""") == 0
    assert tab.evaluate("() => window.injected === undefined")
    watch.check()
