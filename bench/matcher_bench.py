"""Matcher latency, throughput, memory and where the time goes, per knowledge-base size.

The parent (``run``) generates each knowledge base, writes it as a ``knowledge.db`` and starts a fresh child
process per size (``python -m bench.matcher_bench CHILD.json``), pinned to one core, so that each size's peak
RSS is its own. The child opens the knowledge base as the bot does (``KnowledgeBase`` then
``bot.wiring.make_matcher``), warms up with one untimed pass over the messages, then times ``Matcher.match``
message by message for up to ``passes`` passes (at least one, more while the time budget lasts). Peak RSS is
read before anything else is built. Then, for the profile:

* a *staged copy* of ``Matcher.match`` times each step separately (normalise, typo repair and the rapidfuzz
  ``extractOne`` calls inside it, postings traversal, best example per intent, coverage per candidate intent,
  sorting, safety and decision) and checks that it ranks exactly as the real matcher does;
* a *staged copy* of ``Index.build`` splits the index build the same way (and is checked the same way);
* ``cProfile`` over a slice of the messages gives the functions with the most own time.
"""

from __future__ import annotations

import cProfile
import gc
import json
import math
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench import common, generate

QUERIES_PER_KIND = 376
"""Held-out generated messages per size, beside the development set's 376 messages."""


# -- the child ---------------------------------------------------------------------------------------------


def _staged_match(matcher, text: str, stages: dict[str, float], counts: dict[str, float]) -> tuple:
    """``matcher.match(text)`` step by step, adding each step's seconds to ``stages``; returns (ranked, decision)."""
    from rapidfuzz import fuzz, process

    from intents import safety
    from intents.analyse import features, stem, terms_of
    from intents.decision import Candidate, Decision, decide
    from intents.matcher import CLOSENESS_WEIGHT, TYPO_CUTOFF
    from intents.normalise import fold
    from intents.stopwords import STOPWORDS

    index = matcher.index
    clock = time.perf_counter
    t0 = clock()
    words = matcher.analyser.words(text)
    t1 = clock()
    repaired = []
    extract = 0.0
    for word in words:
        if (
            len(word) > 3
            and not word.isdigit()
            and word not in STOPWORDS
            and word not in matcher._known_words
            and stem(word) not in index.idf
        ):
            started = clock()
            found = process.extractOne(word, index.words, scorer=fuzz.ratio, score_cutoff=TYPO_CUTOFF)
            extract += clock() - started
            counts["extractone_calls"] += 1
            if found is not None:
                word = found[0]
        repaired.append(word)
    t2 = clock()
    terms = features(terms_of(repaired))
    ranked: list = []
    t3 = t4 = t5 = t6 = t7 = t2
    if terms:
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
        for intent, (dice, position) in best.items():
            vocab = index.vocab[intent]
            intent_counts = index.counts[intent]
            coverage = sum(w * vocab.get(t, 0.0) for t, w in weights.items()) / total
            score = CLOSENESS_WEIGHT * dice + (1 - CLOSENESS_WEIGHT) * coverage
            evidence = max((intent_counts.get(t, 0) for t in weights), default=0)
            ranked.append(Candidate(intent, round(score, 4), examples[position].text, round(dice, 4), evidence))
        t6 = clock()
        ranked.sort(key=lambda c: (-c.score, c.intent))
        t7 = clock()
        counts["terms"] += len(weights)
        counts["candidate_examples"] += len(shared)
        counts["candidate_intents"] += len(best)
    alarm = safety.detect(fold(text))
    if alarm is None and ranked and ranked[0].intent in matcher.safety_intents:
        if ranked[0].score >= matcher.thresholds.safety:
            alarm = ranked[0].intent
    if alarm is not None:
        decision = Decision("answer", alarm, 1.0, candidates=tuple(ranked[:5]), safety=True)
    else:
        decision = decide(ranked, matcher.thresholds)
    t8 = clock()
    stages["normalise (fold, synonyms)"] += t1 - t0
    stages["typo repair: rapidfuzz extractOne"] += extract
    stages["typo repair: the rest"] += t2 - t1 - extract
    stages["terms and weights (stemming)"] += t3 - t2
    stages["postings traversal"] += t4 - t3
    stages["best example per intent (Dice)"] += t5 - t4
    stages["coverage and evidence per candidate intent"] += t6 - t5
    stages["sort candidates"] += t7 - t6
    stages["safety patterns and decision"] += (t8 - t7) if terms else (t8 - t2)
    return ranked, decision


def _staged_build(matcher, examples: list[tuple[str, str]]) -> dict:
    """``Index.build`` step by step with a cold stem cache; checked against the matcher's real index."""
    from intents.analyse import features, stem, terms_of
    from intents.index import PAIR_FACTOR, SUPPORT_SHARE
    from intents.normalise import fold

    stem.cache_clear()
    clock = time.perf_counter
    synonyms = matcher.analyser.synonyms
    t0 = clock()
    folded = [fold(text).split() for _intent, text in examples]
    t1 = clock()
    normal = [synonyms.apply(words) for words in folded]
    t2 = clock()
    analysed = [frozenset(features(terms_of(words))) for words in normal]
    t3 = clock()
    vocab: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    sizes: dict[str, int] = defaultdict(int)
    word_set: set[str] = set()
    kept = []
    for (intent, text), words, terms in zip(examples, normal, analysed, strict=True):
        word_set.update(w for w in words if len(w) > 3 and not w.isdigit())
        if terms:
            kept.append((intent, text, terms))
            sizes[intent] += 1
            for term in terms:
                vocab[intent][term] += 1
    frequency: dict[str, int] = defaultdict(int)
    for terms in vocab.values():
        for term in terms:
            frequency[term] += 1
    n = max(len(vocab), 1)
    idf = {t: math.log((n + 1) / (df + 0.5)) * (PAIR_FACTOR if " " in t else 1.0) for t, df in frequency.items()}
    postings: dict[str, list[int]] = defaultdict(list)
    weights = []
    for position, (_intent, _text, terms) in enumerate(kept):
        weights.append(sum(idf[t] for t in terms))
        for term in terms:
            postings[term].append(position)
    shares = {
        intent: {t: min(1.0, c / (SUPPORT_SHARE * sizes[intent])) for t, c in terms.items()}
        for intent, terms in vocab.items()
    }
    t4 = clock()
    index = matcher.index
    same = (
        len(kept) == len(index.examples)
        and dict(postings) == index.postings
        and idf == index.idf
        and shares == index.vocab
        and sorted(word_set) == index.words
    )
    return {
        "matches_real_index": same,
        "seconds": {
            "fold (unicode, case, punctuation)": t1 - t0,
            "synonyms": t2 - t1,
            "stemming, terms and pairs": t3 - t2,
            "counts, IDF, postings, vocabularies": t4 - t3,
        },
    }


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


def child(spec_path: Path) -> dict:
    """Measure one knowledge base (runs in its own process)."""
    job = json.loads(spec_path.read_text(encoding="utf-8"))
    cpu = common.pin_to_one_core(job.get("cpu"))
    from bot.config import Config
    from bot.wiring import make_matcher
    from knowledge.base import KnowledgeBase

    queries = job["queries"]
    texts = [q["text"] for q in queries]
    judged = set(job["judged"])
    gc.collect()
    load_before = common.load_average()
    rss_start = common.rss_mb()
    started = time.perf_counter()
    kb = KnowledgeBase(Path(job["db"]))
    load_seconds = time.perf_counter() - started
    rss_loaded = common.rss_mb()
    started = time.perf_counter()
    matcher = make_matcher(kb, Config())
    build_seconds = time.perf_counter() - started
    rss_built = common.rss_mb()

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
    rss_peak = common.peak_rss_mb()

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
    staged = {"messages": 0, "matches_real_matcher": True, "error": ""}
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
    total_stage = sum(stages.values()) or 1.0
    staged["ms_per_message"] = {k: round(v / messages * 1000, 4) for k, v in stages.items()}
    staged["share"] = {k: round(v / total_stage, 4) for k, v in stages.items()}
    staged["per_message"] = {k: round(v / messages, 1) for k, v in counts.items()}
    calls = counts.get("extractone_calls", 0)
    staged["ms_per_extractone_call"] = (
        round(stages["typo repair: rapidfuzz extractOne"] / calls * 1000, 4) if calls else None
    )

    profile_count = min(len(texts), job["profile_messages"])
    profile = _profile(matcher, texts[:profile_count]) if profile_count else []
    try:
        build_stages = _staged_build(matcher, kb.examples) if job.get("build_stages", True) else {}
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
        "load_seconds": round(load_seconds, 4),
        "build_seconds": round(build_seconds, 4),
        "build_stages": build_stages,
        "rss_mb": {
            "start": round(rss_start, 1),
            "knowledge_loaded": round(rss_loaded, 1),
            "matcher_built": round(rss_built, 1),
            "peak": round(rss_peak, 1),
        },
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
        command = [sys.executable, "-m", "bench.matcher_bench", handle.name]
        env = common.child_env(hide_in=workspace.folder)
        result = common.run_json(command, timeout=budget_seconds * 4 + 600, env=env)
        result["load_average_after"] = common.load_average()
        results.append(result)
        print(
            f"  matcher {size:>7}: p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
            f"{result['messages_per_second']:.0f} msg/s, peak RSS {result['rss_mb']['peak']:.0f} MB",
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
    print(json.dumps(child(Path(sys.argv[1]))))
