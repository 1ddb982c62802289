"""Put the pieces together from a configuration: knowledge base, matcher, engine.

The one place that knows how the packages fit; the CLI and every runner
start here.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
from pathlib import Path

import intents
from bot.config import Config
from bot.engine import Engine
from bot.store import Store
from intents.decision import Thresholds
from intents.matcher import Matcher
from knowledge import build, check, content
from knowledge.base import KnowledgeBase

log = logging.getLogger("councilbot")


class SetupError(Exception):
    """The knowledge base could not be prepared; the message says why."""


def content_folder(config: Config) -> Path:
    """The content folder the configuration names, else the bundled one."""
    return config.content_dir or content.BUNDLED


def compile_knowledge(config: Config, spec: Path | None = None) -> tuple[dict[str, int] | None, list]:
    """Check the content and, if it is clean, build knowledge.db atomically."""
    loaded = content.load(content_folder(config))
    ids: list[str] = []
    problems: list = []
    if spec is not None:
        ids, problems = check.spec_ids(spec)
    problems += check.check(loaded, config.placeholders(), ids)
    if problems:
        return None, problems
    return build.build(loaded, config.path(config.storage.knowledge_db)), []


def _stale(db: Path, folder: Path) -> bool:
    if not db.is_file():
        return True
    built = db.stat().st_mtime
    return any(p.stat().st_mtime > built for p in folder.glob("*.toml"))


def open_knowledge(config: Config) -> KnowledgeBase:
    """The knowledge base, built first if it is missing or older than its content."""
    db = config.path(config.storage.knowledge_db)
    if _stale(db, content_folder(config)):
        counts, problems = compile_knowledge(config)
        if problems:
            listing = "\n".join(f"  {p}" for p in problems[:50])
            raise SetupError(f"the knowledge content has {len(problems)} problem(s):\n{listing}")
        log.info("built the knowledge base", extra={"path": str(db), "entries": counts["entries"]})
    return KnowledgeBase(db)


def make_matcher(kb: KnowledgeBase, config: Config) -> Matcher:
    """A matcher over ``kb`` with the configuration's thresholds.

    The analysed index is cached beside knowledge.db (``.index.pickle``), keyed
    by the database file and the matcher's own source, so a restart skips
    re-analysing every example question. A missing, stale or unreadable
    cache is simply rebuilt.
    """
    m = config.matcher
    thresholds = Thresholds(
        answer=m.answer_threshold,
        clarify=m.clarify_threshold,
        margin=m.margin,
        max_options=m.max_options,
        safety=m.safety_threshold,
    )
    safety_ids = kb.ids_of_kind("safety")
    cache = kb.path.with_name(kb.path.name + ".index.pickle")
    key = _cache_key(kb.path)
    try:
        with cache.open("rb") as f:
            stored_key, matcher = pickle.load(f)
        if stored_key == key and isinstance(matcher, Matcher):
            matcher.thresholds = thresholds
            matcher.safety_intents = frozenset(safety_ids)
            return matcher
    except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        pass
    matcher = Matcher(kb.examples, kb.synonyms, safety_ids, thresholds)
    with contextlib.suppress(OSError):
        temporary = cache.with_name(cache.name + f".{os.getpid()}.tmp")
        with temporary.open("wb") as f:
            pickle.dump((key, matcher), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(temporary, 0o600)
        os.replace(temporary, cache)
    return matcher


def _cache_key(db: Path) -> tuple:
    """What the cached index depends on: the knowledge base file and the matcher's code."""
    stat = db.stat()
    source = hashlib.sha256()
    for path in sorted(Path(intents.__file__).parent.glob("*.py")):
        source.update(path.read_bytes())
    return (stat.st_size, stat.st_mtime_ns, source.hexdigest())


def make_engine(config: Config, stateful: bool = True) -> Engine:
    """An engine ready to answer; with ``stateful`` it keeps state in state.db."""
    kb = open_knowledge(config)
    store = Store(config.path(config.storage.state_db)) if stateful else None
    return Engine(kb, make_matcher(kb, config), config, store)
