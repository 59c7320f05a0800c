import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def default_triage():
    import triage

    return triage.load()


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def run_cli(*args: str, cwd=None, input: str | None = None):
    """Run the installed `triage` console script in a subprocess."""
    import subprocess

    exe = Path(sys.executable).with_name("triage")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, cwd=cwd, input=input, timeout=900
    )
