"""Scoring ticket exports: one pure function for tables, streaming readers and writers, resume.

:func:`score_frame` is the only place a table is scored; the ``triage score`` command, its
process pool and the Spark engine all call it. Files stream in chunks through a journal
(``<output>.partial.jsonl``, fsynced per chunk), so memory stays flat, a killed run resumes where
it stopped, and the output file appears only when complete (written beside it, then renamed).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from retrieval.files import DataFileError

from .pipeline import Triage
from .results import TriageFailure

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
           ".xlsx": "excel"}
OUTPUT_COLUMNS = [
    "id", "language", "intent", "category", "intent_confidence", "needs_review", "urgency", "urgency_reasons",
    "due", "sentiment", "sentiment_score", "kb_ids", "kb_score", "knowledge_gap", "draft_zh", "draft_en",
    "draft_needs_human", "error",
]
DEFAULT_MAX_CHARS = 20_000
_ROW = "_row"  # source row number, carried through the readers
_UNDECODABLE = "undecodable: the row has bytes that are not UTF-8"


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)
_EXTRA = ("_text", "_time")  # journal-only columns the report needs (message preview, arrival time)


def _require(module: str):
    """Import an optional dependency or say which extra provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{module} is needed for Parquet and Excel files: pip install 'kefu-triage[batch]'") from None


def file_format(path: str | os.PathLike) -> str:
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise DataFileError(path, f"unsupported file type {Path(path).suffix!r}; use {', '.join(FORMATS)}")
    return fmt


# ---------------------------------------------------------------------- scoring
def _text_of(row, text_column, subject_column, body_column) -> tuple[str | None, str | None]:
    """The message text of a row, or an error saying why there is none."""
    def cell(name):
        value = row.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return value if isinstance(value, (str, bytes)) else str(value)

    if subject_column or body_column:
        parts = [cell(c) for c in (subject_column, body_column) if c]
        parts = [p.decode("utf-8", "surrogateescape") if isinstance(p, bytes) else p for p in parts if p is not None]
        text = "\n".join(p for p in parts if p.strip())
    else:
        text = cell(text_column)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "surrogateescape")
    if text is None or not str(text).strip():
        return None, "empty: no text in this row"
    if _has_surrogates(text):
        return None, _UNDECODABLE
    return text, None


def score_frame(frame, triage: Triage, *, text_column: str = "text", subject_column: str | None = None,
                body_column: str | None = None, id_column: str | None = None, time_column: str | None = None,
                drafts: bool = True, max_chars: int = DEFAULT_MAX_CHARS):
    """Score every row of a pandas DataFrame.

    Parameters
    ----------
    frame : pandas.DataFrame
        One ticket per row.
    text_column : str
        The message column; or give `subject_column` and/or `body_column`, joined by a newline.
    id_column : str, optional
        Ticket ids (default: the frame's index).
    time_column : str, optional
        Arrival times; the base of the due times (unparseable values count as now).
    drafts : bool
        Draft replies in both languages (False skips them, about twice as fast).
    max_chars : int
        Longer texts are refused as oversized.

    Returns
    -------
    pandas.DataFrame
        :data:`OUTPUT_COLUMNS`, one row per input row in order. A row that cannot be scored has
        only ``id`` and ``error`` (``"<reason>: <detail>"``) filled.
    """
    import pandas as pd

    for name in (text_column if not (subject_column or body_column) else None, subject_column, body_column,
                 id_column, time_column):
        if name and name not in frame.columns:
            raise KeyError(f"no column {name!r}; columns are {list(frame.columns)}")
    records = frame.to_dict("records")
    ids = frame[id_column].tolist() if id_column else frame.index.tolist()
    times = [None] * len(records)
    if time_column:
        parsed = pd.to_datetime(frame[time_column], errors="coerce", utc=True)
        times = [None if pd.isna(t) else t.to_pydatetime() for t in parsed]
    out = [{"id": "" if i is None else str(i), "error": None} for i in ids]
    texts, positions = [], []
    for n, record in enumerate(records):
        text, error = _text_of(record, text_column, subject_column, body_column)
        if error is None and len(text) > max_chars:
            error = f"oversized: {len(text)} characters (the limit is {max_chars})"
        if error:
            out[n]["error"] = error
        else:
            texts.append(text)
            positions.append(n)
    results = triage.assist_batch(texts, received_at=[times[n] for n in positions], draft=drafts)
    for n, result in zip(positions, results):
        if isinstance(result, TriageFailure):
            out[n]["error"] = f"invalid: {result.error}"
            continue
        r, answers = result.triage, result.answers
        top = answers.hits[0] if answers.hits else None
        out[n].update(
            language=r.language, intent=r.intent.label, category=r.intent.category,
            intent_confidence=round(r.intent.confidence, 4), needs_review=r.intent.abstained,
            urgency=r.urgency.level, urgency_reasons="; ".join(f"{x.signal}: {x.evidence}" for x in r.urgency.reasons),
            due=r.urgency.due.isoformat(), sentiment=r.sentiment.label, sentiment_score=round(r.sentiment.score, 4),
            kb_ids="|".join(h.id for h in answers.hits), kb_score=round(top.score, 4) if top else None,
            knowledge_gap=answers.knowledge_gap,
            draft_zh=result.draft.zh if result.draft else None, draft_en=result.draft.en if result.draft else None,
            draft_needs_human=result.draft.needs_human if result.draft else None)
    return pd.DataFrame(out, columns=OUTPUT_COLUMNS)


# ---------------------------------------------------------------------- reading
def count_rows(path: str | os.PathLike) -> int | None:
    """Data rows in the file, cheaply (None when unknown)."""
    fmt = file_format(path)
    if not Path(path).is_file():
        raise DataFileError(path, "file not found")
    if fmt == "parquet":
        return _require("pyarrow.parquet").ParquetFile(path).metadata.num_rows
    if fmt == "excel":
        return None
    if fmt == "jsonl":
        with open(path, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        try:  # cells may hold newlines, so rows are counted by the CSV reader, not by lines
            return max(sum(1 for _ in csv.reader(fh, delimiter="," if fmt == "csv" else "\t")) - 1, 0)
        except csv.Error:
            return None


def iter_chunks(path: str | os.PathLike, chunk_size: int = 500) -> Iterator:
    """Yield pandas DataFrames of at most `chunk_size` rows, with a ``_row`` column of source row
    numbers. Malformed rows are kept (with an ``_error`` column) so they are reported, not lost.

    Raises
    ------
    DataFileError
        For a missing, binary or unreadable file, or one without a header.
    """
    import pandas as pd

    path = Path(path)
    fmt = file_format(path)
    if not path.is_file():
        raise DataFileError(path, "file not found")
    if fmt in ("csv", "tsv", "jsonl"):
        with open(path, "rb") as fh:
            if b"\x00" in fh.read(8192):
                raise DataFileError(path, "looks binary (contains NUL bytes); expected UTF-8 text")
    if fmt == "parquet":
        pq = _require("pyarrow.parquet")
        try:
            parquet = pq.ParquetFile(path)
        except Exception as exc:
            raise DataFileError(path, f"is not a readable Parquet file ({exc})") from None
        start = 0
        for batch in parquet.iter_batches(batch_size=chunk_size):
            frame = batch.to_pandas()
            frame[_ROW] = range(start + 1, start + 1 + len(frame))
            start += len(frame)
            yield frame
        return
    if fmt == "excel":
        openpyxl = _require("openpyxl")
        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:
            raise DataFileError(path, f"is not a readable Excel file ({exc})") from None
        rows = book.active.iter_rows(values_only=True)
        header = next(rows, None)
        if not header:
            raise DataFileError(path, "is empty: no header row", line=1)
        header = [str(h) if h is not None else f"column_{i + 1}" for i, h in enumerate(header)]
        chunk = []
        for number, values in enumerate(rows, start=2):
            chunk.append({**dict(zip(header, values)), _ROW: number})
            if len(chunk) == chunk_size:
                yield pd.DataFrame(chunk)
                chunk = []
        if chunk:
            yield pd.DataFrame(chunk)
        book.close()
        return
    # Text formats: undecodable bytes become lone surrogates, so one bad row is reported, not fatal.
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        if fmt == "jsonl":
            chunk = []
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                if _has_surrogates(line):
                    chunk.append({_ROW: number, "_error": _UNDECODABLE})
                    continue
                try:
                    record = json.loads(line)
                    if not isinstance(record, dict):
                        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
                    chunk.append({**record, _ROW: number})
                except (json.JSONDecodeError, ValueError) as exc:
                    chunk.append({_ROW: number, "_error": f"malformed: line {number} is not a JSON object ({exc})"})
                if len(chunk) == chunk_size:
                    yield pd.DataFrame(chunk)
                    chunk = []
            if chunk:
                yield pd.DataFrame(chunk)
            return
        reader = csv.reader(fh, delimiter="," if fmt == "csv" else "\t")
        try:
            header = next(reader)
        except StopIteration:
            raise DataFileError(path, "is empty: no header row", line=1) from None
        except csv.Error as exc:
            raise DataFileError(path, f"malformed header ({exc})", line=1) from None
        chunk = []
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                chunk.append({_ROW: reader.line_num, "_error": f"malformed: {exc}"})
                continue
            if not any(v.strip() for v in values):
                continue
            if any(_has_surrogates(v) for v in values):
                chunk.append({_ROW: reader.line_num, "_error": _UNDECODABLE})
            elif len(values) != len(header):
                chunk.append({_ROW: reader.line_num, "_error": f"malformed: {len(values)} fields, the header has "
                                                               f"{len(header)}"})
            else:
                chunk.append({**dict(zip(header, values)), _ROW: reader.line_num})
            if len(chunk) == chunk_size:
                yield pd.DataFrame(chunk)
                chunk = []
        if chunk:
            yield pd.DataFrame(chunk)


def score_chunk(frame, triage: Triage, *, id_column: str | None, **options):
    """:func:`score_frame` on a chunk from :func:`iter_chunks`: rows the reader marked malformed
    keep their error, and ids default to the source row numbers."""
    import pandas as pd

    frame = frame.reset_index(drop=True)
    bad = frame["_error"].notna() if "_error" in frame.columns else pd.Series(False, index=frame.index)
    if id_column:
        if id_column not in frame.columns:
            raise KeyError(f"no column {id_column!r}; columns are {[c for c in frame.columns if not c.startswith('_')]}")
        ids = frame[id_column].where(frame[id_column].notna(), frame[_ROW]).astype(str)
    else:
        ids = frame[_ROW].astype(str)
    good = frame[~bad].drop(columns=[c for c in ("_error",) if c in frame.columns])
    good = good.assign(_id=ids[~bad].values)
    scored = score_frame(good, triage, id_column="_id", **options) if len(good) else None
    rows = [{**dict.fromkeys(OUTPUT_COLUMNS), "id": ids[n], "error": frame.at[n, "_error"]} for n in frame.index[bad]]
    parts = [p for p in (scored, pd.DataFrame(rows, columns=OUTPUT_COLUMNS) if rows else None) if p is not None]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=OUTPUT_COLUMNS)
    order = {str(i): n for n, i in enumerate(ids)}
    out = out.sort_values("id", key=lambda col: col.map(order), kind="stable").reset_index(drop=True)
    text_options = {k: options.get(k) for k in ("text_column", "subject_column", "body_column")}
    text_options.setdefault("text_column", "text")
    previews = [(_text_of(r, text_options["text_column"] or "text", text_options["subject_column"],
                          text_options["body_column"])[0] or "")[:300] for r in frame.to_dict("records")]
    time_column = options.get("time_column")
    times = frame[time_column].astype(str).tolist() if time_column and time_column in frame.columns else [None] * len(frame)
    return out.assign(_text=previews, _time=times)


# ---------------------------------------------------------------------- writing
def _journal_path(output: Path) -> Path:
    return output.with_name(output.name + ".partial.jsonl")


def done_ids(output: str | os.PathLike) -> set[str]:
    """Ids already scored by an interrupted run (from its journal)."""
    journal = _journal_path(Path(output))
    if not journal.exists():
        return set()
    ids = set()
    with open(journal, encoding="utf-8") as fh:
        for line in fh:
            try:
                ids.add(json.loads(line)["id"])
            except (json.JSONDecodeError, KeyError):
                break  # a line cut short by the kill: everything after it is rescored
    return ids


def _json_line(record: dict) -> str:
    """One JSON line; pandas' NaN (a missing value) becomes null."""
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}
    return json.dumps(clean, ensure_ascii=False, default=str) + "\n"


def append_journal(output: Path, frame) -> None:
    """Append scored rows to the journal and fsync, so a kill loses at most the chunk in flight."""
    with open(_journal_path(output), "a", encoding="utf-8") as fh:
        fh.writelines(_json_line(record) for record in frame.to_dict("records"))
        fh.flush()
        os.fsync(fh.fileno())


def _journal_frames(output: Path, chunk_size: int = 5000) -> Iterator:
    import pandas as pd

    seen: set[str] = set()
    chunk = []
    with open(_journal_path(output), encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line of a killed run; its row was rescored
            if record["id"] in seen:
                continue  # a chunk rescored after a kill: the first copy wins
            seen.add(record["id"])
            chunk.append(record)
            if len(chunk) == chunk_size:
                yield pd.DataFrame(chunk, columns=[*OUTPUT_COLUMNS, *_EXTRA])
                chunk = []
    if chunk or not seen:
        yield pd.DataFrame(chunk, columns=[*OUTPUT_COLUMNS, *_EXTRA])


def _frames_for(output: Path, report) -> Iterator:
    for frame in _journal_frames(output):
        if report is not None:
            report.add(frame)
        yield frame[OUTPUT_COLUMNS]


def finalize(output: str | os.PathLike, report=None) -> Path:
    """Write the journal out as `output` in its format (atomically) and remove the journal;
    `report` (a :class:`~triage.report.BatchReport`) sees every row on the way."""
    output = Path(output)
    fmt = file_format(output)
    tmp = output.with_name(f".{output.name}.tmp")
    if fmt in ("csv", "tsv"):
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, delimiter="," if fmt == "csv" else "\t")
            writer.writerow(OUTPUT_COLUMNS)
            for frame in _frames_for(output, report):
                writer.writerows(frame.astype(object).where(frame.notna(), "").itertuples(index=False))
    elif fmt == "jsonl":
        with open(tmp, "w", encoding="utf-8") as fh:
            for frame in _frames_for(output, report):
                fh.writelines(_json_line(record) for record in frame.to_dict("records"))
    elif fmt == "parquet":
        pa, pq = _require("pyarrow"), _require("pyarrow.parquet")

        schema = pa.schema([(c, pa.float64() if c in ("intent_confidence", "sentiment_score", "kb_score")
                             else pa.bool_() if c in ("needs_review", "knowledge_gap", "draft_needs_human")
                             else pa.string()) for c in OUTPUT_COLUMNS])
        with pq.ParquetWriter(tmp, schema) as writer:
            for frame in _frames_for(output, report):
                writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
    else:
        book = _require("openpyxl").Workbook(write_only=True)
        sheet = book.create_sheet("scores")
        sheet.append(OUTPUT_COLUMNS)
        for frame in _frames_for(output, report):
            for row in frame.astype(object).where(frame.notna(), None).itertuples(index=False):
                sheet.append(list(row))
        book.save(tmp)
    os.replace(tmp, output)
    _journal_path(output).unlink()
    return output


@dataclass
class RunSummary:
    """What a scoring run did."""

    scored: int = 0
    failed: int = 0
    skipped: int = 0  # already scored by the run that is being resumed
    reasons: Counter = field(default_factory=Counter)

    def add(self, frame) -> None:
        errors = frame["error"].dropna()
        self.failed += len(errors)
        self.scored += len(frame) - len(errors)
        self.reasons.update(e.split(":", 1)[0] for e in errors)

    def to_dict(self) -> dict:
        return {"scored": self.scored, "failed": self.failed, "skipped": self.skipped, "by_reason": dict(self.reasons)}


def read_output(path: str | os.PathLike):
    """A scored file back as a DataFrame (for reports and tests)."""
    import pandas as pd

    fmt = file_format(path)
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "excel":
        return pd.read_excel(path, dtype={"id": str})
    if fmt == "jsonl":
        return pd.read_json(path, lines=True, dtype={"id": str})
    return pd.read_csv(path, sep="," if fmt == "csv" else "\t", dtype={"id": str}, keep_default_na=False,
                       na_values=[""])


__all__ = ["FORMATS", "OUTPUT_COLUMNS", "RunSummary", "append_journal", "count_rows", "done_ids", "finalize",
           "iter_chunks", "read_output", "score_chunk", "score_file", "score_frame"]


# ---------------------------------------------------------------------- the run
_WORKER: Triage | None = None
_THREAD_VARIABLES = ("KEFU_ENCODER_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _init_worker(model, knowledge_base) -> None:
    global _WORKER
    _WORKER = Triage(model, knowledge_base=knowledge_base).warm_up()


def _score_in_worker(frame, options):
    assert _WORKER is not None
    return score_chunk(frame, _WORKER, **options)


def score_file(input: str | os.PathLike, output: str | os.PathLike, *, model=None, knowledge_base=None,
               text_column: str = "text", subject_column: str | None = None, body_column: str | None = None,
               id_column: str | None = None, time_column: str | None = None, drafts: bool = True,
               max_chars: int = DEFAULT_MAX_CHARS, workers: int = 1, resume: bool = False, chunk_size: int = 500,
               report=None, progress=None) -> RunSummary:
    """Score `input` into `output` (formats from the file names), streaming in chunks.

    With ``resume=True`` rows already in the journal of an interrupted run are skipped (by id);
    otherwise a stale journal is discarded. `report` (a :class:`~triage.report.BatchReport`) sees
    every row; `progress` is called with the number of rows done after each chunk.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    output = Path(output)
    file_format(output)
    journal = _journal_path(output)
    if not resume and journal.exists():
        journal.unlink()
    done = done_ids(output) if resume else set()
    options = dict(id_column=id_column, text_column=text_column, subject_column=subject_column,
                   body_column=body_column, time_column=time_column, drafts=drafts, max_chars=max_chars)
    summary = RunSummary()

    def pending() -> Iterator:
        for frame in iter_chunks(input, chunk_size):
            if done:
                ids = (frame[id_column].astype(str) if id_column and id_column in frame.columns
                       else frame[_ROW].astype(str))
                keep = ~ids.isin(done)
                summary.skipped += int((~keep).sum())
                frame = frame[keep]
                if progress and not keep.all():
                    progress(int((~keep).sum()))
            if len(frame):
                yield frame

    def record(scored) -> None:
        append_journal(output, scored)
        summary.add(scored)
        if progress:
            progress(len(scored))

    if workers <= 1:
        triage = Triage(model, knowledge_base=knowledge_base).warm_up()
        for frame in pending():
            record(score_chunk(frame, triage, **options))
    else:
        # Spawned workers load the model once each; at most 2 chunks per worker are in flight,
        # so memory stays flat however large the input. Each worker gets one thread for the
        # encoder, BLAS and FAISS: N workers x N threads on N cores thrash.
        saved = {k: os.environ.get(k) for k in _THREAD_VARIABLES}
        os.environ.update(dict.fromkeys(_THREAD_VARIABLES, "1"))
        try:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                     initargs=(model, knowledge_base)) as pool:
                in_flight = []
                for frame in pending():
                    in_flight.append(pool.submit(_score_in_worker, frame, options))
                    if len(in_flight) >= 2 * workers:
                        record(in_flight.pop(0).result())
                for future in in_flight:
                    record(future.result())
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    if not journal.exists():  # nothing to score (or all skipped): still write a valid, empty output
        append_journal(output, _empty_frame())
    finalize(output, report)
    return summary


def _empty_frame():
    import pandas as pd

    return pd.DataFrame(columns=[*OUTPUT_COLUMNS, *_EXTRA])
