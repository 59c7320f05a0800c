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

from retrieval.files import DataFileError
from retrieval.text import TextInputError
from tests.conftest import run_cli
from triage.batch import OUTPUT_COLUMNS, read_output, score_file, score_frame, ticket_text

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
    frame.loc[len(frame)] = ["T6", "2026-11-22T09:00:00+08:00", "My parcel is late, where is it? " * 800]
    out = score_frame(frame, default_triage, text_column="body", id_column="ticket_id", time_column="created_at")
    assert list(out.columns) == OUTPUT_COLUMNS and out["id"].tolist() == ["T1", "T2", "T3", "T4", "T5", "T6"]
    errors = dict(zip(out["id"], out["error"]))
    assert errors["T3"].startswith("empty") and pd.isna(errors["T6"])  # 25,600 characters: truncated, not refused
    assert out["truncated"].fillna("-").tolist() == [False, False, "-", False, False, True]
    ok = out[out["error"].isna()].set_index("id")
    assert ok.loc["T6", "intent"] == "delivery_problem"
    assert ok.loc["T1", "intent"] == "delivery_problem" and ok.loc["T5", "urgency"] == "critical"
    assert ok.loc["T4", "language"] == "zh-Hant" and "退款" in ok.loc["T4", "draft_zh"]
    assert ok.loc["T5", "due"].startswith("2026-11-22T01:00")  # one hour after 08:00 +08:00
    assert frame.shape == (6, 3)  # the input is not modified
    with pytest.raises(KeyError, match="no column 'text'"):
        score_frame(frame, default_triage)
    # the cap is the Triage's; another one here is an error, not silently ignored
    with pytest.raises(ValueError, match=r"max_chars=80 but this Triage truncates at 20000 characters; build it "
                                         r"with triage.load\(max_chars=80\)"):
        score_frame(frame, default_triage, text_column="body", max_chars=80)


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
    flags = out["truncated"].tolist()  # empty for the refused row
    assert pd.isna(flags[2]) and [f for n, f in enumerate(flags) if n != 2] == [False] * 4
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


def assert_same_scores(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal tables, but for the last printed digit of a probability: the encoder rounds a row's
    float32 sums differently with what it encoded before (docs/api.md), which a figure on the
    edge of rounding to 4 places can show."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    numbers = [c for c in a.columns if pd.api.types.is_float_dtype(a[c])]
    assert a.drop(columns=numbers).equals(b.drop(columns=numbers))
    pd.testing.assert_frame_equal(a[numbers], b[numbers], check_exact=False, rtol=0, atol=1.01e-4)


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
    assert_same_scores(read_output(output).drop(columns="due"), reference.drop(columns="due"))  # no times: due from now
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
    assert_same_scores(a, b)


def test_workers_give_the_same_result(tmp_path):
    source = _big_export(tmp_path / "export.csv", 60)
    options = dict(text_column="body", id_column="ticket_id", time_column="created_at", chunk_size=10)
    score_file(source, tmp_path / "one.csv", workers=1, **options)
    score_file(source, tmp_path / "two.csv", workers=2, **options)
    assert_same_scores(read_output(tmp_path / "one.csv"), read_output(tmp_path / "two.csv"))


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

    for column in ("id", "intent", "urgency", "sentiment", "kb_ids", "knowledge_gap", "draft_zh", "draft_en",
                   "truncated", "error"):
        assert plain(scored[column]) == plain(expected[column]), column


# ---------------------------------------------------------------------- bad input (issue 2, section 6)
def _nul_export(path: Path, filler: int = 0) -> Path:
    """Five tickets, the second with a NUL byte in its message; `filler` bytes of ordinary rows
    before it push the NUL past the first 8 KB."""
    rows = [b"id,body", b"1,where is my parcel"]
    rows += [b"p%d,hello there and just checking in" % n for n in range(filler // 34)]
    rows += [b"2,refund\x00 please", b"3,\x00\x00", b"4,I was charged twice for one order", b"5,thanks a lot"]
    path.write_bytes(b"\n".join(rows) + b"\n")
    return path


def test_a_nul_byte_in_a_row_is_read_as_a_space_and_the_rest_is_scored(tmp_path, default_triage):
    proc = run_cli("score", str(_nul_export(tmp_path / "nul.csv")), str(tmp_path / "out.csv"), "--text-column",
                   "body", "--id-column", "id", "--no-drafts", "--quiet")
    assert proc.returncode == 0, proc.stderr
    out = read_output(tmp_path / "out.csv").set_index("id")
    assert out.index.tolist() == ["1", "2", "3", "4", "5"]
    # cleaned as the Python API cleans control characters: the same result as the message with a space
    assert out.loc["2", "intent"] == default_triage.triage("refund please").intent.label == "refund"
    assert pd.isna(out.loc["2", "error"]) and out.loc["4", "intent"] == "payment"
    assert out.loc["3", "error"] == EMPTY_BODY  # NULs and nothing else: no message

    # the same byte past the first 8 KB gives the same row results, and so does JSONL
    late = score_file(_nul_export(tmp_path / "late.csv", filler=9000), tmp_path / "late.csv.jsonl",
                      text_column="body", id_column="id", drafts=False)
    assert (late.scored, late.failed) == (4 + 9000 // 34, 1)
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "late.csv.jsonl").read_text("utf-8").splitlines())}
    assert rows["2"]["intent"] == "refund" and rows["3"]["error"] == EMPTY_BODY
    lines = tmp_path / "nul.jsonl"
    lines.write_bytes(b'{"id": "J1", "body": "refund\x00 please"}\n{"id": "J2", "body": "where is my parcel"}\n')
    score_file(lines, tmp_path / "j.csv", text_column="body", id_column="id", drafts=False)
    assert read_output(tmp_path / "j.csv")["intent"].tolist() == ["refund", "delivery_problem"]


def test_a_nul_id_survives_an_excel_output(tmp_path):
    source = tmp_path / "ids.csv"
    source.write_bytes(b"id,body\nA\x01B,where is my parcel\nC,refund please\n")
    score_file(source, tmp_path / "out.xlsx", text_column="body", id_column="id", drafts=False)
    assert read_output(tmp_path / "out.xlsx")["id"].tolist() == ["A\ufffdB", "C"]  # Excel cannot hold \x01


def test_training_files_read_a_nul_as_a_space_and_name_the_line_of_an_empty_one(tmp_path):
    from triage.data import read_labeled

    path = tmp_path / "train.csv"
    path.write_bytes(b"text,label\nrefund\x00 please,refund\nwhere is my parcel,delivery_problem\n")
    data = read_labeled(path, "text", "label")
    assert data.texts == ["refund  please", "where is my parcel"] and data.lines == [2, 3]
    path.write_bytes(b"text,label\nwhere is my parcel,delivery_problem\n\x00\x00,refund\n")
    with pytest.raises(DataFileError, match=r"train\.csv, line 3, field 'text': text '  ' is not usable: message "
                                            r"is whitespace or control characters only"):
        read_labeled(path, "text", "label")


def test_only_really_binary_files_are_refused_as_binary(tmp_path):
    from retrieval.files import binary_problem
    from triage.data import read_labeled

    workbook = tmp_path / "book.xlsx"
    _frame().to_excel(workbook, index=False)
    utf16 = "ticket_id,body\nT1,我要退款\nT2,where is my parcel\n"
    cases = {
        "zip.csv": (workbook.read_bytes(), r"is a ZIP archive \(an Excel \.xlsx workbook, for example\), not text; "
                                           r"export the data as UTF-8 CSV, TSV or JSONL"),
        "utf16.csv": (utf16.encode("utf-16"), "is UTF-16 text"),
        "utf16le.csv": (utf16.encode("utf-16-le"), "looks like UTF-16 text without a byte-order mark"),
        "random.csv": (bytes(range(256)) * 40, r"looks binary \(10% of its first 8,192 bytes are NUL or other "
                                               r"control bytes\)"),
        "nuls.jsonl": (b"\x00" * 5000, r"looks binary \(100% of its first 5,000 bytes"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DataFileError, match=message):
            score_file(path, tmp_path / "out.csv", text_column="body")
        with pytest.raises(DataFileError, match=message):
            read_labeled(path, "body", "label")
    assert binary_problem(b"id,body\n1,\x00\n") is None  # one NUL in a small file: a row to clean, not binary
    assert binary_problem(b"\x00\x01\x02PK") is not None


LONG = "My parcel is late, where is it? I have waited two weeks. " * 440  # 25,080 characters


def test_long_texts_are_truncated_and_flagged_and_only_absurd_fields_refused(tmp_path):
    huge = "x" * 1_000_001
    source = tmp_path / "long.csv"
    source.write_text(f'id,body\n1,"{LONG}"\n2,"{LONG * 8}"\n3,"{huge}"\n4,"refund\nplease"\n', "utf-8")
    proc = run_cli("score", str(source), str(tmp_path / "out.csv"), "--text-column", "body", "--id-column", "id",
                   "--no-drafts", "--quiet")
    assert proc.returncode == 0, proc.stderr
    out = read_output(tmp_path / "out.csv").set_index("id")
    assert out.index.tolist() == ["1", "2", "3", "4"]  # one output row per input row, the huge one too
    # 25,080 and 200,640 characters (over the csv module's default field limit): truncated, scored, flagged
    assert out.loc["1", "intent"] == out.loc["2", "intent"] == "delivery_problem"
    assert pd.isna(out.loc["1", "error"]) and pd.isna(out.loc["2", "error"])
    assert out["truncated"].fillna("-").tolist() == [True, True, "-", False]
    assert out.loc["3", "error"] == (
        "oversized: 'body' has 1,000,001 characters (line 4); fields over 1,000,000 characters are not read (a "
        "message over the length limit, 20,000 characters by default, is truncated and flagged, not refused)")
    assert out.loc["4", "intent"] == "refund"
    assert "oversized" in proc.stdout and "error" not in proc.stderr

    # the limit is the Triage's max_chars, which score_file sets; JSONL and Parquet are read the same way
    lines = tmp_path / "long.jsonl"
    lines.write_text("".join(json.dumps({"body": b}) + "\n" for b in (LONG[:60], LONG[:30], huge)), "utf-8")
    summary = score_file(lines, tmp_path / "short.parquet", text_column="body", drafts=False, max_chars=40)
    scored = read_output(tmp_path / "short.parquet")
    assert (summary.scored, dict(summary.reasons)) == (2, {"oversized": 1})
    assert scored["truncated"].tolist()[:2] == [True, False] and scored["error"][2].startswith(
        "oversized: 'body' has 1,000,001 characters (line 3)")
    pd.DataFrame({"body": [LONG, huge]}).to_parquet(tmp_path / "p.parquet")
    score_file(tmp_path / "p.parquet", tmp_path / "p.csv", text_column="body", drafts=False)
    errors = read_output(tmp_path / "p.csv")["error"]
    assert pd.isna(errors[0]) and errors[1].startswith("oversized: 'body' has 1,000,001 characters (row 2)")


def test_a_journal_of_an_older_version_is_not_resumed(tmp_path):
    source = tmp_path / "r.csv"
    source.write_text("id,body\n1,where is my parcel\n", "utf-8")
    output = tmp_path / "out.csv"
    journal = output.with_name(output.name + ".partial.jsonl")
    with pytest.raises(_Killed):
        score_file(source, output, text_column="body", drafts=False, progress=_stop)
    first, *rest = journal.read_text("utf-8").splitlines(keepends=True)
    fingerprint = json.loads(first)
    assert fingerprint["journal"]["version"] == 2 and fingerprint["journal"]["settings"]["max_chars"] == 20_000
    del fingerprint["journal"]["version"]  # as version 1 wrote it: rows without the truncated column
    journal.write_text(json.dumps(fingerprint) + "\n" + "".join(rest), "utf-8")
    with pytest.raises(ValueError, match="written by another version of kefu-triage .*rerun without --resume"):
        score_file(source, output, text_column="body", drafts=False, resume=True)


@pytest.mark.parametrize("subject, body, text", [
    ("Refund", "I want my money back", "Refund\nI want my money back"),
    ("help", "   \n  ", "help"),                         # a subject alone is a message
    (None, "where is my parcel", "where is my parcel"),  # so is a body alone
    ("Re: 订单问题", "", "订单问题"),                     # reply prefixes are not the customer's words
    ("RE[2]: Fwd: AW: 回复：退款", None, "退款"),
    ("Re:", "", ""),                                     # nothing but a prefix: no message
    ("回复：", "  ", ""),
    ("Fwd: Re:", "where is my parcel", "where is my parcel"),
    ("Refund for order 123", "Refund for order 123, it never came", "Refund for order 123, it never came"),
    ("\u200b", "\u200b \u00a0", ""),                     # invisible and spaces only
    ("Refund", float("nan"), "Refund"),                  # a missing cell
    ("Refund:", "", "Refund:"),                          # a colon does not make a word a prefix
    (b"refund", None, "refund"),
])
def test_ticket_text_rule(subject, body, text):
    assert ticket_text(subject, body) == text


def test_ticket_text_refuses_values_that_are_not_text():
    with pytest.raises(TextInputError, match=r"the body is not text \(got int\)"):
        ticket_text("Order", 12345)
    with pytest.raises(TextInputError, match=r"the subject is not text \(got list\)"):
        ticket_text(["a"], "refund please")


def test_score_joins_subject_and_body_by_the_ticket_text_rule(tmp_path):
    source = tmp_path / "mail.csv"
    source.write_text("id,subject,body\n1,Re: 退款什么时候到账,\n2,Re:,\n3,RE: Fwd:,   \n4,,where is my parcel\n"
                      "5,I was charged twice,\n", "utf-8")
    summary = score_file(source, tmp_path / "out.csv", subject_column="subject", body_column="body", id_column="id",
                         drafts=False)
    out = read_output(tmp_path / "out.csv").set_index("id")
    assert (summary.scored, summary.failed) == (3, 2)
    assert out.loc["1", "intent"] == "refund" and out.loc["5", "intent"] == "payment"
    empty = ("empty: no message text in 'subject' and 'body' (blank, or only spaces, invisible or control "
             "characters, or a reply prefix such as 'Re:'); write the message there or drop the row")
    assert out.loc["2", "error"] == out.loc["3", "error"] == empty


EMPTY_BODY = ("empty: no message text in 'body' (blank, or only spaces, invisible or control characters); write "
              "the message there or drop the row")


def test_every_kind_of_empty_row_is_empty_with_the_same_advice(tmp_path, default_triage):
    texts = ["", "   ", "\u200b", "\u200b \u200b\ufeff", "\t\u3000\n", "\x01\x02", "\u2028"]
    frame = pd.DataFrame({"id": range(len(texts) + 1), "body": [*texts, "refund please"]})
    out = score_frame(frame, default_triage, text_column="body", id_column="id", drafts=False)
    assert out["error"][: len(texts)].tolist() == [EMPTY_BODY] * len(texts)
    assert pd.isna(out["error"].iloc[-1])
    source = tmp_path / "blank.csv"
    source.write_text("id,body\n1,   \n2,\u200b\n3,refund please\n", "utf-8")
    summary = score_file(source, tmp_path / "out.jsonl", text_column="body", id_column="id", drafts=False)
    assert dict(summary.reasons) == {"empty": 2}


def test_txt_files_are_not_guessed_and_a_wrong_delimiter_is_named(tmp_path):
    from triage.data import read_labeled

    commas = tmp_path / "data.txt"
    commas.write_text("body,intent\nwhere is my parcel,delivery_problem\n", "utf-8")
    tabs = tmp_path / "tabs.txt"
    tabs.write_text("body\tintent\nwhere is my parcel\tdelivery_problem\n", "utf-8")
    rename = r"a \.txt file may be comma- or tab-separated, so it is not read; rename it to \.csv \(commas\) or " \
             r"\.tsv \(tabs\)"
    with pytest.raises(DataFileError, match=rename + "; its first line has commas, so .csv"):
        read_labeled(commas, "body", "intent")
    with pytest.raises(DataFileError, match=rename + "; its first line has tabs, so .tsv"):
        score_file(tabs, tmp_path / "out.csv", text_column="body")
    good = tmp_path / "good.csv"
    good.write_text("body\nwhere is my parcel\n", "utf-8")
    with pytest.raises(DataFileError, match=rename + "$"):  # an output has no first line to tell by
        score_file(good, tmp_path / "out.txt", text_column="body")
    (tmp_path / "x.xml").write_text("<a/>", "utf-8")
    with pytest.raises(DataFileError, match=r"unsupported file type '\.xml'; use \.csv, \.tsv, \.jsonl, \.ndjson$"):
        read_labeled(tmp_path / "x.xml", "body", "intent")

    # comma-separated content under .tsv, tab-separated under .csv: the header shows it
    wrong_tsv = commas.rename(tmp_path / "data.tsv")
    message = (r"data\.tsv, line 1: the header is one column, 'body,intent', holding commas: the delimiter looks "
               r"wrong \(TSV fields are separated by tabs\); if its fields are separated by commas, rename it to \.csv")
    with pytest.raises(DataFileError, match=message):
        read_labeled(wrong_tsv, "body", "intent")
    with pytest.raises(DataFileError, match=message):
        score_file(wrong_tsv, tmp_path / "out.csv", text_column="body")
    proc = run_cli("train", "--data", str(tabs.rename(tmp_path / "tabs.csv")), "--text-column", "body",
                   "--label-column", "intent", "--encoder", "none", "--out", str(tmp_path / "bundle"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "tabs.csv, line 1: the header is one column, 'body\\tintent', holding tabs" in proc.stderr
    assert "rename it to .tsv" in proc.stderr
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text("body;intent\nwhere is my parcel;delivery_problem\n", "utf-8")
    with pytest.raises(DataFileError, match=r"holding semicolons.*save it with commas \(\.csv\) or tabs \(\.tsv\)"):
        score_file(semicolons, tmp_path / "out.csv", text_column="body")
