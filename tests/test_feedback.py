"""Agent feedback: the database (SQLite and a real PostgreSQL server), migrations, masking,
retraining from corrections, and the report."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import triage
from tests.conftest import run_cli
from triage.feedback import SCHEMA_VERSION, FeedbackError, FeedbackStore, build_report, edit_distance, render_html
from triage.feedback.store import MIGRATIONS


def _exercise(store_url) -> FeedbackStore:
    """Drafts and feedback through the public API; returns the store."""
    t = triage.Triage(feedback_store=store_url)
    refund = t.assist("退款退到信用卡要多久？我的邮箱 lee@example.com，电话 13812345678")
    t.feedback(refund.draft.id, "edited", refund.draft.primary + "\n如有疑问请致电 13812345678", agent_id="amy",
               corrected_intent="refund")
    hello = t.assist("在吗")
    t.feedback(hello.draft.id, "accepted", agent_id="bo")
    gap = t.assist("你们招不招兼职")
    t.feedback(gap.draft.id, "edited", "我们目前没有兼职岗位，谢谢关注。", corrected_intent="other")
    english = t.assist("How do I change my delivery address? I moved last week.")
    t.feedback(english.draft.id, "rejected", corrected_urgency="low")
    with pytest.raises(FeedbackError, match="no draft with id"):
        t.feedback("not-a-draft", "accepted")
    with pytest.raises(FeedbackError, match="action must be one of"):
        t.feedback(hello.draft.id, "liked")
    with pytest.raises(FeedbackError, match="needs final_text"):
        t.feedback(hello.draft.id, "edited")
    with pytest.raises(FeedbackError, match="not a known intent"):
        t.feedback(hello.draft.id, "rejected", corrected_intent="refunds")
    return t.feedback_store


def _check_rows(store: FeedbackStore) -> None:
    rows = store.rows()
    assert [r.action for r in rows] == ["edited", "accepted", "edited", "rejected"]
    assert rows[0].message.endswith("[EMAIL]，电话 [PHONE]") and "13812345678" not in rows[0].final_text
    assert rows[0].kb_ids and rows[0].agent_id == "amy" and rows[0].edit_distance > 0
    assert rows[1].edit_distance == 0 and rows[2].kb_ids == ()
    corrections = store.corrections()
    assert {c["text"]: c.get("intent") for c in corrections}["你们招不招兼职"] == "other"
    assert any(c.get("urgency") == "low" for c in corrections)
    assert store.schema_version() == SCHEMA_VERSION


def test_sqlite_store_masks_pii_and_validates(tmp_path):
    store = _exercise(tmp_path / "feedback.db")
    _check_rows(store)
    raw = (tmp_path / "feedback.db").read_bytes()
    assert b"lee@example.com" not in raw and b"13812345678" not in raw  # masked at rest
    report = build_report(store.rows())
    assert report.total == 4 and report.accepted == 1 and report.acceptance_rate == 0.25
    assert report.mean_edit_distance > 0 and 0 < report.mean_edit_ratio
    assert {s.kind for s in report.suggestions} == {"update", "new"}
    assert {g.name for g in report.most_rewritten} == {k for r in store.rows() if r.action != "accepted" for k in r.kb_ids}


def test_unmasked_storage_is_opt_in(tmp_path):
    store = FeedbackStore(tmp_path / "raw.db", mask_pii=False)
    t = triage.Triage(feedback_store=store)
    t.assist("我的邮箱 lee@example.com 收不到验证码")
    assert "lee@example.com" in sqlite3.connect(tmp_path / "raw.db").execute("SELECT message FROM drafts").fetchone()[0]


def test_migrations_upgrade_an_old_database_and_refuse_a_newer_one(tmp_path):
    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:  # a database made by version 1 of the schema, with a row
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
        MIGRATIONS[0][1](conn)
        conn.execute(sa.text("INSERT INTO schema_version VALUES (1)"))
        conn.execute(sa.text(
            "INSERT INTO drafts VALUES ('d1', '2026-01-01', 'hi', 'en', 'other', 'low', 'neutral', 'v0', '[]', '{}',"
            " '您好', 'Hello', 'en', 0)"))
    store = FeedbackStore(path, create=False)  # a reader still migrates an older schema of its own
    assert store.schema_version() == SCHEMA_VERSION
    store.record_feedback("d1", "edited", final_text="Hello there!")
    assert store.rows()[0].edit_distance == edit_distance("Hello", "Hello there!") == 7
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO schema_version VALUES (99)"))
    with pytest.raises(FeedbackError, match="newer than this library"):
        FeedbackStore(path)


def test_writers_refuse_another_applications_sqlite_file_and_leave_it_untouched(tmp_path):
    foreign = tmp_path / "shop.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
    conn.close()
    before = foreign.read_bytes()
    with pytest.raises(FeedbackError, match=r"shop.db is another application's SQLite database \(tables orders\); "
                                            r"keep feedback in its own file: pass a new path"):
        FeedbackStore(foreign)
    assert foreign.read_bytes() == before
    empty = tmp_path / "empty.db"
    empty.touch()  # an empty file is a new database
    assert FeedbackStore(empty).schema_version() >= 1


def test_readers_refuse_a_database_that_is_not_a_feedback_store_and_leave_it_untouched(tmp_path):
    foreign = tmp_path / "crm.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers VALUES (1, 'Lee')")
    conn.close()
    before = foreign.read_bytes()
    expected = f"{foreign} is not a kefu-triage feedback database (no schema_version table); pass the file that " \
               "`triage serve` / FeedbackStore created"
    with pytest.raises(FeedbackError) as info:
        FeedbackStore(foreign, create=False)
    assert str(info.value) == expected
    report = run_cli("feedback", "report", "--db", str(foreign))
    retrain = run_cli("retrain", "--feedback", str(foreign), "--out", str(tmp_path / "bundle"))
    for proc in (report, retrain):
        assert proc.returncode != 0 and "no schema_version table" in proc.stderr and "Traceback" not in proc.stderr
    assert foreign.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["crm.db"]

    half = tmp_path / "half.db"  # the marker alone is not enough
    with sqlite3.connect(half) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY)")
    conn.close()
    with pytest.raises(FeedbackError, match="has a schema_version table but no drafts or feedback table"):
        FeedbackStore(half, create=False)
    (tmp_path / "notes.db").write_text("not a database at all\n" * 100, "utf-8")
    with pytest.raises(FeedbackError, match=r"notes.db is not a kefu-triage feedback database \(file is not a database\)"):
        FeedbackStore(tmp_path / "notes.db", create=False)
    proc = run_cli("feedback", "report", "--db", str(tmp_path / "notes.db"))
    assert proc.returncode != 0 and "is not a kefu-triage feedback database" in proc.stderr
    with pytest.raises(FeedbackError, match="no feedback database at"):
        FeedbackStore(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A real PostgreSQL server on loopback, started for these tests and stopped after."""
    bindir = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None) if Path("/usr/lib/postgresql").exists() \
        else None
    if bindir is None or not (bindir / "initdb").exists():
        if os.environ.get("KEFU_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL server binaries not found (Debian package postgresql); CI requires them")
        pytest.skip("PostgreSQL server binaries not found; install Debian's postgresql package")
    pytest.importorskip("psycopg")
    import tempfile

    data = Path(tempfile.mkdtemp(prefix="kefu-pg-"))  # outside pytest's root-only tree: postgres must enter it
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(data, "postgres")
    port = _free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data / "db"), "--auth=trust", "-U", "postgres",
                    "--encoding=UTF8"], check=True, capture_output=True)
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-w", "-l", str(data / "log"), "-o",
                    f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        deadline = time.time() + 30
        while True:
            try:
                sa.create_engine(url).connect().close()
                break
            except sa.exc.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
        yield url
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def test_postgresql_store(postgres_url):
    with sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text("CREATE DATABASE crm"))
    crm_url = postgres_url.rsplit("/", 1)[0] + "/crm"
    crm = sa.create_engine(crm_url)
    with crm.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY)"))
    with pytest.raises(FeedbackError, match="crm is not a kefu-triage feedback database .no schema_version table."):
        FeedbackStore(crm_url, create=False)
    assert sa.inspect(crm).get_table_names() == ["customers"]  # a reader added nothing
    crm.dispose()

    store = _exercise(postgres_url)
    _check_rows(store)
    assert FeedbackStore(postgres_url).schema_version() == SCHEMA_VERSION  # reopening does not migrate twice


def test_retrain_learns_the_corrections_and_records_them(tmp_path, root):
    # A small, balanced slice of the training data keeps this quick; the corrections are what matter.
    per_intent: dict[str, int] = {}
    base = tmp_path / "base.jsonl"
    with open(base, "w", encoding="utf-8") as out:
        for line in (root / "data" / "training" / "train.jsonl").read_text("utf-8").splitlines():
            row = json.loads(line)
            if per_intent.get(row["intent"], 0) < 25:
                per_intent[row["intent"]] = per_intent.get(row["intent"], 0) + 1
                out.write(line + "\n")
    store = FeedbackStore(tmp_path / "fb.db")
    t = triage.Triage(feedback_store=store)
    messages = ["我的包裹显示已签收但我没收到", "包裹被放在门卫那里丢了", "显示签收了，人根本没见到快递"]
    for text in messages:
        draft = t.assist(text).draft
        t.feedback(draft.id, "rejected", corrected_intent="complaint", corrected_urgency="high")
    proc = run_cli("retrain", "--feedback", str(tmp_path / "fb.db"), "--data", str(base), "--out",
                   str(tmp_path / "bundle"), "--weight", "5")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    learned = manifest["learned_from"]
    assert learned["corrections"] == 3 and learned["weight"] == 5 and learned["base_rows"] == sum(per_intent.values())
    assert learned["feedback_db"].endswith("fb.db") and len(learned["corrections_sha256"]) == 64
    retrained = triage.load(tmp_path / "bundle")
    before = [r.intent.label for r in t.triage_batch(messages)]
    after = [r.intent.label for r in retrained.triage_batch(messages)]
    assert before != ["complaint"] * 3 and after == ["complaint"] * 3
    assert [r.urgency.level for r in retrained.triage_batch(messages)] == ["high"] * 3


def test_feedback_report_cli_and_html(tmp_path):
    _exercise(tmp_path / "fb.db")
    html_path = tmp_path / "report.html"
    proc = run_cli("feedback", "report", "--db", str(tmp_path / "fb.db"), "--html", str(html_path))
    assert proc.returncode == 0, proc.stderr
    assert "25.0%" in proc.stdout and "by intent" in proc.stdout
    page = html_path.read_text("utf-8")
    assert page.count("<svg") == 4 and page.count('class="bar"') >= 8
    assert "Suggested knowledge-base updates" in page and "你们招不招兼职" in page
    data = json.loads(run_cli("feedback", "report", "--db", str(tmp_path / "fb.db"), "--json").stdout)
    assert data["total"] == 4 and data["acceptance_rate"] == 0.25
    html = render_html(build_report([]))
    assert "No data yet." in html
