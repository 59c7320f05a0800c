"""Reply drafts on the held-out messages: latency, grounding in the gold intent, placeholders.

    python benchmarks/bench_drafts.py

Every held-out message goes through `assist` one at a time (triage, knowledge-base search and the
template draft in both languages). "Grounded in the gold intent" means the draft uses a
knowledge-base entry whose intent is the message's labeled intent. A second table shows the
trade-off behind `Drafter(low_confidence=..., pool=...)`: how unsure the search may be when the
answer agrees with triage's intent, and how many hits the drafter chooses from.
"""

import re
import time
from collections import Counter

import numpy as np
from common import ROOT, print_table

import triage
from triage.data import iter_records
from triage.drafting import Drafter

PLACEHOLDER = re.compile(r"\{[A-Za-z_]\w*\}")


def grounding(t, rows, drafts):
    grounded = with_entry = placeholders = needs_human = 0
    misses = Counter()
    for row, draft in zip(rows, drafts):
        placeholders += len(PLACEHOLDER.findall(draft.zh)) + len(PLACEHOLDER.findall(draft.en))
        needs_human += draft.needs_human
        if draft.kb_ids:
            with_entry += 1
            intent = t.knowledge_base.get(draft.kb_ids[0]).intent
            grounded += intent == row["intent"]
            misses[(row["intent"], intent)] += intent != row["intent"]
    return grounded, with_entry, placeholders, needs_human, misses


if __name__ == "__main__":
    rows = [r for _, r in iter_records(ROOT / "data" / "eval" / "heldout.jsonl")]
    t = triage.load()
    t.assist("warm-up 你好")
    times, drafts = [], []
    for row in rows:
        started = time.perf_counter()
        drafts.append(t.assist(row["text"]).draft)
        times.append((time.perf_counter() - started) * 1000)
    n = len(rows)
    grounded, with_entry, placeholders, needs_human, misses = grounding(t, rows, drafts)
    accuracy = sum(r.intent.label == row["intent"] for r, row in zip(t.triage_batch([r["text"] for r in rows]), rows))
    print_table(
        f"drafts for {n} held-out messages (template path, one at a time)",
        ["measure", "value"],
        [["assist p50 ms (triage + search + both drafts)", f"{np.percentile(times, 50):.2f}"],
         ["assist p99 ms", f"{np.percentile(times, 99):.2f}"],
         ["drafts using a KB entry of the gold intent / all drafts", f"{grounded / n:.4f}"],
         ["... / drafts that use a KB entry", f"{grounded / max(with_entry, 1):.4f}"],
         ["triage intent accuracy on the same messages (the practical ceiling)", f"{accuracy / n:.4f}"],
         ["holding replies (no usable KB answer)", f"{1 - with_entry / n:.4f}"],
         ["drafts flagged needs_human", f"{needs_human / n:.4f}"],
         ["unfilled placeholders across all drafts", str(placeholders)]],
    )
    print("most frequent (gold intent, entry intent) mismatches:", [m for m in misses.most_common(6) if m[1]])
    # The other side of the trade-off: questions no entry answers should get a holding reply or a flag.
    unanswerable = [r["text"] for path in sorted((ROOT / "data" / "eval" / "kb_queries").glob("*.jsonl"))
                    for _, r in iter_records(path) if r["entry_id"] is None]
    gap_drafts = [a.draft for a in t.assist_batch(unanswerable)]
    print_table(f"drafts for the {len(unanswerable)} knowledge-base queries that no entry answers",
                ["outcome", "share"],
                [["holding reply", sum(not d.kb_ids for d in gap_drafts) / len(gap_drafts)],
                 ["an entry, flagged for a check (needs_human)", sum(bool(d.kb_ids) and d.needs_human for d in gap_drafts) / len(gap_drafts)],
                 ["an entry, not flagged", sum(bool(d.kb_ids) and not d.needs_human for d in gap_drafts) / len(gap_drafts)]])
    sweep = []
    texts = [r["text"] for r in rows]
    for low, pool in ((1.0, 3), (0.3, 3), (0.1, 3), (0.3, 10), (0.1, 10), (0.0, 10), (0.1, 20)):
        t.drafter = Drafter(low_confidence=low, pool=pool)
        g, w, p, h, _ = grounding(t, rows, [a.draft for a in t.assist_batch(texts)])
        sweep.append([low, pool, g / n, g / max(w, 1), 1 - w / n, h / n, p])
    print_table("Drafter(low_confidence=..., pool=...) on the same messages (default 0.1, 10)",
                ["low_confidence", "pool", "grounded / all", "grounded / with entry", "holding replies",
                 "needs_human", "placeholders"], sweep)
