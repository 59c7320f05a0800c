"""Run every benchmark in turn (each prints its own table).

    python benchmarks/run_all.py
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["bench_heldout.py", "bench_email.py", "bench_pleasantries.py", "bench_bitext.py", "bench_speed.py",
           "bench_kb.py", "bench_assist.py", "bench_drafts.py", "bench_batch.py", "bench_service.py",
           "bench_kb_scale.py", "bench_chnsenticorp.py", "bench_banking77.py"]

if __name__ == "__main__":
    failed = [s for s in SCRIPTS if subprocess.run([sys.executable, str(HERE / s)], cwd=HERE).returncode != 0]
    sys.exit(f"failed: {failed}" if failed else 0)
