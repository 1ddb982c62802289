"""``councilbot``: a thin command line over the library.

Every command has help text with an example (``councilbot COMMAND --help``).
Problems with input are reported as one clear line and exit status 1 or 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import threading
from pathlib import Path

from bot import config as config_module
from bot import data_cli, evaluate, officer_cli
from bot.config import Config, ConfigError
from bot.engine import utc_now
from bot.escalations import Desk
from bot.messages import IncomingMessage, Outcome, OutgoingMessage, as_text
from bot.outbox import Dispatcher
from bot.store import Store, StoreError
from bot.wiring import SetupError, compile_knowledge, content_folder, make_engine
from knowledge import content, exchange
from knowledge.base import KnowledgeBaseError
from knowledge.check import check

EXAMPLES = {
    "run": "councilbot run            # then open http://127.0.0.1:8080",
    "chat": "councilbot chat            # talk to the bot in this terminal",
    "ask": 'councilbot ask "when is my bin day"\n  printf "hi\\nmissed bin\\n" | councilbot ask --json',
    "kb build": "councilbot kb build --spec ../shared/kb-spec/intents.toml",
    "kb check": "councilbot kb check --spec ../shared/kb-spec/intents.toml",
    "kb export": "councilbot kb export --format csv > faqs.csv",
    "kb import": "councilbot kb import faqs.csv",
    "kb test": "councilbot kb test ../shared/eval/dev.jsonl --show 20",
    "kb suggestions": "councilbot kb suggestions",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="councilbot",
        description="A chat bot for conversations between a council and the people it serves.",
        epilog="Example: councilbot chat",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="configuration file (default: $COUNCILBOT_CONFIG, else ./config.toml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(group: argparse._SubParsersAction, name: str, key: str, help_text: str) -> argparse.ArgumentParser:
        return group.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"Example:\n  {EXAMPLES[key]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    run = command(
        commands,
        "run",
        "run",
        "Serve every configured channel: the web chat, and Telegram and Slack when their tokens are set.",
    )
    run.add_argument("--host", help="listen address (default: [web] host, 127.0.0.1)")
    run.add_argument("--port", type=int, help="listen port (default: [web] port, 8080)")

    chat = command(commands, "chat", "chat", "Talk to the bot in this terminal (local state, no network).")
    chat.add_argument("--user", default="", help="who you are in the conversation (default: your login name)")

    ask = command(commands, "ask", "ask", "Preview the bot's answer without keeping any state.")
    ask.add_argument("text", nargs="?", help="the message; without it, one message per line is read from stdin")
    ask.add_argument("--json", action="store_true", help="print a JSON object per message")

    kb = commands.add_parser("kb", help="Build, check, export and import the knowledge base.")
    kb_commands = kb.add_subparsers(dest="kb_command", required=True, metavar="KB_COMMAND")
    for name, help_text in (
        ("build", "Check the content and compile it into knowledge.db (atomically)."),
        ("check", "Validate the content; list every problem and exit 1 if there are any."),
    ):
        sub = command(kb_commands, name, f"kb {name}", help_text)
        sub.add_argument("--spec", type=Path, help="an intents specification whose ids must all have entries")
    export = command(kb_commands, "export", "kb export", "Print every entry as JSON lines or CSV (for Excel).")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--output", "-o", type=Path, help="write to this file instead of standard output")
    imported = command(
        kb_commands,
        "import",
        "kb import",
        "Add or update entries from a CSV file (as exported); nothing is written unless all of it checks.",
    )
    imported.add_argument("file", type=Path)
    tested = command(
        kb_commands,
        "test",
        "kb test",
        "Score the bot on messages with known intents: metrics, confusions and failing examples.",
    )
    tested.add_argument("cases", type=Path, help='JSON lines: {"text": ..., "expect": "intent id" or null}')
    tested.add_argument("--show", type=int, default=20, help="how many failing examples to list (default 20)")
    tested.add_argument("--spec", type=Path, help="judge only this specification's intents, as the shared scorer does")
    command(
        kb_commands, "suggestions", "kb suggestions", "List answers officers suggested adding to the knowledge base."
    )
    officer_cli.add_parsers(commands)
    data_cli.add_parsers(commands)
    return parser


def _load_config(args: argparse.Namespace) -> Config:
    return config_module.load(args.config)


def run_chat(config: Config, user: str) -> int:
    """The terminal conversation: one message per line until end of input.

    Replies from officers (sent with ``councilbot escalations reply``) are
    delivered to this terminal while it is open, and on its next start.
    """
    engine = make_engine(config)
    user = user or getpass.getuser()
    interactive = sys.stdin.isatty()
    lock = threading.Lock()
    poller = Store(config.path(config.storage.state_db))

    def show(message: OutgoingMessage) -> None:
        with lock:
            print(f"\nbot> {as_text(message)}\n", flush=True)
            if interactive:
                print("you> ", end="", flush=True)

    relay = Dispatcher(poller, {"terminal": show}, utc_now, conversation=user)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(1.0):
            relay.run_once()

    print(
        f"Hello, I'm the {config.council.name} assistant. Ask me about council services, "
        "or councillors' use of social media. Type 'talk to a person' at any time; Ctrl-D to leave."
    )
    relay.run_once()
    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        while True:
            if interactive:
                with lock:
                    print("you> ", end="", flush=True)
            line = sys.stdin.readline()
            if not line:
                break
            outcome = engine.handle(IncomingMessage("terminal", user, line.rstrip("\n")))
            if outcome is not None:
                with lock:
                    print(f"bot> {outcome.text}\n", flush=True)
    finally:
        stop.set()
        thread.join(timeout=5)
        relay.run_once()
        poller.close()
    if interactive:
        print()
    return 0


def run_server(config: Config, host: str | None, port: int | None) -> int:
    """``councilbot run``: serve until SIGTERM or Ctrl-C."""
    import asyncio
    import dataclasses

    from bot import logs
    from bot.runner import Runner

    if host or port:
        web = dataclasses.replace(config.web, host=host or config.web.host, port=port or config.web.port)
        config = dataclasses.replace(config, web=web)
    logs.configure(config.log.level)

    async def main() -> None:
        runner = Runner(config)
        await runner.serve(
            ready=lambda url: print(f"councilbot is serving the web chat at {url} (Ctrl-C to stop)", flush=True)
        )

    try:
        asyncio.run(main())
    except OSError as error:
        print(f"councilbot: cannot listen on {config.web.host}:{config.web.port}: {error.strerror}", file=sys.stderr)
        return 2
    return 0


def _as_json(text: str, outcome: Outcome) -> str:
    return json.dumps(
        {
            "text": text,
            "action": outcome.action,
            "intent": outcome.intent,
            "confidence": outcome.confidence,
            "options": list(outcome.options),
            "officer": outcome.officer,
            "reply": outcome.text,
        },
        ensure_ascii=False,
    )


def run_ask(config: Config, text: str | None, as_json: bool) -> int:
    """Preview answers: one text, or one per line of standard input."""
    engine = make_engine(config, stateful=False)
    texts = [text] if text is not None else (line.rstrip("\r\n") for line in sys.stdin)
    for message in texts:
        outcome = engine.preview(message)
        print(_as_json(message, outcome) if as_json else outcome.text, flush=text is not None)
    return 0


def run_kb(config: Config, args: argparse.Namespace) -> int:
    """The ``kb`` commands."""
    if args.kb_command in ("build", "check"):
        if args.kb_command == "check":
            loaded = content.load(content_folder(config))
            ids: list[str] = []
            problems: list = []
            if args.spec is not None:
                from knowledge.check import spec_ids

                ids, problems = spec_ids(args.spec)
            problems += check(loaded, config.placeholders(), ids)
            for problem in problems:
                print(problem)
            if problems:
                print(f"{len(problems)} problem(s) found", file=sys.stderr)
                return 1
            print(f"ok: {len(loaded.entries)} entries, {sum(len(e.questions) for e in loaded.entries)} questions")
            return 0
        counts, problems = compile_knowledge(config, args.spec)
        for problem in problems:
            print(problem)
        if problems:
            print(f"{len(problems)} problem(s) found; the previous knowledge.db was left as it was", file=sys.stderr)
            return 1
        target = config.path(config.storage.knowledge_db)
        print(
            f"built {target}: {counts['entries']} entries, {counts['questions']} questions, "
            f"{counts['synonyms']} synonyms"
        )
        return 0
    if args.kb_command == "test":
        return run_kb_test(config, args.cases, args.show, args.spec)
    if args.kb_command == "suggestions":
        store = Store(config.path(config.storage.state_db))
        rows = Desk(store, config, utc_now).suggestions()
        for row in rows:
            print(
                f"{row['at'][:16]} {row['ref']} [{row['topic']}] from {row['officer']}\n  Q: {row['question']}\n"
                f"  A: {row['answer']}\n"
            )
        print(f"{len(rows)} suggestion(s); add the good ones to knowledge/content/ and run 'councilbot kb build'")
        return 0
    folder = content_folder(config)
    loaded = content.load(folder)
    if args.kb_command == "export":
        if loaded.problems:
            for problem in loaded.problems:
                print(problem, file=sys.stderr)
            return 1
        text = exchange.to_jsonl(loaded.entries) if args.format == "jsonl" else exchange.to_csv(loaded.entries)
        if args.output:
            args.output.write_text(text, encoding="utf-8-sig" if args.format == "csv" else "utf-8", newline="")
            print(f"wrote {len(loaded.entries)} entries to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0
    incoming = exchange.read_csv(args.file, folder)
    merged = exchange.merge(loaded, incoming.entries)
    problems = incoming.problems + check(merged, config.placeholders())
    if problems:
        for problem in problems:
            print(problem)
        print(f"{len(problems)} problem(s) found; no content file was changed", file=sys.stderr)
        return 1
    changed = {e.source for e in incoming.entries}
    written = exchange.write_files(merged, changed)
    print(
        f"imported {len(incoming.entries)} entries into {', '.join(p.name for p in written) or 'no files'}; "
        "run 'councilbot kb build' to use them"
    )
    return 0


def run_kb_test(config: Config, cases_path: Path, show: int, spec: Path | None = None) -> int:
    """Print metrics, the commonest confusions and failing examples."""
    cases = evaluate.read_cases(cases_path)
    judged = None
    if spec is not None:
        from knowledge.check import spec_ids

        judged, problems = spec_ids(spec)
        if problems:
            raise evaluate.CasesError(str(problems[0]))
    engine = make_engine(config, stateful=False)
    kinds = {e.id: e.kind for e in engine.kb.entries.values()}
    unknown = sorted({c.expect for c in cases if c.expect and c.expect not in kinds})
    if unknown:
        print(f"note: the cases expect intents this knowledge base lacks: {', '.join(unknown)}", file=sys.stderr)
    report = evaluate.evaluate(cases, engine.preview, kinds, judged)
    print(json.dumps(report.metrics, indent=2))
    if report.confusion:
        print("\nmistaken for (expected -> got: count):")
        for (expected, got), count in report.confusion.most_common(15):
            print(f"  {expected} -> {got}: {count}")
    if report.failures and show:
        print(f"\nfailing examples (first {min(show, len(report.failures))} of {len(report.failures)}):")
        for case, outcome in report.failures[:show]:
            got = outcome.intent or ",".join(outcome.options) or "-"
            print(
                f"  expected {case.expect or '(escalate)'}, got {outcome.action} {got} "
                f"({outcome.confidence}): {case.text}"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``councilbot`` command."""
    args = _parser().parse_args(argv)
    for stream in (sys.stdin, sys.stdout):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]
    try:
        config = _load_config(args)
        if args.command == "run":
            return run_server(config, args.host, args.port)
        if args.command == "chat":
            return run_chat(config, args.user)
        if args.command == "ask":
            return run_ask(config, args.text, args.json)
        if args.command == "escalations":
            return officer_cli.run_escalations(config, args)
        if args.command == "data":
            return data_cli.run_data(config, args)
        if args.command == "audit":
            return data_cli.run_audit(config, args)
        if args.command == "officers":
            topics = {e.topic for e in content.load(content_folder(config)).entries}
            return officer_cli.run_officers_check(config, topics)
        return run_kb(config, args)
    except (ConfigError, SetupError, KnowledgeBaseError, StoreError, evaluate.CasesError) as error:
        print(f"councilbot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
