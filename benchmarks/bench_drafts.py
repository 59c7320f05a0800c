"""Reply drafts on the held-out messages: latency, grounding in the gold intent, placeholders.

    python benchmarks/bench_drafts.py

Every held-out message goes through `assist` one at a time (triage, knowledge-base search and the
template draft in both languages). "Grounded in the gold intent" means the draft uses a
knowledge-base entry whose intent is the message's labeled intent. A second table shows the
trade-off behind `Drafter(low_confidence=...)`: how far below the search's gap threshold an answer
whose intent agrees with triage is still used.
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


def grounding(t, drafter, rows, results):
    grounded = with_entry = placeholders = needs_human = 0
    misses = Counter()
    for row, (result, answers) in zip(rows, results):
        draft = drafter.compose(result, answers)
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
    times, results = [], []
    for row in rows:
        started = time.perf_counter()
        a = t.assist(row["text"])
        times.append((time.perf_counter() - started) * 1000)
        results.append((a.triage, a.answers))
    n = len(rows)
    grounded, with_entry, placeholders, needs_human, misses = grounding(t, t.drafter, rows, results)
    print_table(
        f"drafts for {n} held-out messages (template path, one at a time)",
        ["measure", "value"],
        [["assist p50 ms (triage + search + both drafts)", f"{np.percentile(times, 50):.2f}"],
         ["assist p99 ms", f"{np.percentile(times, 99):.2f}"],
         ["drafts using a KB entry of the gold intent / all drafts", f"{grounded / n:.4f}"],
         ["... / drafts that use a KB entry", f"{grounded / max(with_entry, 1):.4f}"],
         ["holding replies (no usable KB answer)", f"{1 - with_entry / n:.4f}"],
         ["drafts flagged needs_human", f"{needs_human / n:.4f}"],
         ["unfilled placeholders across all drafts", str(placeholders)]],
    )
    print("most frequent (gold intent, entry intent) mismatches:", [m for m in misses.most_common(6) if m[1]])
    sweep = []
    for low in (1.0, 0.5, 0.3, 0.2, 0.1, 0.0):
        g, w, p, h, _ = grounding(t, Drafter(low_confidence=low), rows, results)
        sweep.append([low, g / n, g / max(w, 1), 1 - w / n, h / n, p])
    print_table("Drafter(low_confidence=...) on the same messages (1.0 = only confident answers)",
                ["low_confidence", "grounded / all", "grounded / with entry", "holding replies", "needs_human",
                 "placeholders"], sweep)
