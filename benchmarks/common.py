"""Shared helpers for the benchmark scripts: dataset lookup, machine description, tables."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
console = Console(width=None if sys.stdout.isatty() else 150)


def dataset(name: str) -> Path:
    """Path of a public evaluation dataset, or exit 0 with a clear message when it is absent."""
    path = DATASETS / name
    if not path.is_dir():
        console.print(
            f"[yellow]skipped:[/yellow] {path} not found. The public evaluation datasets live in "
            f"../shared/datasets beside the checkout; this benchmark needs {name}/ there."
        )
        sys.exit(0)
    return path


def machine() -> str:
    """One line describing the hardware the figures came from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def triage_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the `triage` console script; stops the benchmark if it fails."""
    exe = Path(sys.executable).with_name("triage")
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        console.print(proc.stdout, proc.stderr)
        raise SystemExit(f"triage {' '.join(args)} failed with exit code {proc.returncode}")
    return proc


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="left" if col == columns[0] else "right")
    for row in rows:
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    console.print(table)
    console.print(f"machine: {machine()}")


def train_and_evaluate(
    title: str, train: Path, test: Path, text_column: str, label_column: str, configs: dict[str, list[str]]
) -> None:
    """Train one bundle per configuration with `triage train`, score it with `triage evaluate`."""
    import json
    import tempfile
    import time

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, options in configs.items():
            out = Path(tmp) / name
            started = time.perf_counter()
            triage_cli("train", "--data", str(train), "--text-column", text_column,
                       "--label-column", label_column, "--out", str(out), *options)
            train_seconds = time.perf_counter() - started
            proc = triage_cli("evaluate", "--model", str(out), "--data", str(test),
                              "--text-column", text_column, "--label-column", label_column, "--json")
            report = json.loads(proc.stdout)
            rows.append([name, report["accuracy"], report["macro_f1"], f"{train_seconds:.0f} s", " ".join(options)])
            console.print(f"{name}: accuracy {report['accuracy']:.4f}")
    print_table(title, ["config", "accuracy", "macro-F1", "train time (2 cores)", "options"], rows)


def pick(configs: dict[str, list[str]], argv: list[str] | None = None) -> dict[str, list[str]]:
    """The configurations named by --configs (default: all)."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default=",".join(configs), help=f"comma-separated, from {list(configs)}")
    names = parser.parse_args(argv).configs.split(",")
    unknown = [n for n in names if n not in configs]
    if unknown:
        raise SystemExit(f"unknown configs {unknown}; choose from {list(configs)}")
    return {n: configs[n] for n in names}
