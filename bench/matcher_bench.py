"""Matcher latency, throughput, memory and where the time goes, per knowledge-base size.

The parent (``run``) generates each knowledge base and writes it as a ``knowledge.db``. Then, per size, two
fresh processes pinned to one core, so that each one's peak RSS is its own:

* **first start** (``python -m bench.matcher_bench first-start JOB.json``): any cached index beside the
  knowledge base is deleted, then ``KnowledgeBase`` and ``bot.wiring.make_matcher`` as the bot does: the index
  is built (and the product caches it beside knowledge.db);
* **serve** (``... serve JOB.json``): a later start, which finds what the first one left, then one untimed
  warm-up pass over the messages and up to ``passes`` timed passes of ``Matcher.match``, one message at a time
  (at least one, more while the time budget lasts). Peak RSS is read before anything else is built. Then:

  - a *staged* run times each step of ``Matcher.match``: the real normalisation, the real ``repair`` (with
    rapidfuzz's ``extractOne`` timed by standing in for ``intents.matcher.process``), a copy of the body of
    ``rank`` split into its loops (checked on every message against the real ``rank`` and ``match``; the
    report also says if ``rank``'s source is no longer the one copied), then the real ``match`` with ``rank``
    standing in to return the staged ranking, which times the safety checks and the decision as they are now;
  - the real ``Index.build`` with a cold stem cache, its helpers (``fold``, ``Synonyms.apply``, ``terms_of``,
    ``features``) timed by standing in for them;
  - ``cProfile`` over a slice of the messages gives the functions with the most own time.
"""

from __future__ import annotations

import cProfile
import gc
import hashlib
import inspect
import json
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

from bench import common, generate

QUERIES_PER_KIND = 376
"""Held-out generated messages per size, beside the development set's 376 messages."""


# -- the child ---------------------------------------------------------------------------------------------

RANK_SOURCE_SHA = "cba4e6761732614813da56ef1de2705b728a020e5eca85b13f85ad2c6b524ee3"
"""sha256 of ``inspect.getsource(Matcher.rank)`` that ``_staged_rank`` copies; the report warns when it differs."""


def rank_source_sha() -> str:
    """The current ``Matcher.rank`` source's sha256 (to see whether the staged copy is still its copy)."""
    from intents.matcher import Matcher

    return hashlib.sha256(inspect.getsource(Matcher.rank).encode()).hexdigest()


class _Timed:
    """Stands in for a module or function, adding each call's seconds to ``stages[name]`` and counting calls."""

    def __init__(self, target, name: str, stages: dict[str, float], counts: dict[str, float], attribute: str = ""):
        self.target, self.name, self.stages, self.counts, self.attribute = target, name, stages, counts, attribute

    def __getattr__(self, attribute: str):
        inner = getattr(self.target, attribute)
        if attribute != self.attribute:
            return inner
        return _Timed(inner, self.name, self.stages, self.counts)

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self.target(*args, **kwargs)
        finally:
            self.stages[self.name] += time.perf_counter() - started
            self.counts[self.name] += 1


@contextmanager
def _patched(module, name: str, replacement):
    original = getattr(module, name)
    setattr(module, name, replacement)
    try:
        yield
    finally:
        setattr(module, name, original)


def _staged_rank(matcher, words: list[str], stages: dict[str, float], counts: dict[str, float]) -> list:
    """The body of ``Matcher.rank`` after repair, step by step (a copy: keep it in step with the real one)."""
    from intents.analyse import features, terms_of
    from intents.decision import Candidate
    from intents.matcher import CLOSENESS_WEIGHT

    index = matcher.index
    clock = time.perf_counter
    t2 = clock()
    terms = features(terms_of(words))
    if not terms:
        stages["terms and weights (stemming)"] += clock() - t2
        return []
    exact = index.exact.get(" ".join(words))
    weights = {t: index.weight(t) for t in terms if " " not in t or t in index.idf}
    total = sum(weights.values())
    t3 = clock()
    shared: dict[int, float] = defaultdict(float)
    for term, weight in weights.items():
        postings = index.postings.get(term, ())
        counts["postings_touched"] += len(postings)
        for position in postings:
            shared[position] += weight
    t4 = clock()
    best: dict[str, tuple[float, int]] = {}
    examples = index.examples
    for position, overlap in shared.items():
        example = examples[position]
        dice = 2 * overlap / (total + example.weight)
        if dice > best.get(example.intent, (0.0, -1))[0]:
            best[example.intent] = (dice, position)
    t5 = clock()
    covered: dict[str, float] = defaultdict(float)
    evidence: dict[str, int] = defaultdict(int)
    for term, weight in weights.items():
        entries = index.term_intents.get(term, ())
        counts["term_intent_entries_touched"] += len(entries)
        for intent, support, count in entries:
            covered[intent] += weight * support
            if count > evidence[intent]:
                evidence[intent] = count
    t6 = clock()
    ranked = []
    for intent, (dice, position) in best.items():
        score = CLOSENESS_WEIGHT * dice + (1 - CLOSENESS_WEIGHT) * covered[intent] / total
        if intent == exact:
            score, dice = 1.0, 1.0
        ranked.append(Candidate(intent, round(score, 4), examples[position].text, round(dice, 4), evidence[intent]))
    t7 = clock()
    ranked.sort(key=lambda c: (-c.score, c.intent))
    t8 = clock()
    stages["terms and weights (stemming)"] += t3 - t2
    stages["postings traversal (examples)"] += t4 - t3
    stages["best example per intent (Dice)"] += t5 - t4
    stages["coverage and evidence (term-intent postings)"] += t6 - t5
    stages["candidate objects, one per intent"] += t7 - t6
    stages["sort candidates"] += t8 - t7
    counts["terms"] += len(weights)
    counts["candidate_examples"] += len(shared)
    counts["candidate_intents"] += len(best)
    return ranked


def _staged_match(matcher, text: str, stages: dict[str, float], counts: dict[str, float]) -> tuple:
    """``matcher.match(text)`` step by step: the real normalise and repair, a copy of ``rank``'s body, then the
    real ``match`` with ``rank`` standing in to return the staged ranking (so the safety check and decision are
    whatever ``match`` does now).

    rapidfuzz's ``extractOne`` is timed inside the real ``repair`` by standing in for ``intents.matcher.process``.
    """
    from intents import matcher as matcher_module

    clock = time.perf_counter
    t0 = clock()
    words = matcher.analyser.words(text)
    t1 = clock()
    before = stages["typo repair: rapidfuzz extractOne"]
    proxy = _Timed(matcher_module.process, "typo repair: rapidfuzz extractOne", stages, counts, "extractOne")
    with _patched(matcher_module, "process", proxy):
        words = matcher.repair(words)
    t2 = clock()
    ranked = _staged_rank(matcher, words, stages, counts)
    # match() normalises, repairs and ranks again through rank(): let rank() hand back the staged ranking and
    # time only what match() adds (the safety checks and the decision).
    matcher.rank = lambda _text: list(ranked)
    try:
        t3 = clock()
        decision = matcher.match(text)
        t4 = clock()
    finally:
        del matcher.rank
    stages["normalise (fold, synonyms)"] += t1 - t0
    stages["typo repair: the rest"] += (t2 - t1) - (stages["typo repair: rapidfuzz extractOne"] - before)
    stages["safety checks and decision (match)"] += t4 - t3
    return ranked, decision


def _staged_build(matcher, examples: list[tuple[str, str]]) -> dict:
    """The real ``Index.build`` with a cold stem cache, its helpers timed by standing in for them."""
    from intents import analyse, index, normalise

    stages: dict[str, float] = defaultdict(float)
    calls: dict[str, float] = defaultdict(float)
    analyse.stem.cache_clear()
    started = time.perf_counter()
    with (
        _patched(normalise, "fold", _Timed(normalise.fold, "fold (unicode, case, punctuation)", stages, calls)),
        _patched(normalise.Synonyms, "apply", _timed_method(normalise.Synonyms.apply, "synonyms", stages, calls)),
        _patched(index, "terms_of", _Timed(index.terms_of, "stemming and stop words (terms_of)", stages, calls)),
        _patched(index, "features", _Timed(index.features, "pairs of terms (features)", stages, calls)),
    ):
        built = index.Index.build(matcher.analyser, examples)
    total = time.perf_counter() - started
    stages["counts, IDF, postings, term-intent postings, vocabularies"] = total - sum(stages.values())
    return {
        "matches_real_index": len(built.examples) == len(matcher.index.examples),
        "seconds": dict(stages),
        "total_seconds": total,
    }


def _timed_method(function, name: str, stages: dict[str, float], counts: dict[str, float]):
    def method(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return function(self, *args, **kwargs)
        finally:
            stages[name] += time.perf_counter() - started
            counts[name] += 1

    return method


def _profile(matcher, texts: list[str], top: int = 12) -> list[dict]:
    profiler = cProfile.Profile()
    profiler.enable()
    for text in texts:
        matcher.match(text)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(row[2] for row in stats.stats.values()) or 1.0
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():
        where = f"{Path(filename).parent.name}/{Path(filename).name}:{line}({name})" if line else name
        rows.append(
            {
                "function": where,
                "calls": calls,
                "own_seconds": round(tottime, 4),
                "own_share": round(tottime / total, 4),
                "cumulative_seconds": round(cumtime, 4),
            }
        )
    rows.sort(key=lambda r: -r["own_seconds"])
    return rows[:top]


def _open(job: dict) -> tuple:
    """Open the knowledge base and make the matcher as the bot does; time and measure both."""
    from bot.config import Config
    from bot.wiring import make_matcher
    from knowledge.base import KnowledgeBase

    gc.collect()
    rss_start = common.rss_mb()
    started = time.perf_counter()
    kb = KnowledgeBase(Path(job["db"]))
    load_seconds = time.perf_counter() - started
    rss_loaded = common.rss_mb()
    started = time.perf_counter()
    matcher = make_matcher(kb, Config())
    make_seconds = time.perf_counter() - started
    rss = {
        "numpy_imported": "numpy" in sys.modules,
        "start": round(rss_start, 1),
        "knowledge_loaded": round(rss_loaded, 1),
        "matcher_made": round(common.rss_mb(), 1),
    }
    return kb, matcher, round(load_seconds, 4), round(make_seconds, 4), rss


def build_child(job: dict) -> dict:
    """A first start: no cached index beside knowledge.db, so ``make_matcher`` builds it (and caches it)."""
    for stale in Path(job["db"]).parent.glob("*.pickle*"):
        stale.unlink()
    cpu = common.pin_to_one_core(job.get("cpu"))
    _kb, _matcher, load_seconds, make_seconds, rss = _open(job)
    rss["peak"] = round(common.peak_rss_mb(), 1)
    cached = sorted(Path(job["db"]).parent.glob("*.pickle"))
    return {
        "cpu": cpu,
        "load_seconds": load_seconds,
        "make_seconds": make_seconds,
        "rss_mb": rss,
        "cache_file_mb": round(cached[0].stat().st_size / 1e6, 1) if cached else None,
    }


def serve_child(job: dict) -> dict:
    """A later start (``make_matcher`` finds what the first start left), then the latency runs and the profile."""
    cpu = common.pin_to_one_core(job.get("cpu"))
    queries = job["queries"]
    texts = [q["text"] for q in queries]
    judged = set(job["judged"])
    load_before = common.load_average()
    kb, matcher, load_seconds, make_seconds, rss = _open(job)

    decisions = [matcher.match(text) for text in texts]  # warm-up, and the sanity check below
    passes = []
    latencies: dict[str, list[float]] = defaultdict(list)
    budget_start = time.perf_counter()
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for _ in range(job["passes"]):
        times, cpu_times = [], []
        for query in queries:
            began, cpu_began = clock(), cpu_clock()
            matcher.match(query["text"])
            took = (clock() - began) / 1e6
            cpu_times.append((cpu_clock() - cpu_began) / 1e6)
            times.append(took)
            latencies[query["kind"]].append(took)
        passes.append(
            {
                "p50_ms": round(common.percentile(times, 0.5), 4),
                "p99_ms": round(common.percentile(times, 0.99), 4),
                "mean_ms": round(sum(times) / len(times), 4),
                "messages_per_second": round(len(times) / (sum(times) / 1000), 1),
                "cpu_p50_ms": round(common.percentile(cpu_times, 0.5), 4),
                "cpu_p99_ms": round(common.percentile(cpu_times, 0.99), 4),
            }
        )
        if time.perf_counter() - budget_start > job["budget_seconds"]:
            break
    rss["peak"] = round(common.peak_rss_mb(), 1)

    by_kind = {
        kind: {
            "messages": len(values) // len(passes),
            "p50_ms": round(common.percentile(values, 0.5), 4),
            "p99_ms": round(common.percentile(values, 0.99), 4),
            "max_ms": round(max(values), 4),
        }
        for kind, values in latencies.items()
    }
    sanity: dict[str, dict] = {}
    for kind in sorted({q["kind"] for q in queries}):
        pairs = [(q, d) for q, d in zip(queries, decisions, strict=True) if q["kind"] == kind and q["expect"]]
        if kind == "dev":
            pairs = [(q, d) for q, d in pairs if q["expect"] in judged]
        right = sum(d.action == "answer" and d.intent == q["expect"] for q, d in pairs)
        sanity[kind] = {"messages": len(pairs), "answered_right": round(right / len(pairs), 4) if pairs else None}

    stages: dict[str, float] = defaultdict(float)
    counts: dict[str, float] = defaultdict(float)
    staged: dict = {
        "messages": 0,
        "matches_real_matcher": True,
        "error": "",
        "rank_source_matches_copy": rank_source_sha() == RANK_SOURCE_SHA,
    }
    try:
        stage_budget = time.perf_counter()
        for text in texts:
            ranked, decision = _staged_match(matcher, text, stages, counts)
            staged["messages"] += 1
            if ranked != matcher.rank(text) or decision != matcher.match(text):
                staged["matches_real_matcher"] = False
            if time.perf_counter() - stage_budget > job["budget_seconds"] / 3:
                break
    except Exception as error:  # the staged copy is out of date with the matcher
        staged["error"] = f"{type(error).__name__}: {error}"
    messages = max(staged["messages"], 1)
    calls = counts.pop("typo repair: rapidfuzz extractOne", 0)
    counts["extractone_calls"] = calls
    total_stage = sum(stages.values()) or 1.0
    staged["ms_per_message"] = {k: round(v / messages * 1000, 4) for k, v in stages.items()}
    staged["share"] = {k: round(v / total_stage, 4) for k, v in stages.items()}
    staged["per_message"] = {k: round(v / messages, 2) for k, v in counts.items()}
    staged["ms_per_extractone_call"] = (
        round(stages["typo repair: rapidfuzz extractOne"] / calls * 1000, 4) if calls else None
    )

    profile_count = min(len(texts), job["profile_messages"])
    profile = _profile(matcher, texts[:profile_count]) if profile_count else []
    try:
        build_stages = _staged_build(matcher, kb.examples)
    except Exception as error:
        build_stages = {"error": f"{type(error).__name__}: {error}"}

    index = matcher.index
    return {
        "size": job["size"],
        "questions": len(kb.examples),
        "intents": len(kb.entries),
        "vocabulary_words": len(index.words),
        "index_terms": len(index.postings),
        "postings_entries": sum(len(p) for p in index.postings.values()),
        "cpu": cpu,
        "load_average_before": load_before,
        "load_seconds": load_seconds,
        "make_seconds": make_seconds,
        "build_stages": build_stages,
        "rss_mb": rss,
        "passes": passes,
        "p50_ms": round(common.median([p["p50_ms"] for p in passes]), 4),
        "p99_ms": round(common.median([p["p99_ms"] for p in passes]), 4),
        "messages_per_second": round(common.median([p["messages_per_second"] for p in passes]), 1),
        "cpu_p50_ms": round(common.median([p["cpu_p50_ms"] for p in passes]), 4),
        "cpu_p99_ms": round(common.median([p["cpu_p99_ms"] for p in passes]), 4),
        "by_kind": by_kind,
        "sanity": sanity,
        "stages": staged,
        "stages_total_ms": round(sum(staged["ms_per_message"].values()), 4),
        "profile_messages": profile_count,
        "profile": profile,
    }


# -- the parent --------------------------------------------------------------------------------------------


def queries_for(workspace: common.Workspace, size: int, dev: list[dict], per_kind: int) -> list[dict]:
    """The development set's messages plus held-out generated messages for this size's intents."""
    made = generate.heldout(workspace.content(size), per_kind, seed=workspace.seed + size)
    return [{"kind": "dev", "text": c["text"], "expect": c["expect"]} for c in dev[:per_kind]] + [
        {"kind": "heldout", "text": text, "expect": intent} for intent, text in made
    ]


def run(
    workspace: common.Workspace,
    sizes: list[int],
    passes: int = 3,
    budget_seconds: float = 75.0,
    per_kind: int = QUERIES_PER_KIND,
    profile_messages: int = 100,
    cpu: int | None = None,
    dev_path: Path = common.DEV_SET,
    spec_path: Path = common.SPEC,
) -> dict:
    """Measure every size in its own process; return the results for the report."""
    from knowledge.check import spec_ids

    judged, _problems = spec_ids(spec_path)
    dev = [json.loads(line) for line in dev_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    results = []
    for size in sizes:
        db = workspace.database(size)
        job = {
            "size": size,
            "db": str(db),
            "queries": queries_for(workspace, size, dev, per_kind),
            "judged": judged,
            "passes": passes,
            "budget_seconds": budget_seconds,
            "profile_messages": profile_messages,
            "cpu": cpu,
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=workspace.folder, delete=False) as handle:
            json.dump(job, handle)
        env = common.child_env(hide_in=workspace.folder)
        first = common.run_json(
            [sys.executable, "-m", "bench.matcher_bench", "first-start", handle.name], timeout=900, env=env
        )
        result = common.run_json(
            [sys.executable, "-m", "bench.matcher_bench", "serve", handle.name],
            timeout=budget_seconds * 4 + 600,
            env=env,
        )
        result["first_start"] = first
        result["load_average_after"] = common.load_average()
        results.append(result)
        print(
            f"  matcher {size:>7}: p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
            f"{result['messages_per_second']:.0f} msg/s, peak RSS {result['rss_mb']['peak']:.0f} MB "
            f"(first start {first['rss_mb']['peak']:.0f} MB)",
            file=sys.stderr,
            flush=True,
        )
    return {
        "ran_at": common.now(),
        "sizes": results,
        "generation": {
            "seed": workspace.seed,
            "real_growth": generate.REAL_GROWTH,
            "synthetic_questions": generate.SYNTHETIC_QUESTIONS,
            "keyword_pool_share": generate.KEYWORD_POOL_SHARE,
            "bundled_questions": generate.question_count(workspace.bundled()),
            "bundled_intents": len(workspace.bundled().entries),
            "seconds": dict(workspace.seconds),
        },
    }


if __name__ == "__main__":
    mode, job_path = sys.argv[1], Path(sys.argv[2])
    job_spec = json.loads(job_path.read_text(encoding="utf-8"))
    print(json.dumps(build_child(job_spec) if mode == "first-start" else serve_child(job_spec)))
