"""Knowledge-base paths that do not exist: the error says so, and a refused write leaves nothing
behind (no directory, no lock file)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from retrieval import DataFileError, KnowledgeBase, KnowledgeBaseFileError, load_entries
from retrieval import store
from tests.conftest import run_cli

ENTRY = {"id": "gift-wrap", "intent": "product_inquiry", "question_en": ["Do you gift wrap?"],
         "answer_en": "Yes, gift wrapping is free at checkout."}


@pytest.fixture
def faq(tmp_path):
    path = tmp_path / "faq.jsonl"
    path.write_text(json.dumps(ENTRY) + "\n", "utf-8")
    return path


def test_a_missing_path_is_named_as_missing(tmp_path):
    for missing in (tmp_path / "kb_indx", tmp_path / "faq.jsonl"):
        with pytest.raises(DataFileError, match="does not exist; check the path") as info:
            load_entries(missing)
        assert str(missing) in str(info.value) and "unsupported" not in str(info.value)
    with pytest.raises(KnowledgeBaseFileError, match="does not exist"):
        KnowledgeBase.load(tmp_path / "kb_indx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KnowledgeBaseFileError, match="is empty, it holds no knowledge base"):
        KnowledgeBase.load(tmp_path / "empty")
    with pytest.raises(DataFileError, match="no knowledge-base files .*no CURRENT file"):
        load_entries(tmp_path / "empty")


def test_cli_says_the_path_does_not_exist(tmp_path):
    search = run_cli("kb", "search", "x", "--index", str(tmp_path / "kb_indx") + "/")
    assist = run_cli("assist", "where is my parcel", "--kb", str(tmp_path / "nonexistent"))
    for proc in (search, assist):
        assert proc.returncode != 0
        assert "does not exist" in proc.stderr and "unsupported" not in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_refused_kb_add_creates_nothing(tmp_path, faq):
    work = tmp_path / "work"
    work.mkdir()
    (work / "empty").mkdir()
    for index in ("kb_indx", "a/b/c", "empty"):
        proc = run_cli("kb", "add", "--index", index, "--input", str(faq), cwd=work)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert ("is empty" if index == "empty" else "does not exist") in proc.stderr, proc.stderr
    assert sorted(p.name for p in work.iterdir()) == ["empty"] and list((work / "empty").iterdir()) == []
    with pytest.raises(KnowledgeBaseFileError, match="does not exist"):
        with KnowledgeBase.edit(work / "x" / "kb"):
            pass
    assert sorted(p.name for p in work.iterdir()) == ["empty"]


def test_creating_a_knowledge_base_still_works_and_keeps_its_lock(tmp_path):
    target = tmp_path / "new" / "kb"
    with KnowledgeBase.edit(target, create={}) as kb:
        kb.add([ENTRY])
    assert (target / store.CURRENT).is_file() and (target / store.LOCK).exists()
    assert "gift-wrap" in KnowledgeBase.load(target)
    with KnowledgeBase.edit(target) as kb:  # an existing knowledge base: edited in place
        kb.update([{**ENTRY, "answer_en": "Yes, and it is free."}])
    assert KnowledgeBase.load(target).get("gift-wrap").answer("en") == "Yes, and it is free."


def test_a_writer_waiting_on_a_refused_one_still_gets_the_lock(tmp_path):
    """A creates the directory for its lock and is refused; B waited on that lock meanwhile. A
    removes what it created; B must take a fresh lock (not the removed file's) and save."""
    target = tmp_path / "kb"
    entered, done, errors = threading.Event(), threading.Event(), []

    def refused():
        try:
            with store.lock(target):
                entered.set()
                time.sleep(0.5)
                raise KnowledgeBaseFileError("refused")
        except KnowledgeBaseFileError:
            pass

    def creator():
        entered.wait(5)
        try:
            with KnowledgeBase.edit(target, create={}) as kb:
                kb.add([ENTRY])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        done.set()

    threads = [threading.Thread(target=refused), threading.Thread(target=creator)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert done.is_set() and not errors, errors
    assert "gift-wrap" in KnowledgeBase.load(target)
    assert (target / store.LOCK).exists()
