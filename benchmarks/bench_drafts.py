"""Reply drafts on the held-out messages: latency, grounding in the gold intent, placeholders.

    python benchmarks/bench_drafts.py

Every held-out message goes through `assist` one at a time (triage, knowledge-base search and the
template draft in both languages). "Grounded in the gold intent" means the draft uses a
knowledge-base entry whose intent is the message's labeled intent.
"""

import re
import time
from collections import Counter

import numpy as np
from common import ROOT, print_table

import triage
from triage.data import iter_records

PLACEHOLDER = re.compile(r"\{[A-Za-z_]\w*\}")

if __name__ == "__main__":
    rows = [r for _, r in iter_records(ROOT / "data" / "eval" / "heldout.jsonl")]
    t = triage.load()
    t.assist("warm-up 你好")
    times, grounded, with_entry, placeholders, needs_human = [], 0, 0, 0, 0
    misses = Counter()
    for row in rows:
        started = time.perf_counter()
        result = t.assist(row["text"])
        times.append((time.perf_counter() - started) * 1000)
        draft = result.draft
        placeholders += len(PLACEHOLDER.findall(draft.zh)) + len(PLACEHOLDER.findall(draft.en))
        needs_human += draft.needs_human
        if draft.kb_ids:
            with_entry += 1
            intent = t.knowledge_base.get(draft.kb_ids[0]).intent
            grounded += intent == row["intent"]
            if intent != row["intent"]:
                misses[(row["intent"], intent)] += 1
    n = len(rows)
    print_table(
        f"drafts for {n} held-out messages (template path, one at a time)",
        ["measure", "value"],
        [["assist p50 ms (triage + search + both drafts)", f"{np.percentile(times, 50):.2f}"],
         ["assist p99 ms", f"{np.percentile(times, 99):.2f}"],
         ["drafts using a KB entry of the gold intent / all drafts", f"{grounded / n:.4f}"],
         ["... / drafts that use a KB entry", f"{grounded / max(with_entry, 1):.4f}"],
         ["drafts with no good KB answer (holding reply)", f"{1 - with_entry / n:.4f}"],
         ["drafts flagged needs_human", f"{needs_human / n:.4f}"],
         ["unfilled placeholders across all drafts", str(placeholders)]],
    )
    print("most frequent (gold intent, entry intent) mismatches:", misses.most_common(8))
