"""Load test of the HTTP service: requests per second and p50/p99 latency.

    python benchmarks/bench_service.py [--duration 20] [--clients 1 8 32] [--endpoints triage assist]

Starts ``triage serve`` (shipped model and knowledge base, one API key, access log off) in its
own process on a loopback port, then drives it from this process with keep-alive HTTP/1.1
clients (asyncio, one connection per client, the next request sent as soon as the answer
arrives). Messages are the project's own held-out and training messages, about 11,000 distinct
texts, so a message comes round again only long after the encoder's memory of recent texts
(2,048) has forgotten it. Both processes share the machine's cores, as they would on a 2-core box
running its own load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
from common import ROOT, print_table

from triage.data import iter_records

KEY = "bench-key-0123456789abcdef"


def messages() -> list[str]:
    texts = [r["text"] for name in ("eval/heldout.jsonl", "training/train.jsonl")
             for _, r in iter_records(ROOT / "data" / name)]
    texts = list(dict.fromkeys(texts))
    np.random.default_rng(0).shuffle(texts)
    return texts


async def one_client(host: str, port: int, path: str, bodies: list[bytes], start: float, stop: float,
                     latencies: list[float], statuses: dict[int, int], cursor: Iterator[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {KEY}\r\n"
            "Content-Type: application/json\r\n").encode()
    try:
        while True:
            now = time.perf_counter()
            if now >= stop:
                break
            body = bodies[next(cursor) % len(bodies)]
            writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if now >= start:  # requests sent during the warm-up are not counted
                latencies.append(time.perf_counter() - now)
                statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def load(host: str, port: int, path: str, bodies: list[bytes], clients: int, warmup: float,
               duration: float, cursor: Iterator[int]) -> tuple[list[float], dict[int, int], float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter() + warmup
    stop = start + duration
    await asyncio.gather(*(one_client(host, port, path, bodies, start, stop, latencies, statuses, cursor)
                           for _ in range(clients)))
    return latencies, statuses, duration


def batch_sizes(url: str) -> dict[str, tuple[float, float]]:
    """Cumulative (sum, count) of the model batch-size histogram per kind."""
    text = httpx.get(url + "/metrics").text
    out: dict[str, list[float]] = {}
    for what, kind, value in re.findall(r'kefu_model_batch_size_(sum|count)\{kind="(\w+)"\} ([0-9.e+]+)', text):
        out.setdefault(kind, [0.0, 0.0])[0 if what == "sum" else 1] = float(value)
    return {k: (v[0], v[1]) for k, v in out.items()}


def measure(server, endpoint: str, clients: int, bodies: list[bytes], warmup: float, duration: float,
            cursor: Iterator[int]) -> dict:
    before = batch_sizes(server.url).get(endpoint, (0.0, 0.0))
    latencies, statuses, duration = asyncio.run(load("127.0.0.1", server.port, f"/v1/{endpoint}", bodies, clients,
                                                     warmup, duration, cursor))
    after = batch_sizes(server.url).get(endpoint, (0.0, 0.0))
    ms = np.array(latencies) * 1000
    batches = after[1] - before[1]
    return {"endpoint": f"/v1/{endpoint}", "clients": clients, "requests": len(latencies),
            "errors": len(latencies) - statuses.get(200, 0), "rps": len(latencies) / duration,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_batch": (after[0] - before[0]) / batches if batches else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--endpoints", nargs="+", default=["triage", "assist"], choices=["triage", "assist"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="server worker processes")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "tests"))
    from service_support import ServiceProcess

    from triage.service import hash_key

    texts = messages()
    bodies = [json.dumps({"text": t}, ensure_ascii=False).encode("utf-8") for t in texts]
    rows, records = [], []
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            config = {"api_keys": [{"name": "bench", "hash": hash_key(KEY),
                                    "rate_limit": {"per_second": 1e6, "burst": 1_000_000}}]}
            server = ServiceProcess(config, Path(tmp), workers=workers).start()
            # One cursor for every client and cell: no message is sent twice until all have been.
            cursor = itertools.count()
            try:
                for endpoint in args.endpoints:
                    for clients in args.clients:
                        record = measure(server, endpoint, clients, bodies, args.warmup, args.duration, cursor)
                        records.append({"workers": workers, **record})
                        rows.append([workers, record["endpoint"], clients, record["requests"], record["errors"],
                                     f"{record['rps']:.0f}", f"{record['p50_ms']:.1f}", f"{record['p99_ms']:.1f}",
                                     f"{record['mean_batch']:.1f}"])
            finally:
                server.stop()
    print_table(f"triage serve on loopback, {os.cpu_count()} cores shared with the load generator; "
                f"{args.duration:.0f} s per cell after {args.warmup:.0f} s warm-up, {len(texts)} distinct messages",
                ["workers", "endpoint", "clients", "requests", "errors", "req/s", "p50 ms", "p99 ms", "mean batch"],
                rows)
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
