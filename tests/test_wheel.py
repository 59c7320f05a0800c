"""A non-editable wheel carries the default bundle and knowledge base and works outside the checkout."""

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest


@pytest.mark.slow
def test_wheel_install_gives_a_working_default(root, tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(root)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = dist.glob("kefu_triage-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # Dependencies come from the test environment (appended after the venv's own site-packages,
    # so the wheel's triage wins); the wheel itself is installed for real.
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", site, str(wheel)],
                   check=True, capture_output=True, timeout=600)
    code = (
        "import sys, triage, json; t = triage.load(); r = t.triage('我的快递三天了还没到');"
        "a = t.assist('退款什么时候到账');"
        "print(json.dumps({'file': triage.__file__, 'bundle': str(triage.default_bundle_path()),"
        " 'intent': r.intent.label, 'kb': str(triage.default_kb_path()), 'answer': a.answers[0].entry.intent,"
        " 'heavy': sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules)}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    import json

    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["file"].startswith(site)
    assert info["bundle"].startswith(site) and info["bundle"].endswith("_models/default")
    assert info["intent"] == "delivery_problem"
    assert info["kb"].startswith(site) and info["answer"] == "refund"
    assert info["heavy"] == []  # the default never needs the torch extra, even where it is installed
