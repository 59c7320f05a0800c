"""Batch scoring throughput, memory flatness, Spark beside the process pool, and resume after a kill.

    python benchmarks/bench_batch.py                         # 20,000 rows; memory at 5,000 and 50,000
    python benchmarks/bench_batch.py --rows 100000 --memory-sizes 100000,1000000

Tickets are the project's held-out and training messages (real customer wording, both languages),
cycled with fresh ids and arrival times to the requested size. Every configuration runs
`triage score` in a fresh process; peak memory is the largest process's peak resident set.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, console, print_table

TRIAGE = str(Path(sys.executable).with_name("triage"))


def make_export(path: Path, rows: int) -> Path:
    texts = []
    for name in ("eval/heldout.jsonl", "training/train.jsonl"):
        texts += [json.loads(line)["text"] for line in (ROOT / "data" / name).read_text("utf-8").splitlines()]
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["ticket_id", "created_at", "body"])
        for i in range(rows):
            writer.writerow([f"K{i:07d}", f"2026-11-{1 + (i // 997) % 28:02d}T{i % 24:02d}:00:00Z", texts[i % len(texts)]])
    return path


_MEASURE = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(p.returncode)")


def run(source: Path, output: Path, *extra: str) -> tuple[float, float]:
    """Seconds and peak RSS (GB, the largest process) of one `triage score` run, measured by a
    fresh wrapper process so each run's peak is its own."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _MEASURE, TRIAGE, "score", str(source), str(output), "--text-column",
                           "body", "--id-column", "ticket_id", "--time-column", "created_at", "--quiet", *extra],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"triage score failed: {proc.stderr[-2000:]}")
    return seconds, int(proc.stdout.strip().splitlines()[-1]) / 2**20


def spark_rows_per_second(source: Path, rows: int) -> float | None:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return None
    from triage.spark import score

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    try:
        df = spark.read.csv(str(source), header=True, multiLine=True, escape='"')
        started = time.perf_counter()
        n = score(df, text_col="body", id_col="ticket_id", time_col="created_at").write.mode("overwrite") \
            .parquet(str(source.with_suffix(".spark.parquet")))
        assert n is None
        return rows / (time.perf_counter() - started)
    finally:
        spark.stop()


def resume_check(source: Path, workdir: Path, rows: int) -> str:
    import pandas as pd

    from triage.batch import read_output

    reference = workdir / "reference.csv"
    run(source, reference, "--no-drafts")
    output = workdir / "killed.csv"
    journal = output.with_name(output.name + ".partial.jsonl")
    proc = subprocess.Popen([TRIAGE, "score", str(source), str(output), "--text-column", "body", "--id-column",
                             "ticket_id", "--time-column", "created_at", "--quiet", "--no-drafts"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (journal.exists() and journal.stat().st_size > 0 and
               sum(1 for _ in open(journal, "rb")) >= rows // 2):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run(source, output, "--no-drafts", "--resume")
    a, b = read_output(reference), read_output(output)
    same = isinstance(a, pd.DataFrame) and a.equals(b)
    return f"killed at half, resumed: {len(b):,} rows, ids unique: {b['id'].is_unique}, equal to uninterrupted: {same}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--memory-sizes", default="5000,50000", help="comma-separated; empty to skip")
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--no-resume-check", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = make_export(tmp / "tickets.csv", args.rows)
        rows = []
        for workers in (1, 2):
            for drafts in (True, False):
                seconds, peak = run(source, tmp / "out.parquet", "--workers", str(workers),
                                    *(() if drafts else ("--no-drafts",)))
                rows.append([f"{workers} worker(s), drafts {'on' if drafts else 'off'}", f"{args.rows / seconds:,.0f}",
                             f"{seconds:.0f}", f"{peak:.2f}"])
        spark = None if args.no_spark else spark_rows_per_second(source, args.rows)
        if spark is not None:
            rows.append(["Spark local[2], drafts on", f"{spark:,.0f}", f"{args.rows / spark:.0f}", "-"])
        print_table(f"triage score on {args.rows:,} tickets (CSV in, Parquet out; start-up included)",
                    ["configuration", "rows/s", "seconds", "peak RSS GB"], rows)
        memory = []
        for size in (int(x) for x in args.memory_sizes.split(",") if x.strip()):
            big = make_export(tmp / f"tickets_{size}.csv", size)
            seconds, peak = run(big, tmp / f"out_{size}.csv", "--no-drafts")
            memory.append([f"{size:,} rows, 1 worker, drafts off", f"{peak:.3f}", f"{size / seconds:,.0f}"])
            big.unlink()
        if memory:
            print_table("memory stays flat as the input grows", ["input", "peak RSS GB", "rows/s"], memory)
        if not args.no_resume_check:
            console.print(resume_check(make_export(tmp / "resume.csv", 4000), tmp, 4000))
