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
import numbers
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from retrieval.files import DataFileError, sha256_file
from retrieval.text import has_undecodable

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
_ROW = "_row"  # source row number, carried through the readers; resume and the output order go by it
_EXTRA = (_ROW, "_text", "_time")  # journal-only columns (row number; the report's preview and arrival time)
_UNDECODABLE = "undecodable: the row has bytes that are not UTF-8"
_EPOCH = re.compile(r"[+-]?\d+(\.\d*)?")


def _missing(value) -> bool:
    """None, NaN, NaT or NA: an empty cell (lists and other containers are values, not missing)."""
    import pandas as pd

    return pd.api.types.is_scalar(value) and bool(pd.isna(value))


def _id_text(value) -> str:
    """A ticket id as written in the output: as given, an empty cell stays empty."""
    return "" if _missing(value) else str(value)


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
    """The message text of a row, or an error saying why there is none. A number or a list in a
    typed format (JSONL, Parquet, Excel) is refused, not scored as its printed form."""
    columns = [c for c in (subject_column, body_column) if c] if subject_column or body_column else [text_column]
    parts = []
    for value in (row.get(c) for c in columns):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "surrogateescape")
        elif not isinstance(value, str) and not _missing(value):
            return None, f"invalid: text is not a string (got {type(value).__name__})"
        if isinstance(value, str) and value.strip():
            parts.append(value)
    text = "\n".join(parts)
    if not text:
        return None, "empty: no text in this row"
    if has_undecodable(text):
        return None, _UNDECODABLE
    return text, None


def _arrival(value) -> tuple[datetime | None, str | None]:
    """A row's arrival time, parsed on its own since exports mix formats (ISO 8601 with or without
    an offset, ``/`` as the date separator, epoch seconds), or an error naming the value. An empty
    cell is no time (due times count from now); naive times are UTC."""
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, datetime):  # Parquet and Excel hold real times
        return value, None
    text = str(value).strip()
    try:
        if (isinstance(value, numbers.Real) and not isinstance(value, bool)) or _EPOCH.fullmatch(text):
            return datetime.fromtimestamp(float(text), timezone.utc), None
        return datetime.fromisoformat(text.replace("/", "-")), None
    except (ValueError, OverflowError, OSError):
        return None, (f"invalid: unparseable time {text[:100]!r} (use ISO 8601 such as 2024-11-04T10:00:00+08:00, "
                      f"or epoch seconds)")


def _check_columns(columns, text_column, subject_column, body_column, id_column, time_column) -> None:
    """A KeyError naming a column the options ask for that the table lacks, and the ones it has."""
    for name in (text_column if not (subject_column or body_column) else None, subject_column, body_column,
                 id_column, time_column):
        if name and name not in columns:
            raise KeyError(f"no column {name!r}; columns are {[c for c in columns if c not in (_ROW, '_error')]}")


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
        Ticket ids, copied as they are (default: the frame's index).
    time_column : str, optional
        Arrival times, the base of the due times, each parsed on its own (see :func:`_arrival`). A
        row whose time cannot be parsed is refused as invalid; an empty one counts as now.
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

    _check_columns(frame.columns, text_column, subject_column, body_column, id_column, time_column)
    records = frame.to_dict("records")
    ids = frame[id_column].tolist() if id_column else frame.index.tolist()
    times = [_arrival(v) for v in frame[time_column]] if time_column else [(None, None)] * len(records)
    out = [{"id": _id_text(i), "error": None} for i in ids]
    texts, positions = [], []
    for n, record in enumerate(records):
        text, error = _text_of(record, text_column, subject_column, body_column)
        if error is None and len(text) > max_chars:
            error = f"oversized: {len(text)} characters (the limit is {max_chars})"
        error = error or times[n][1]
        if error:
            out[n]["error"] = error
        else:
            texts.append(text)
            positions.append(n)
    received = [times[n][0] for n in positions]  # due times in UTC, whatever offset each arrival had
    received = [t.astimezone(timezone.utc) if t is not None and t.tzinfo else t for t in received]
    results = triage.assist_batch(texts, received_at=received, draft=drafts)
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
def _decodable(record: dict) -> dict:
    """The record with its fields that are not UTF-8 emptied and an ``undecodable`` error naming
    them, so the fields that do decode (the id above all) survive."""
    bad = [k for k, v in record.items() if isinstance(v, str) and has_undecodable(v)]
    if not bad:
        return record
    return {**record, **dict.fromkeys(bad), "_error": f"undecodable: bytes that are not UTF-8 in "
                                                      f"{', '.join(map(repr, bad))}"}


def _chunk_frame(rows: list[dict], header=()):
    """Rows as a DataFrame of objects, so ids stay as written (no 1 -> 1.0 beside an empty cell),
    with every header column and an ``_error`` column even when no row of the chunk fills them."""
    import pandas as pd

    frame = pd.DataFrame(rows, dtype=object)
    return frame.reindex(columns=list(dict.fromkeys([*header, *frame.columns, "_error"])))


def _source(path: str | os.PathLike) -> tuple[Path, str]:
    """An input file and its format; DataFileError when it is missing."""
    fmt = file_format(path)
    if not Path(path).is_file():
        raise DataFileError(path, "file not found")
    return Path(path), fmt


def count_rows(path: str | os.PathLike) -> int | None:
    """Data rows in the file, cheaply (None when unknown)."""
    path, fmt = _source(path)
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
    numbers and an ``_error`` one: malformed and undecodable rows are kept (with their error and
    whatever fields could be read) so they are reported, not lost.

    Raises
    ------
    DataFileError
        For a missing, binary or unreadable file, or one without a header.
    """
    path, fmt = _source(path)
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
            frame = batch.to_pandas(integer_object_nulls=True)
            frame[_ROW], frame["_error"] = range(start + 1, start + 1 + len(frame)), None
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
                yield _chunk_frame(chunk, header)
                chunk = []
        if chunk:
            yield _chunk_frame(chunk, header)
        book.close()
        return
    # Text formats: undecodable bytes become lone surrogates, so one bad field is reported, not fatal.
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        if fmt == "jsonl":
            chunk = []
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if not isinstance(record, dict):
                        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
                except ValueError as exc:  # json.JSONDecodeError included
                    error = _UNDECODABLE if has_undecodable(line) else \
                        f"malformed: line {number} is not a JSON object ({exc})"
                    chunk.append({_ROW: number, "_error": error})
                else:
                    chunk.append({**_decodable(record), _ROW: number})
                if len(chunk) == chunk_size:
                    yield _chunk_frame(chunk)
                    chunk = []
            if chunk:
                yield _chunk_frame(chunk)
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
                chunk.append({_ROW: reader.line_num, "_error": f"malformed: line {reader.line_num}: {exc}"})
                continue
            if not any(v.strip() for v in values):
                continue
            # A row with the wrong number of fields keeps the leading ones (the id is usually first).
            fields = _decodable(dict(zip(header, values)))
            if len(values) != len(header):
                fields["_error"] = f"malformed: line {reader.line_num} has {len(values)} fields, the header has " \
                                   f"{len(header)}"
            chunk.append({**fields, _ROW: reader.line_num})
            if len(chunk) == chunk_size:
                yield _chunk_frame(chunk, header)
                chunk = []
        if chunk:
            yield _chunk_frame(chunk, header)


def score_chunk(frame, triage: Triage, *, id_column: str | None, **options):
    """:func:`score_frame` on a chunk from :func:`iter_chunks`, plus the journal's columns
    (:data:`_EXTRA`): rows the reader refused keep their error and whatever id they have, ids
    default to the source row numbers, and a column no row of the chunk has (a JSONL key) is empty
    (:func:`score_file` checks the names once, against the file)."""
    import pandas as pd

    id_column = id_column or _ROW
    text_column = options.get("text_column", "text")
    subject_column, body_column, time_column = (options.get(k) for k in ("subject_column", "body_column",
                                                                           "time_column"))
    named = [c for c in (text_column, subject_column, body_column, id_column, time_column, "_error") if c]
    frame = frame.reset_index(drop=True).reindex(columns=list(dict.fromkeys([*frame.columns, *named])))
    refused = frame["_error"].notna()
    good, bad = frame[~refused], frame[refused]
    parts = [score_frame(good, triage, id_column=id_column, **options).set_axis(good.index)] if len(good) else []
    if len(bad):
        parts.append(pd.DataFrame({"id": [_id_text(i) for i in bad[id_column]], "error": bad["_error"]},
                                  index=bad.index, columns=OUTPUT_COLUMNS))
    previews = [(_text_of(r, text_column, subject_column, body_column)[0] or "")[:300]
                for r in frame.to_dict("records")]
    times = [_arrival(v)[0] for v in frame[time_column]] if time_column else [None] * len(frame)
    return pd.concat(parts).sort_index().assign(_row=frame[_ROW], _text=previews,
                                                _time=[t and t.isoformat() for t in times])


# ---------------------------------------------------------------------- writing
def _journal_path(output: Path) -> Path:
    return output.with_name(output.name + ".partial.jsonl")


def _tmp_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.tmp")


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (through symbolic or hard links too)."""
    a, b = Path(a), Path(b)
    return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))


def _fingerprint(input: Path, settings: dict) -> dict:
    """What a journal is written for: the input's content and the settings that shape the results,
    so a resume never mixes rows of two different runs (rows are matched by position)."""
    return {"input_sha256": sha256_file(input), "settings": settings}


def _json_line(record: dict) -> str:
    """One JSON line; pandas' NaN (a missing value) becomes null."""
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}
    return json.dumps(clean, ensure_ascii=False, default=str) + "\n"


def _write_journal(output: Path, lines, mode: str = "a") -> None:
    """Write lines to the journal and fsync, so a kill loses at most the chunk in flight."""
    with open(_journal_path(output), mode, encoding="utf-8") as fh:
        fh.writelines(lines)
        fh.flush()
        os.fsync(fh.fileno())


def append_journal(output: Path, frame) -> None:
    """Append scored rows (from :func:`score_chunk`) to the journal."""
    _write_journal(output, map(_json_line, frame.to_dict("records")))


def _open_journal(output: Path, fingerprint: dict, resume: bool) -> set[int]:
    """Start the journal with its fingerprint, or with `resume` continue an interrupted run's: the
    source rows it already scored are returned (to skip), a line torn by the kill is cut off so
    appending continues cleanly, and a journal of other input or settings is refused."""
    journal, done, kept = _journal_path(output), set(), 0
    if resume and journal.exists():
        with open(journal, "rb+") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.endswith(b"\n"):
                    break  # cut short by the kill: its row is scored again
                try:
                    record = json.loads(line)
                except ValueError:
                    raise ValueError(f"{journal} is damaged at line {number}; rerun without --resume to start "
                                     f"over") from None
                if number == 1:
                    _check_journal(journal, record.get("journal") or {}, fingerprint)
                else:
                    done.add(record[_ROW])
                kept += len(line)
            fh.truncate(kept)
    if not kept:  # a new run (a stale journal is discarded), or a kill before the fingerprint was down
        _write_journal(output, [_json_line({"journal": fingerprint})], "w")
    return done


def _check_journal(journal: Path, found: dict, expected: dict) -> None:
    if found.get("input_sha256") != expected["input_sha256"]:
        raise ValueError(f"{journal} is from a run on other input (the file's content differs, or an older "
                         f"version wrote it); rerun without --resume to start over")
    changed = [f"{k} {found['settings'].get(k)!r} -> {v!r}" for k, v in expected["settings"].items()
               if found["settings"].get(k) != v]
    if changed:
        raise ValueError(f"{journal} is from a run with other settings ({', '.join(changed)}); resume with the "
                         f"same ones, or rerun without --resume to start over")


def _journal_frames(output: Path, chunk_size: int = 5000) -> Iterator:
    """The journal's rows a chunk at a time, in input order (runs and resumes append them so)."""
    import pandas as pd

    columns = [*OUTPUT_COLUMNS, *_EXTRA]
    chunk, yielded = [], False
    with open(_journal_path(output), encoding="utf-8") as fh:
        next(fh)  # the fingerprint
        for line in fh:
            chunk.append(json.loads(line))
            if len(chunk) == chunk_size:
                yield pd.DataFrame(chunk, columns=columns)
                chunk, yielded = [], True
    if chunk or not yielded:
        yield pd.DataFrame(chunk, columns=columns)


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
    tmp = _tmp_path(output)
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


__all__ = ["FORMATS", "OUTPUT_COLUMNS", "RunSummary", "append_journal", "count_rows", "finalize", "iter_chunks",
           "read_output", "same_file", "score_chunk", "score_file", "score_frame"]


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

    With ``resume=True`` rows already in the journal of an interrupted run are skipped (by their
    position in the input, which must be unchanged, as must the settings); otherwise a stale journal
    is discarded. `report` (a :class:`~triage.report.BatchReport`) sees every row; `progress` is
    called with the number of rows done after each chunk.

    Raises
    ------
    ValueError
        When the output, its journal or its temporary file would overwrite the input, or when
        resuming a journal written for other input or settings.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    input, output = _source(input)[0], Path(output)
    file_format(output)
    for path in (output, _journal_path(output), _tmp_path(output)):
        if same_file(path, input):
            raise ValueError(f"writing {path} would overwrite the input {input}; choose another output path")
    options = dict(id_column=id_column, text_column=text_column, subject_column=subject_column,
                   body_column=body_column, time_column=time_column, drafts=drafts, max_chars=max_chars)
    settings = {**options, "model": model and str(model), "knowledge_base": knowledge_base and str(knowledge_base)}
    done = _open_journal(output, _fingerprint(input, settings), resume)
    summary = RunSummary()

    def pending() -> Iterator:
        unchecked = True
        for frame in iter_chunks(input, chunk_size):
            if unchecked and frame["_error"].isna().any():  # the first readable rows show the columns
                _check_columns(frame.columns, text_column, subject_column, body_column, id_column, time_column)
                unchecked = False
            if done:
                keep = ~frame[_ROW].isin(done)
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
    finalize(output, report)
    return summary
