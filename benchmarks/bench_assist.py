"""Latency of one message through `assist` (triage + knowledge-base search) with the defaults.

    python benchmarks/bench_assist.py

Messages are the project's held-out split, sent one at a time after a warm-up, as a helpdesk
webhook would; the knowledge base is the shipped default (built once at start-up, timed too).
Each call is timed on its own 500 messages, so none is helped by the encoder's memory of texts
it has just embedded.
"""

import time

import numpy as np
from common import ROOT, print_table

import triage
from triage.data import iter_records

if __name__ == "__main__":
    heldout = list(dict.fromkeys(r["text"] for _, r in iter_records(ROOT / "data" / "eval" / "heldout.jsonl")))
    if len(heldout) < 1520:
        raise SystemExit(f"need 1,520 distinct held-out messages (20 to warm up, 500 per call), found {len(heldout)}")
    warm, *sets = heldout[:20], heldout[20:520], heldout[520:1020], heldout[1020:1520]
    t = triage.load()
    started = time.perf_counter()
    kb = t.knowledge_base
    build = time.perf_counter() - started
    for text in warm:
        t.assist(text)
    rows = []
    calls = (("triage only", t.triage), ("knowledge-base search only", kb.search), ("assist", t.assist))
    for (name, call), texts in zip(calls, sets):
        times = []
        for text in texts:
            t0 = time.perf_counter()
            call(text)
            times.append((time.perf_counter() - t0) * 1000)
        rows.append([name, f"{np.percentile(times, 50):.2f}", f"{np.percentile(times, 90):.2f}",
                     f"{np.percentile(times, 99):.2f}", f"{1000 / np.mean(times):.0f}"])
    print_table(f"one message at a time, {len(texts)} held-out messages per call; default KB of {len(kb)} entries "
                f"built in {build:.1f} s", ["call", "p50 ms", "p90 ms", "p99 ms", "messages/s"], rows)
