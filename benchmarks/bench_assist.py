"""Latency of one message through `assist` (triage + knowledge-base search) with the defaults.

    python benchmarks/bench_assist.py

Messages are the project's held-out split, sent one at a time after a warm-up, as a helpdesk
webhook would; the knowledge base is the shipped default (built once at start-up, timed too).
"""

import time

import numpy as np
from common import ROOT, print_table

import triage
from triage.data import iter_records

if __name__ == "__main__":
    texts = [r["text"] for _, r in iter_records(ROOT / "data" / "eval" / "heldout.jsonl")][:500]
    t = triage.load()
    started = time.perf_counter()
    kb = t.knowledge_base
    build = time.perf_counter() - started
    for text in texts[:20]:
        t.assist(text)
    rows = []
    for name, call in (("triage only", t.triage), ("knowledge-base search only", kb.search), ("assist", t.assist)):
        times = []
        for text in texts:
            t0 = time.perf_counter()
            call(text)
            times.append((time.perf_counter() - t0) * 1000)
        rows.append([name, f"{np.percentile(times, 50):.2f}", f"{np.percentile(times, 90):.2f}",
                     f"{np.percentile(times, 99):.2f}", f"{1000 / np.mean(times):.0f}"])
    print_table(f"one message at a time, {len(texts)} held-out messages; default KB of {len(kb)} entries "
                f"built in {build:.1f} s", ["call", "p50 ms", "p90 ms", "p99 ms", "messages/s"], rows)
