"""Render the benchmark results (``results.json``) as the Markdown report (``REPORT.md``)."""

from __future__ import annotations

import math
from itertools import pairwise

TARGETS = {
    "matcher_p99_10k_ms": 2.0,
    "matcher_p99_100k_ms": 20.0,
    "matcher_rss_10k_mb": 150.0,
    "e2e_rate_50": 300.0,
    "e2e_p99_50_ms": 200.0,
    "startup_s": 0.5,
}

SECTIONS = ("matcher", "accuracy", "e2e", "startup")


def _n(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _size(results: dict, size: int) -> dict | None:
    for row in results.get("matcher", {}).get("sizes", []):
        if row["size"] == size:
            return row
    return None


def _level(results: dict, residents: int) -> dict | None:
    for row in results.get("e2e", {}).get("levels", []):
        if row["residents"] == residents and not row.get("synchronous_normal"):
            return row
    return None


def summary(results: dict) -> list[str]:
    """The targets table."""
    rows = []
    ten, hundred = _size(results, 10_000), _size(results, 100_000)
    for label, row, target in (
        ("Matcher p99 per message, 10,000 questions", ten, TARGETS["matcher_p99_10k_ms"]),
        ("Matcher p99 per message, 100,000 questions", hundred, TARGETS["matcher_p99_100k_ms"]),
    ):
        if row:
            rows.append(
                [
                    label,
                    f"≤ {target:g} ms",
                    f"{_n(row['p99_ms'])} ms (CPU time: {_n(row.get('cpu_p99_ms'))} ms)",
                    _verdict(row["p99_ms"] <= target),
                ]
            )
    if ten:
        peak = max(ten["rss_mb"]["peak"], ten.get("first_start", {}).get("rss_mb", {}).get("peak", 0.0))
        rows.append(
            [
                "Matcher peak RSS, 10,000 questions",
                f"≤ {TARGETS['matcher_rss_10k_mb']:g} MB",
                f"{_n(peak, 1)} MB (whole process; the larger of first start and serving)",
                _verdict(peak <= TARGETS["matcher_rss_10k_mb"]),
            ]
        )
    methods = results.get("accuracy", {}).get("methods", [])
    if methods and "metrics" in methods[0]:
        ours = methods[0]["metrics"]
        others = [m for m in methods[1:] if "metrics" in m]
        beaten = [not m.get("cutoffs_matching_ours_on_both", [None]) for m in others]
        best_other = max(others, key=lambda m: m["metrics"]["in_scope_accuracy"]) if others else None
        rows.append(
            [
                "Accuracy: ours beats rapidfuzz and TF-IDF (dev set)",
                "no cutoff of theirs reaches both our accuracy and our wrong-answer rate",
                f"ours {_pct(ours['in_scope_accuracy'])} accurate, {_pct(ours['wrong_answer_rate'])} wrong; "
                + (
                    f"the best baseline at no more wrong answers: {best_other['method']} "
                    f"{_pct(best_other['metrics']['in_scope_accuracy'])} accurate, "
                    f"{_pct(best_other['metrics']['wrong_answer_rate'])} wrong"
                    if best_other
                    else "no baseline ran"
                ),
                _verdict(all(beaten) if others else None),
            ]
        )
    fifty = _level(results, 50)
    if fifty:
        rows.append(
            [
                "Web chat, 50 concurrent residents: throughput",
                f"≥ {TARGETS['e2e_rate_50']:g} msg/s",
                f"{_n(fifty['messages_per_second'], 1)} msg/s",
                _verdict((fifty["messages_per_second"] or 0) >= TARGETS["e2e_rate_50"]),
            ]
        )
        rows.append(
            [
                "Web chat, 50 concurrent residents: p99 reply",
                f"< {TARGETS['e2e_p99_50_ms']:g} ms",
                f"{_n(fifty['p99_ms'], 0)} ms",
                _verdict(fifty["p99_ms"] < TARGETS["e2e_p99_50_ms"]),
            ]
        )
    five_hundred = _level(results, 500)
    if five_hundred:
        rows.append(
            [
                "Web chat, 500 concurrent residents",
                "(no target)",
                f"{_n(five_hundred['messages_per_second'], 1)} msg/s, p99 {_n(five_hundred['p99_ms'], 0)} ms, "
                f"{_n(five_hundred['responses_without_reply'])} responses without their reply",
                "-",
            ]
        )
    start = results.get("startup")
    if start:
        warm = start["warm"]
        rows.append(
            [
                '`councilbot ask "hello"` to first answer (knowledge.db built)',
                f"< {TARGETS['startup_s']:g} s",
                f"{_n(warm['first_answer_median_s'], 3)} s median of {warm['runs']} "
                f"(CPU {_n(warm['cpu_median_s'], 3)} s)",
                _verdict(warm["first_answer_median_s"] < TARGETS["startup_s"]),
            ]
        )
    if start:
        rows.append(
            [
                "Cold start (builds knowledge.db first)",
                "(no target)",
                f"{_n(start['cold']['first_answer_median_s'], 3)} s median of {start['cold']['runs']}",
                "-",
            ]
        )
        builds = f"bundled {_n(start['kb_build_bundled']['median_s'], 2)} s"
        if "kb_build_large" in start:
            large = start["kb_build_large"]
            builds += f"; {_n(large['questions'])} questions {_n(large['seconds'], 1)} s"
        rows.append(["`councilbot kb build`", "(no target)", builds, "-"])
    if not rows:
        return []
    return ["## Summary against the targets", "", *_table(["what", "target", "measured", "verdict"], rows)]


def machine(results: dict) -> list[str]:
    """The machine's details."""
    m = results.get("machine")
    if not m:
        return []
    rows = [
        ["CPU", m["cpu"]],
        ["cores", _n(m["cores"])],
        ["memory", f"{m['memory_gb']} GB"],
        ["Python", m["python"]],
        ["OS", m["os"]],
        ["SQLite", m["sqlite"]],
        ["councilbot commit", m.get("commit") or "-"],
        ["load average (1, 5, 15 min) when the run started", ", ".join(map(str, m.get("load_average", [])))],
    ]
    rows += [[f"package {name}", version] for name, version in m["packages"].items()]
    return ["## Machine", "", *_table(["", ""], rows)]


def _loads(section: dict, rows: list[dict] | None = None) -> str:
    values = [r.get(k) for r in (rows or [section]) for k in ("load_average_before", "load_average_after")]
    ones = [v[0] for v in values if v]
    return f"1-minute load average during this section: {min(ones):.1f} to {max(ones):.1f}" if ones else ""


def matcher_section(results: dict) -> list[str]:
    """Matcher latency, memory, the cost curve and the profile."""
    section = results.get("matcher")
    if not section:
        return []
    sizes = sorted(section["sizes"], key=lambda r: r["size"])
    generation = section.get("generation", {})
    out = [
        "## 1. Matcher latency, throughput and memory",
        "",
        f"Ran {section['ran_at']}. {_loads(section, sizes)} (2 cores).",
        "",
        "Each size runs in two fresh processes pinned to one core. The *first start* deletes any cached index "
        "beside the size's `knowledge.db`, then opens it as the bot does (`KnowledgeBase` + "
        "`bot.wiring.make_matcher`, which builds the index and caches it beside knowledge.db). The *serving* "
        "process is a later start (it finds the cache), warms up with one untimed pass, then times "
        "`Matcher.match` one message at a time. The messages are the development set's "
        f"{sizes[0]['by_kind'].get('dev', {}).get('messages', '?')} plus as many held-out generated messages "
        "(made like the variants below from the size's own intents, never in its knowledge base). "
        "p50/p99/throughput are the medians over the passes (up to 3 while the time budget lasts); "
        "CPU p50/p99 use the thread's CPU clock, which other processes on the machine do not inflate. "
        "Peak RSS is the whole process's high-water mark (`VmHWM`: interpreter, imports, knowledge base and "
        "index; the serving process's is read before the profiling steps); numpy and pandas are hidden as on a "
        "production install.",
        "",
    ]
    rows = []
    for r in sizes:
        rss = r["rss_mb"]
        first = r.get("first_start", {})
        rows.append(
            [
                _n(r["size"]),
                _n(r["intents"]),
                _n(r["vocabulary_words"]),
                _n(r["index_terms"]),
                _n(first.get("make_seconds"), 2),
                _n(r.get("make_seconds"), 2),
                _n(r["p50_ms"]),
                _n(r["p99_ms"]),
                _n(r.get("cpu_p50_ms")),
                _n(r.get("cpu_p99_ms")),
                _n(r["messages_per_second"], 0),
                _n(first.get("rss_mb", {}).get("peak"), 1),
                _n(rss["peak"], 1),
                _n(first.get("cache_file_mb"), 1),
                _n(len(r["passes"])),
            ]
        )
    out += _table(
        [
            "questions",
            "intents",
            "known words",
            "index terms",
            "first start: make_matcher s (build + cache)",
            "later start: make_matcher s",
            "p50 ms",
            "p99 ms",
            "CPU p50 ms",
            "CPU p99 ms",
            "msg/s (1 core)",
            "peak RSS MB, first start",
            "peak RSS MB, serving",
            "index cache MB",
            "passes",
        ],
        rows,
    )
    out += ["### Cost against size", ""]
    rows = []
    previous = None
    for r in sizes:
        per = r["stages"].get("per_message", {})
        growth = "-"
        if previous and previous["stages_total_ms"] > 0 and r["size"] > previous["size"]:
            exponent = math.log(r["stages_total_ms"] / previous["stages_total_ms"]) / math.log(
                r["size"] / previous["size"]
            )
            growth = f"{exponent:.2f}"
        rows.append(
            [
                _n(r["size"]),
                _n(r["stages_total_ms"], 3),
                growth,
                _n(per.get("terms"), 1),
                _n(per.get("postings_touched"), 0),
                _n(per.get("term_intent_entries_touched"), 0),
                _n(per.get("candidate_examples"), 0),
                _n(per.get("candidate_intents"), 0),
                _n(per.get("extractone_calls"), 2),
                _n(r["stages"].get("ms_per_extractone_call"), 3),
            ]
        )
        previous = r
    out += [
        "Work per message (means over the staged pass). The growth exponent *k* says the mean cost grows as "
        "size^k from the previous size (1 = linear).",
        "",
        *_table(
            [
                "questions",
                "mean ms",
                "growth exponent",
                "terms",
                "postings entries touched",
                "term-intent entries touched",
                "candidate examples",
                "candidate intents",
                "extractOne calls",
                "ms per extractOne call",
            ],
            rows,
        ),
    ]
    stage_names = list(sizes[-1]["stages"].get("ms_per_message", {}))
    if stage_names:
        out += [
            "### Where a message's time goes",
            "",
            "Mean ms per message in each step of a staged `Matcher.match` (its share of the total in brackets): "
            "the real normalisation and `repair` (rapidfuzz's `extractOne` timed inside it), a copy of the body "
            "of `rank` split into its loops, then the real `match` given that ranking (its safety checks and "
            "decision). The staged result is checked against the real `rank` and `match` on every message: "
            + ", ".join(
                f"{_n(r['size'])}: {'identical' if r['stages'].get('matches_real_matcher') else 'DIFFERENT'}"
                + (f" ({r['stages']['error']})" if r["stages"].get("error") else "")
                for r in sizes
            )
            + "."
            + (
                ""
                if all(r["stages"].get("rank_source_matches_copy", True) for r in sizes)
                else " **Warning:** `Matcher.rank`'s source is no longer the one the staged copy was made from; "
                "the split of `rank`'s time may not describe the current code (update `_staged_rank` and "
                "`RANK_SOURCE_SHA` in `bench/matcher_bench.py`)."
            ),
            "",
        ]
        rows = []
        for name in stage_names:
            row = [name]
            for r in sizes:
                ms = r["stages"]["ms_per_message"].get(name, 0.0)
                row.append(f"{ms:.3f} ({r['stages']['share'].get(name, 0.0) * 100:.0f}%)")
            rows.append(row)
        rows.append(["**total**", *[f"**{r['stages_total_ms']:.3f}**" for r in sizes]])
        out += _table(["step", *[_n(r["size"]) for r in sizes]], rows)
        out += _findings(sizes)
    build_rows = []
    names = []
    for r in sizes:
        for name in r.get("build_stages", {}).get("seconds", {}):
            if name not in names:
                names.append(name)
    for name in names:
        build_rows.append([name, *[_n(r.get("build_stages", {}).get("seconds", {}).get(name), 3) for r in sizes]])
    if build_rows:
        out += [
            "### Index build",
            "",
            "Seconds per step of the real `Index.build` (what a first start does), run once more in the serving "
            "process with a cold stem cache, its helpers timed by standing in for them; the last row is the rest "
            "of the build.",
            "",
            *_table(
                ["step", *[_n(r["size"]) for r in sizes]],
                [
                    *build_rows,
                    [
                        "**total**",
                        *[f"**{_n(r.get('build_stages', {}).get('total_seconds'), 3)}**" for r in sizes],
                    ],
                ],
            ),
        ]
    largest = sizes[-1]
    if largest.get("profile"):
        out += [
            f"### cProfile at {_n(largest['size'])} questions",
            "",
            f"Functions with the most own time over {largest['profile_messages']} development-set messages "
            "(cProfile slows Python code more than C code, so shares are indicative; matcher.py line numbers "
            "locate the loops: see `intents/matcher.py`).",
            "",
            *_table(
                ["function", "calls", "own s", "own share", "cumulative s"],
                [
                    [
                        f"`{p['function']}`",
                        _n(p["calls"]),
                        _n(p["own_seconds"], 4),
                        _pct(p["own_share"]),
                        _n(p["cumulative_seconds"], 4),
                    ]
                    for p in largest["profile"]
                ],
            ),
        ]
    rows = []
    for r in sizes:
        kinds = r.get("by_kind", {})
        sanity = r.get("sanity", {})
        rows.append(
            [
                _n(r["size"]),
                _n(kinds.get("dev", {}).get("p50_ms")),
                _n(kinds.get("dev", {}).get("p99_ms")),
                _n(kinds.get("heldout", {}).get("p50_ms")),
                _n(kinds.get("heldout", {}).get("p99_ms")),
                _pct(sanity.get("dev", {}).get("answered_right")),
                _pct(sanity.get("heldout", {}).get("answered_right")),
            ]
        )
    out += [
        "### By kind of message, and a sanity check",
        "",
        "Latency over all passes by message kind, and the share of messages the matcher's own decision answers "
        "with the expected intent (development set: spec intents only; held-out: the intent the message was "
        "made from). This checks the generated knowledge bases are matchable; it is not the scored accuracy "
        "(section 2). Small sizes lack most intents, so the development set's share is low there.",
        "",
        *_table(
            [
                "questions",
                "dev p50 ms",
                "dev p99 ms",
                "held-out p50 ms",
                "held-out p99 ms",
                "dev answered right",
                "held-out answered right",
            ],
            rows,
        ),
    ]
    out += _generation_text(generation, sizes)
    return out


def _findings(sizes: list[dict]) -> list[str]:
    lines = []
    for before, after in pairwise(sizes):
        if after["intents"] > before["intents"] * 2:
            before_per = before["stages"].get("per_message", {})
            after_per = after["stages"].get("per_message", {})
            lines.append(
                f"- From {_n(before['size'])} to {_n(after['size'])} questions the intents grow from "
                f"{_n(before['intents'])} to {_n(after['intents'])} ({after['intents'] / before['intents']:.0f}x, "
                "synthetic intents) and the candidate intents scored per message from "
                f"{_n(before_per.get('candidate_intents'), 0)} to {_n(after_per.get('candidate_intents'), 0)}: "
                "every intent sharing any term with the message is scored, so the cost follows the number of "
                "intents that share common words, not only the number of questions."
            )
    for r in sizes[-2:]:
        shares = r["stages"].get("share", {})
        if not shares:
            continue
        ordered = sorted(shares.items(), key=lambda kv: -kv[1])
        top = ", ".join(f"{name} {share * 100:.0f}%" for name, share in ordered[:3])
        per = r["stages"].get("per_message", {})
        lines.append(
            f"- At {_n(r['size'])} questions the costliest steps are: {top}. A message touches "
            f"{_n(per.get('postings_touched'), 0)} postings entries on average and scores "
            f"{_n(per.get('candidate_intents'), 0)} candidate intents; typo repair calls extractOne "
            f"{_n(per.get('extractone_calls'), 2)} times per message over {_n(r['vocabulary_words'])} known words "
            f"({_n(r['stages'].get('ms_per_extractone_call'), 3)} ms per call)."
        )
    return [*lines, ""] if lines else []


def _generation_text(generation: dict, sizes: list[dict]) -> list[str]:
    if not generation:
        return []
    bundled = generation.get("bundled_questions")
    return [
        "### How the knowledge bases were made",
        "",
        f"From the bundled content ({_n(bundled)} questions, {_n(generation.get('bundled_intents'))} entries), "
        f"deterministically (seed {generation.get('seed')}; `bench/generate.py`):",
        "",
        "- **Smaller than the bundled content** (100, 1,000): a round-robin sample, one question per intent per "
        "round, intents and questions in a seeded shuffled order, so the sample spreads over as many intents as "
        "it can (100 questions cover 100 intents).",
        "- **Larger**: every bundled question is kept, then *variants* of each bundled intent's own questions "
        f"are added until each has at most {generation.get('real_growth')} times its bundled count "
        f"(so up to {_n((bundled or 0) * (generation.get('real_growth') or 0))} questions with no new intents: "
        "the 10,000 knowledge base is all bundled intents). A variant applies one change (two for a third of "
        "them) to a question: a synonym swapped in or out using the content's own synonyms table (25% of "
        "changes), a typo — a letter dropped, doubled, swapped with its neighbour or replaced by a keyboard "
        "neighbour (25%), a word-order change — two neighbouring words swapped or the tail moved to the front "
        "(20%), a recombination of the first half of one question with the second half of another of the same "
        "intent (15%), or a courtesy phrase added (15%).",
        f"- **Beyond that** (100,000): *synthetic intents* of {generation.get('synthetic_questions')} questions "
        "each. A synthetic intent copies a randomly chosen bundled FAQ and, in each of its questions, swaps the "
        "one or two most telling content words (the rarest across intents) for the synthetic intent's own pair "
        'of made-up key words ("slaircreck tarthox"). Key words come from a pool of '
        f"{generation.get('keyword_pool_share')} made-up words per synthetic intent, so words are shared between "
        'intents as "permit" is in real content; half of the synthetic questions also get one variant change. '
        'The common words of the copied questions stay, so postings lists for words such as "report" or '
        '"council" grow with the knowledge base as they would in real content.',
        "- Every question is unique after folding across the whole knowledge base (it passes `councilbot kb "
        "check`). Vocabulary sizes are in the first table: the typos in variants add words, as real "
        "misspellings in example questions would.",
        "",
        "Generation times (s): " + ", ".join(f"{k} {v}" for k, v in generation.get("seconds", {}).items()) + ".",
        "",
    ]


def accuracy_section(results: dict) -> list[str]:
    """Accuracy beside speed."""
    section = results.get("accuracy")
    if not section:
        return []
    rows = []
    for m in section["methods"]:
        if "metrics" not in m:
            rows.append([m["method"], "-", m.get("skipped", "-"), "", "", "", "", ""])
            continue
        k = m["metrics"]
        rows.append(
            [
                m["method"],
                _n(m["cutoff"]) if m["cutoff"] is not None else "(its own)",
                _pct(k["in_scope_accuracy"]),
                _pct(k["wrong_answer_rate"]),
                _pct(k["oos_escalation"]),
                _pct(k["safety_recall"]),
                _n(m["messages_per_second"], 0),
                _n(m["p99_ms"], 2),
            ]
        )
    out = [
        "## 2. Accuracy beside speed (development set)",
        "",
        f"Ran {section['ran_at']}. {_loads(section)}. {section['messages']} messages, the bundled knowledge base "
        f"({_n(section['examples'])} example questions, {section['intents']} entries), one core, one message at "
        "a time.",
        "",
        "Scored with `bot.evaluate.evaluate` exactly as `../shared/eval/score.py` scores: only the "
        "specification's intents count; an answer from a route or off-topic entry counts as not answering; "
        "a clarification is not an answer. Baselines carry out their pick as the engine would (a handoff or "
        "route entry escalates). **Cutoffs** are tuned on the development set itself (which flatters the "
        "baselines): the cutoff shown is the one with the best in-scope accuracy whose wrong-answer rate is no "
        "higher than ours; ties go to fewer wrong answers, then the higher cutoff. Ours *beats* a baseline when no "
        "cutoff of the baseline reaches both our accuracy and our wrong-answer rate. Msg/s for ours is a whole "
        "`Engine.preview` (matching plus composing the reply); for the baselines only the lookup.",
        "",
        *_table(
            [
                "method",
                "cutoff",
                "in-scope accuracy",
                "wrong-answer rate",
                "out-of-scope escalated",
                "safety recall",
                "msg/s",
                "p99 ms",
            ],
            rows,
        ),
    ]
    rows = []
    for m in section["methods"][1:]:
        if "best_accuracy" not in m:
            continue
        b, f = m["best_accuracy"], m["two_fold"]
        rows.append(
            [
                m["method"],
                _n(b["cutoff"]),
                _pct(b["metrics"]["in_scope_accuracy"]),
                _pct(b["metrics"]["wrong_answer_rate"]),
                _pct(b["metrics"]["oos_escalation"]),
                ", ".join(_n(c) for c in f["cutoffs"]),
                _pct(f["in_scope_accuracy"]),
                _pct(f["wrong_answer_rate"]),
            ]
        )
    if rows:
        out += [
            "The baselines at other operating points: the cutoff with their **best accuracy** whatever the wrong "
            "answers, and a **2-fold** check of the tuning (cutoff tuned by the rule above on odd lines, scored "
            "on even lines, and the reverse; pooled).",
            "",
            *_table(
                [
                    "method",
                    "best-accuracy cutoff",
                    "accuracy",
                    "wrong answers",
                    "out-of-scope escalated",
                    "2-fold cutoffs",
                    "2-fold accuracy",
                    "2-fold wrong answers",
                ],
                rows,
            ),
        ]
    return out


def e2e_section(results: dict) -> list[str]:
    """The web chat under load."""
    section = results.get("e2e")
    if not section:
        return []
    rows = []
    for r in section["levels"]:
        first = r.get("replies_per_first_response", {})
        rows.append(
            [
                _n(r["residents"]),
                f"{_n(r.get('replied', r['answered']))} / {_n(r['answered'])} / {_n(r['planned_messages'])}",
                _n(r["seconds"], 1),
                _n(r["messages_per_second"], 1),
                _n(r["p50_ms"], 0),
                _n(r["p99_ms"], 0),
                f"{_n(r['later_with_exactly_one_reply'])} / {_n(r['later_responses'])}",
                ", ".join(f"{k}: {v}" for k, v in first.items()) or "-",
                _n(r["responses_without_reply"]),
                ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "none",
                f"{_n(_undelivered(r['outbox_while_running']))} / {_n(r['undelivered_after_stop'])}",
                _n(r.get("server_cpu_ms_per_message"), 1),
                _n(r["client_cpu_seconds"] * 1000 / r["answered"], 1) if r["answered"] else "-",
            ]
        )
    commit = section.get("commit_ms", {})
    out = [
        "## 3. End to end: the web chat API under load",
        "",
        f"Ran {section['ran_at']}. {_loads(section, section['levels'])}. Client and server share the 2 cores.",
        "",
        "Each level starts a fresh `councilbot run --port N` on a free 127.0.0.1 port, storage in a temporary "
        "folder, rate limits and the connection limit raised in its configuration, numpy hidden. After a "
        "10-message warm-up, that many residents start at once; each has its own cookie jar (its own session), "
        "loads the chat page, then sends "
        f"{section['messages_per_resident'][0]} to {section['messages_per_resident'][1]} development-set "
        'messages one after another, each `POST /api/messages {"text", "id"}` waiting for its reply. '
        f"A global limit of {section['limit_seconds']:g} s stops a level by itself (messages not sent by then "
        "are the gap between *answered* and *planned*). *Answered* counts HTTP 200 responses, *replied* those "
        "that carried the bot's reply (the API waits up to 5 s for it); msg/s counts replied messages only and "
        "p50/p99 are over all answered requests. Then the outbox is polled until nothing is `pending` or "
        "`sending`, the server gets SIGTERM, and the outbox is checked again.",
        "",
    ]
    if commit:
        out += [
            "The disk's SQLite commit latency when this section started (WAL mode, 100 one-row commits): "
            + ", ".join(f"synchronous = {k}: {_n(v, 3)} ms" for k, v in commit.items())
            + ". Every message costs the server several commits, serialised on one thread, so this latency "
            "(which other work on a shared machine changes a lot) bounds throughput.",
            "",
        ]
    out += [
        *_table(
            [
                "residents",
                "replied / answered / planned",
                "s",
                "msg/s",
                "p50 ms",
                "p99 ms",
                "later messages with exactly one reply",
                "first message: replies (count)",
                "responses with no reply",
                "errors",
                "outbox undelivered: running / after stop",
                "server CPU ms per message",
                "client CPU ms per message",
            ],
            rows,
        ),
        "A session's first response carries two messages when the bot puts its privacy notice before the first "
        "answer; every later message should get exactly one. *Server CPU ms per message* is the server "
        "process's CPU time over the level divided by the messages answered: 1000 divided by it is what the "
        "server's one thread could serve if it never waited. The load generator's own CPU (*client CPU*) comes out of "
        "the same 2 cores.",
        "",
    ]
    checks = []
    for r in section["levels"]:
        db = r.get("state_db", {})
        timeouts = sum(v for k, v in r["errors"].items() if "Timeout" in k)
        cpu = r.get("server_cpu_ms_per_message")
        checks.append(
            f"- {_n(r['residents'])} residents: state.db logged {_n(db.get('logged_in'))} incoming web messages "
            f"(answered + {r.get('warm_up_messages')} warm-up"
            + (f" + {_n(timeouts)} the client gave up on after 30 s" if timeouts else "")
            + f" = {_n(r['answered'] + r.get('warm_up_messages', 0) + timeouts)}), queued "
            f"{_n(db.get('web_replies_queued'))} web replies; the residents received "
            f"{_n(r.get('bot_messages_received'))} bot messages; {_n(db.get('escalations'))} escalations opened; "
            f"outbox after stop: {r['outbox_after_stop']}; server exit code {r['server_exit_code']}; "
            f"server ready in {_n(r.get('start_seconds'), 2)} s"
            + (
                f"; at {_n(cpu, 1)} ms of server CPU per message one thread tops out near {1000 / cpu:.0f} msg/s"
                if cpu
                else ""
            )
            + "."
            + "".join(f" {k}: {v!r}." for k, v in r.get("error_samples", {}).items())
        )
    out += ["Checks from state.db:", "", *checks, ""]
    profiled = section.get("profiled") or {}
    profile = profiled.get("profile") or {}
    if profile.get("categories"):
        out += [
            f"### Where the server's time goes ({_n(profiled['residents'])} residents, server under cProfile)",
            "",
            f"The same level again with the server run as `python -m cProfile -m bot.cli run` "
            f"({_n(profiled['messages_per_second'], 1)} msg/s under the profiler). Own time by part, as a share "
            "of the time the server was busy (cProfile measures wall time, so waiting in epoll is listed apart "
            "and not in the shares; it slows Python code more than C code):",
            "",
            *_table(
                ["part", "own s", "share of busy time"],
                [[k, _n(v["seconds"], 3), _pct(v["share_of_busy"])] for k, v in profile["categories"].items()],
            ),
            "Functions with the most own time:",
            "",
            *_table(
                ["function", "part", "calls", "own s", "share of busy time"],
                [
                    [
                        f"`{r['function']}`",
                        r["category"],
                        _n(r["calls"]),
                        _n(r["own_seconds"], 3),
                        _pct(r["share_of_busy"]),
                    ]
                    for r in profile["top"]
                ],
            ),
        ]
    elif profile.get("error"):
        out += [f"Server profile: {profile['error']}.", ""]
    return out


def _undelivered(counts: dict) -> int:
    return counts.get("pending", 0) + counts.get("sending", 0)


def startup_section(results: dict) -> list[str]:
    """Start-up and kb build."""
    s = results.get("startup")
    if not s:
        return []

    def row(label: str, summary: dict) -> list[str]:
        return [
            label,
            _n(summary["runs"]),
            _n(summary["first_answer_median_s"], 3),
            f"{_n(summary['first_answer_min_s'], 3)} - {_n(summary['first_answer_max_s'], 3)}",
            _n(summary["cpu_median_s"], 3),
            _n(summary.get("runs_that_wrote_the_index_cache")),
        ]

    rows = [
        row("warm: knowledge.db and its index cache already built", s["warm"]),
        row("warm, numpy visible (as in a venv with the bench extra)", s["warm_with_numpy_visible"]),
        row("cold: knowledge.db deleted first (check + build + answer)", s["cold"]),
    ]
    if "first_after_build" in s:
        rows.insert(1, row("first start after `kb build` (builds the index cache)", s["first_after_build"]))
    if "warm_large" in s:
        size = _n(s["kb_build_large"]["questions"])
        if "first_after_build_large" in s:
            rows.append(row(f"{size} questions: first start after `kb build`", s["first_after_build_large"]))
        rows.append(row(f"{size} questions: warm", s["warm_large"]))
    out = [
        "## 4. Start-up",
        "",
        f'Ran {s["ran_at"]}. {_loads(s)}. Wall-clock seconds from starting `councilbot ask "hello"` to the '
        "first line of its answer; CPU is the process's user + system time (what an idle machine would "
        "roughly take).",
        "",
        *_table(["case", "runs", "median s", "range s", "CPU s (median)", "runs that (re)built the index"], rows),
        "A warm run that (re)built the index found its cache stale: the cache is keyed by knowledge.db and by "
        "the matcher's source files, so an edit to `intents/` during the run invalidates it.",
        "",
        "Phases of a warm start, timed inside a fresh process (median of runs; the rest of the wall time is the "
        "interpreter starting and the process exiting):",
        "",
        *_table(["phase", "s"], [[k, _n(v, 4)] for k, v in s["phases_median_s"].items()]),
    ]
    off = s.get("kb_build_bundled_sync_off", {})
    builds = [
        [
            f"bundled ({_n(s['bundled_questions'])} questions)",
            _n(s["kb_build_bundled"]["median_s"], 3),
            _n(s["kb_build_bundled"].get("cpu_median_s"), 3),
            _n(off.get("median_s"), 3),
            _n(off.get("cpu_median_s"), 3),
            f"median of {s['kb_build_bundled']['runs']}",
        ]
    ]
    if "kb_build_large" in s:
        large = s["kb_build_large"]
        builds.append(
            [
                f"generated ({_n(large['questions'])} questions, {_n(large['entries'])} entries)",
                _n(large["seconds"], 2),
                _n(large.get("cpu_seconds"), 2),
                _n(large.get("sync_off_seconds"), 2),
                _n(large.get("sync_off_cpu_seconds"), 2),
                "one run",
            ]
        )
    out += [
        "`councilbot kb build` (check the content, then write knowledge.db), wall-clock and CPU seconds; the "
        "*synchronous = OFF* columns are a diagnostic (every SQLite connection set so by a `sitecustomize`), "
        "showing how much of the build waits for fsync: sqlite-utils commits every batch of rows.",
        "",
        *_table(["knowledge base", "s", "CPU s", "s, synchronous = OFF", "CPU s, synchronous = OFF", "runs"], builds),
    ]
    phases = s.get("phases_median_s", {})
    if phases:
        name, value = max(phases.items(), key=lambda kv: kv[1])
        cpu = s["warm"]["cpu_median_s"]
        wall = s["warm"]["first_answer_median_s"]
        target = TARGETS["startup_s"]
        if cpu >= target:
            verdict = f"above the {target:g} s target, so even an idle machine would not start in time"
        elif wall >= target:
            verdict = (
                f"under the {target:g} s target, so the wall-clock median here is over it by waiting (other "
                "processes on the machine, disk) rather than by work"
            )
        else:
            verdict = f"and the wall-clock median {_n(wall, 3)} s, both under the {target:g} s target"
        out += [
            f"The largest phase of a warm start is *{name}* ({_n(value, 3)} s of "
            f"{_n(sum(phases.values()), 3)} s timed in-process). The warm start's CPU time is {_n(cpu, 3)} s, "
            f"{verdict}.",
            "",
        ]
    return out


def _failed(results: dict) -> list[str]:
    lines = []
    for section in SECTIONS:
        error = results.get(section, {}).get("error")
        if error:
            lines.append(f"- **{section}** failed when it ran ({results[section].get('ran_at', '?')}): `{error}`")
    return ["## Sections that failed", "", *lines, ""] if lines else []


def render(results: dict) -> str:
    """The whole report."""
    run = results.get("last_run", {})
    lines = [
        "# councilbot benchmarks",
        "",
        f"Written by `{run.get('command', '.venv/bin/python -m bench')}`, last run {run.get('started', '?')} "
        f"({_n(run.get('seconds'), 0)} s for sections {', '.join(run.get('sections', []))}). "
        "How to re-run all or part of it: [README.md](README.md).",
        "",
        "> **Caveat.** This is a shared 2-core virtual machine and other processes were running during the run "
        "(load averages are given per section; a load above 2 means the benchmark competed for the cores). "
        "Wall-clock figures are medians of repeated runs but still include that contention; the CPU-time figures "
        "beside them show what the code itself costs. Compare re-runs on the same machine and load.",
        "",
    ]
    results = dict(results)
    failed = _failed(results)
    for section in SECTIONS:
        if results.get(section, {}).get("error"):
            results.pop(section)
    for part in (
        failed,
        summary(results),
        machine(results),
        matcher_section(results),
        accuracy_section(results),
        e2e_section(results),
        startup_section(results),
    ):
        lines += part
    return "\n".join(lines).rstrip() + "\n"
