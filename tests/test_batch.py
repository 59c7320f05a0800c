"""Batch scoring: the pure function, every format in and out, bad rows, resume after a kill,
the process pool, the HTML report in a real browser, and Spark local mode."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_cli
from triage.batch import OUTPUT_COLUMNS, read_output, score_file, score_frame

ROOT = Path(__file__).resolve().parent.parent
TICKETS = [
    ("T1", "2026-11-20T09:00:00+08:00", "我的快递三天了还没到，单号SF1403928475612"),
    ("T2", "2026-11-20T10:30:00+08:00", "I was charged twice for order 112-3344556-7788990!"),
    ("T3", "2026-11-21T11:00:00+08:00", ""),
    ("T4", "2026-11-21T12:00:00+08:00", "請問退款到信用卡要多久？"),
    ("T5", "2026-11-22T08:00:00+08:00", "充电宝鼓包冒烟了，差点着火！"),
]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(TICKETS, columns=["ticket_id", "created_at", "body"])


def test_score_frame_is_a_pure_table_function(default_triage):
    frame = _frame()
    frame.loc[len(frame)] = ["T6", "2026-11-22T09:00:00+08:00", "x" * 100]
    out = score_frame(frame, default_triage, text_column="body", id_column="ticket_id", time_column="created_at",
                      max_chars=80)
    assert list(out.columns) == OUTPUT_COLUMNS and out["id"].tolist() == ["T1", "T2", "T3", "T4", "T5", "T6"]
    errors = dict(zip(out["id"], out["error"]))
    assert errors["T3"].startswith("empty") and errors["T6"].startswith("oversized: 100 characters")
    ok = out[out["error"].isna()].set_index("id")
    assert ok.loc["T1", "intent"] == "delivery_problem" and ok.loc["T5", "urgency"] == "critical"
    assert ok.loc["T4", "language"] == "zh-Hant" and "退款" in ok.loc["T4", "draft_zh"]
    assert ok.loc["T5", "due"].startswith("2026-11-22T01:00")  # one hour after 08:00 +08:00
    assert frame.shape == (6, 3)  # the input is not modified
    with pytest.raises(KeyError, match="no column 'text'"):
        score_frame(frame, default_triage)


def _write(frame: pd.DataFrame, path: Path) -> Path:
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_excel(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet", ".xlsx"])
def test_every_format_in_and_out(tmp_path, suffix):
    source = _write(_frame(), tmp_path / f"tickets{suffix}")
    output = tmp_path / f"scored{suffix}"
    summary = score_file(source, output, text_column="body", id_column="ticket_id", time_column="created_at",
                         drafts=False, chunk_size=2)
    assert (summary.scored, summary.failed, dict(summary.reasons)) == (4, 1, {"empty": 1})
    out = read_output(output)
    assert out["id"].astype(str).tolist() == ["T1", "T2", "T3", "T4", "T5"]
    assert list(out.columns) == OUTPUT_COLUMNS
    assert out.set_index(out["id"].astype(str)).loc["T2", "intent"] == "payment"
    assert not output.with_name(output.name + ".partial.jsonl").exists()


def test_bad_rows_are_reported_and_the_rest_scored(tmp_path):
    source = tmp_path / "export.csv"
    source.write_bytes("id,body\n1,退款什么时候到账\n".encode() + b"3,\xff\xfe broken bytes\n"
                       + "4,too,many,fields\n5,   \n6,How can I update where my parcel is delivered?\n".encode())
    proc = run_cli("score", str(source), str(tmp_path / "out.jsonl"), "--text-column", "body", "--id-column", "id",
                   "--no-drafts", "--quiet")
    assert proc.returncode == 0, proc.stderr
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "out.jsonl").read_text("utf-8").splitlines())}
    assert set(rows) == {"1", "3", "4", "5", "6"}
    assert rows["3"]["error"].startswith("undecodable") and rows["4"]["error"].startswith("malformed")
    assert rows["5"]["error"].startswith("empty") and rows["1"]["error"] is None and rows["6"]["intent"]
    assert "undecodable" in proc.stdout and "malformed" in proc.stdout

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"body": "退款多久"}\n{not json\n[1, 2]\n{"body": "hello, where is my parcel"}\n', "utf-8")
    score_file(broken, tmp_path / "b.csv", text_column="body", drafts=False)
    errors = read_output(tmp_path / "b.csv").set_index("id")["error"]
    assert errors.isna().sum() == 2 and errors.loc["2"].startswith("malformed: line 2")

    everything_bad = tmp_path / "bad.csv"
    everything_bad.write_text("id,body\n1,\n2,  \n", "utf-8")
    proc = run_cli("score", str(everything_bad), str(tmp_path / "x.csv"), "--text-column", "body", "--quiet")
    assert proc.returncode == 1
    proc = run_cli("score", str(tmp_path / "missing.csv"), str(tmp_path / "y.csv"), "--text-column", "body")
    assert proc.returncode == 1 and "file not found" in proc.stderr


class _Killed(Exception):
    """Stands in for a kill between two chunks."""


def _stop(_rows: int) -> None:
    raise _Killed


def test_rows_are_kept_by_position_whatever_their_ids(tmp_path):
    source = tmp_path / "dup.csv"
    source.write_text("ticket_id,body\nA,tracking number pls\nB,我要退款\nA,hello duplicate\n,no id one\n"
                      ",no id two\nC,where is my parcel\n", "utf-8")
    options = dict(text_column="body", id_column="ticket_id", drafts=False, chunk_size=2)
    summary = score_file(source, tmp_path / "all.csv", **options)
    reference = read_output(tmp_path / "all.csv")
    assert summary.scored == len(reference) == 6 and reference["error"].isna().all()
    assert reference["id"].fillna("").tolist() == ["A", "B", "A", "", "", "C"]  # duplicates and blanks as given

    # killed after the first chunk, mid-line: the resume skips rows by position and cuts the torn line
    output = tmp_path / "resumed.csv"
    journal = output.with_name(output.name + ".partial.jsonl")
    with pytest.raises(_Killed):
        score_file(source, output, progress=_stop, **options)
    with open(journal, "a", encoding="utf-8") as fh:
        fh.write('{"id": "A", "lang')
    with pytest.raises(ValueError, match=r"other settings \(drafts False -> True\)"):
        score_file(source, output, resume=True, **{**options, "drafts": True})
    resumed = score_file(source, output, resume=True, **options)
    assert (resumed.skipped, resumed.scored) == (2, 4)
    assert read_output(output).drop(columns="due").equals(reference.drop(columns="due"))  # no times: due from now
    with pytest.raises(_Killed):
        score_file(source, output, progress=_stop, **options)
    source.write_text(source.read_text("utf-8").replace("B,", "D,"), "utf-8")
    with pytest.raises(ValueError, match="from a run on other input"):
        score_file(source, output, resume=True, **options)

    lines = ['{"ticket_id": 1, "body": "where is my parcel"}', '{"ticket_id": "1", "body": "我要退款"}',
             "{not json", '{"body": "hello, no id"}', '{"ticket_id": 2, "body": "hello"}']
    (tmp_path / "ids.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    score_file(tmp_path / "ids.jsonl", tmp_path / "ids.csv", **options)
    out = read_output(tmp_path / "ids.csv")
    assert out["id"].fillna("").tolist() == ["1", "1", "", "", "2"]  # 1 and "1" are two rows; no line numbers
    assert out["error"][2].startswith("malformed: line 3 is not a JSON object") and out["error"].notna().sum() == 1


def test_a_chunk_of_undecodable_rows_keeps_the_ids_it_can(tmp_path):
    gbk = "我要退款".encode("gbk")
    source = tmp_path / "gbk.csv"
    source.write_bytes(b"ticket_id,body\nA,hello there\nB,where is my parcel\nC," + gbk + b"\n" + gbk
                       + b",refund please\nE,where is my parcel\n")
    summary = score_file(source, tmp_path / "out.csv", text_column="body", id_column="ticket_id", drafts=False,
                         chunk_size=2)  # the second chunk holds only undecodable rows
    out = read_output(tmp_path / "out.csv")
    assert (summary.scored, summary.failed) == (3, 2)
    assert out["id"].fillna("").tolist() == ["A", "B", "C", "", "E"]
    assert out["error"][2] == "undecodable: bytes that are not UTF-8 in 'body'"
    assert out["error"][3] == "undecodable: bytes that are not UTF-8 in 'ticket_id'"

    lines = tmp_path / "gbk.jsonl"
    lines.write_bytes(b'{"id": "J1", "body": "' + gbk + b'"}\n{"id": "J2", "body": "where is my parcel"}\n')
    score_file(lines, tmp_path / "out.jsonl", text_column="body", id_column="id", drafts=False, chunk_size=1)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text("utf-8").splitlines()]
    assert [(r["id"], r["error"]) for r in rows] == [("J1", "undecodable: bytes that are not UTF-8 in 'body'"),
                                                      ("J2", None)]


def test_an_output_that_would_overwrite_the_input_is_refused(tmp_path):
    source = tmp_path / "r.csv"
    source.write_text("id,body\n1,where is my parcel\n", "utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to(source)
    for output in (source, tmp_path / "sub" / ".." / "r.csv", tmp_path / "link.csv"):
        with pytest.raises(ValueError, match="would overwrite the input"):
            score_file(source, output, text_column="body")
    journal_named = tmp_path / "x.csv.partial.jsonl"  # the journal of x.csv
    journal_named.write_text('{"body": "where is my parcel"}\n', "utf-8")
    with pytest.raises(ValueError, match=r"x\.csv\.partial\.jsonl would overwrite the input"):
        score_file(journal_named, tmp_path / "x.csv", text_column="body")
    proc = run_cli("score", str(source), str(source), "--text-column", "body", "--quiet")
    assert proc.returncode == 1 and "would overwrite the input" in proc.stderr
    proc = run_cli("score", str(source), str(tmp_path / "out.csv"), "--text-column", "body", "--report", str(source))
    assert proc.returncode == 1 and "--report" in proc.stderr
    assert source.read_text("utf-8") == "id,body\n1,where is my parcel\n"
    assert journal_named.read_text("utf-8") == '{"body": "where is my parcel"}\n'
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "out.csv").exists()


def test_each_arrival_time_is_parsed_on_its_own(default_triage):
    times = ["2024-11-04 10:00:00", "2024-11-04T10:00:00+08:00", "2024/11/04 10:00", "1730714400", "not a date", ""]
    frame = pd.DataFrame({"ticket_id": list("ABCDEF"), "created_at": times, "body": ["where is my parcel"] * 6})
    out = score_frame(frame, default_triage, text_column="body", id_column="ticket_id", time_column="created_at",
                      drafts=False).set_index("id")
    # one day for a normal message; naive times are UTC, and every due time is written in UTC
    assert out["due"][list("ABCD")].tolist() == ["2024-11-05T10:00:00+00:00", "2024-11-05T02:00:00+00:00",
                                                 "2024-11-05T10:00:00+00:00", "2024-11-05T10:00:00+00:00"]
    assert out["error"]["E"] == ("invalid: unparseable time 'not a date' (use ISO 8601 such as "
                                 "2024-11-04T10:00:00+08:00, or epoch seconds)") and pd.isna(out["due"]["E"])
    assert pd.isna(out["error"]["F"]) and out["due"]["F"] > "2025"  # no time given: counts from now


def test_text_that_is_not_a_string_is_refused(default_triage):
    frame = pd.DataFrame([{"id": 5, "text": ["a"]}, {"id": 6, "text": 12345}, {"id": 7, "text": {"a": 1}},
                          {"id": 8, "text": "12345"}], dtype=object)
    out = score_frame(frame, default_triage, id_column="id", drafts=False)
    assert out["error"][:3].tolist() == [f"invalid: text is not a string (got {t})" for t in ("list", "int", "dict")]
    assert pd.isna(out["error"][3]) and out["intent"][3]  # a number written as text is text


def _big_export(path: Path, n: int) -> Path:
    rows = [r for _, r in zip(range(n), map(json.loads, (ROOT / "data" / "eval" / "heldout.jsonl")
                                             .read_text("utf-8").splitlines()))]
    frame = pd.DataFrame({"ticket_id": [f"K{i:05d}" for i in range(len(rows))], "body": [r["text"] for r in rows],
                          "created_at": [f"2026-11-{1 + i % 20:02d}T09:00:00Z" for i in range(len(rows))]})
    frame.to_csv(path, index=False)
    return path


def test_resume_after_a_kill_loses_and_duplicates_nothing(tmp_path):
    source = _big_export(tmp_path / "export.csv", 400)
    args = [str(source), "--text-column", "body", "--id-column", "ticket_id", "--time-column", "created_at",
            "--chunk-size", "20", "--quiet"]
    reference = run_cli("score", str(source), str(tmp_path / "reference.csv"), *args[1:])
    assert reference.returncode == 0, reference.stderr
    output = tmp_path / "resumed.csv"
    journal = output.with_name(output.name + ".partial.jsonl")
    exe = Path(sys.executable).with_name("triage")
    proc = subprocess.Popen([str(exe), "score", str(source), str(output), *args[1:]], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (journal.exists() and len(journal.read_bytes().splitlines()) >= 60):
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not output.exists()  # nothing half-written under the real name
    resumed = run_cli("score", str(source), str(output), *args[1:], "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "already scored" in resumed.stdout
    a, b = read_output(tmp_path / "reference.csv"), read_output(output)
    assert len(b) == 400 and b["id"].is_unique
    assert a.equals(b)


def test_workers_give_the_same_result(tmp_path):
    source = _big_export(tmp_path / "export.csv", 60)
    options = dict(text_column="body", id_column="ticket_id", time_column="created_at", chunk_size=10)
    score_file(source, tmp_path / "one.csv", workers=1, **options)
    score_file(source, tmp_path / "two.csv", workers=2, **options)
    assert read_output(tmp_path / "one.csv").equals(read_output(tmp_path / "two.csv"))


def test_report_renders_in_a_real_browser(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("KEFU_REQUIRE_CHROMIUM"):
            pytest.fail("chromium not found (Debian package chromium); CI requires it")
        pytest.skip("chromium not installed")
    from PIL import Image

    source = _big_export(tmp_path / "export.csv", 120)
    report = tmp_path / "report.html"
    proc = run_cli("score", str(source), str(tmp_path / "out.parquet"), "--text-column", "body", "--id-column",
                   "ticket_id", "--time-column", "created_at", "--report", str(report), "--quiet")
    assert proc.returncode == 0, proc.stderr
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", report.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert dom.count("<svg") >= 6 and "Volume over time" in dom and "Knowledge gaps" in dom
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,2400", report.as_uri()],
                   capture_output=True, timeout=120)
    image = Image.open(shot).convert("RGB")
    bar_blue = dict((color, n) for n, color in image.getcolors(maxcolors=1 << 24)).get((59, 130, 246), 0)
    assert image.size == (1200, 2400) and bar_blue > 5000  # the bars were painted
    if os.environ.get("KEFU_SAVE_SCREENSHOT"):
        shutil.copy(shot, ROOT / "docs" / "report-screenshot.png")


def test_spark_local_mode_matches_score_frame(default_triage, tmp_path):
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime")
    from pyspark.sql import SparkSession

    from triage.spark import score

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[2]").appName("kefu-test")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .config("spark.ui.enabled", "false").getOrCreate())
    try:
        frame = _frame()
        scored = score(spark.createDataFrame(frame), text_col="body", id_col="ticket_id", time_col="created_at",
                       drafts=True).toPandas().sort_values("id").reset_index(drop=True)
    finally:
        spark.stop()
    expected = score_frame(frame, default_triage, text_column="body", id_column="ticket_id",
                           time_column="created_at").sort_values("id").reset_index(drop=True)
    def plain(series):  # Spark gives None where pandas gives NaN for a refused row
        return [None if pd.isna(v) else v for v in series.astype(object)]

    for column in ("id", "intent", "urgency", "sentiment", "kb_ids", "knowledge_gap", "draft_zh", "draft_en", "error"):
        assert plain(scored[column]) == plain(expected[column]), column
