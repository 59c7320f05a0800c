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
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from retrieval.files import FORMATS as TEXT_FORMATS
from retrieval.files import (SNIFF_BYTES, DataFileError, allow_large_csv_fields, binary_problem, clean_nul,
                             delimiter_problem, file_format, sha256_file)
from retrieval.text import DEFAULT_MAX_CHARS, TextInputError, has_undecodable, normalize

from .pipeline import Triage
from .results import TriageFailure

FORMATS = {**TEXT_FORMATS, ".parquet": "parquet", ".xlsx": "excel"}
OUTPUT_COLUMNS = [
    "id", "language", "intent", "category", "intent_confidence", "needs_review", "urgency", "urgency_reasons",
    "due", "sentiment", "sentiment_score", "kb_ids", "kb_score", "knowledge_gap", "draft_zh", "draft_en",
    "draft_needs_human", "truncated", "error",
]
#: The file readers refuse a row with a field longer than this many characters (``oversized``). Only a
#: guard against pasted attachments and runaway fields filling memory: a message longer than the
#: Triage's ``max_chars`` (20,000 by default) is truncated and flagged ``truncated``, not refused.
FIELD_LIMIT = 1_000_000
_JOURNAL_VERSION = 2  # bumped when the journal's rows change shape (2: the truncated column)
_ROW = "_row"  # source row number, carried through the readers; resume and the output order go by it
_EXTRA = (_ROW, "_text", "_time")  # journal-only columns (row number; the report's preview and arrival time)
_UNDECODABLE = "undecodable: the row has bytes that are not UTF-8"
_EPOCH = re.compile(r"[+-]?\d+(\.\d*)?")
_EXCEL_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # control characters an .xlsx cell cannot hold


def _missing(value) -> bool:
    """None, NaN, NaT or NA: an empty cell (lists and other containers are values, not missing)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    pd = sys.modules.get("pandas")  # NaT and NA only come from pandas, so it is never imported for this
    return pd is not None and pd.api.types.is_scalar(value) and bool(pd.isna(value))


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


# ---------------------------------------------------------------------- the message of a ticket
# "Re:", "RE[2]:", "Fwd:", "AW:", "回复：", "轉寄:" ... at the start of a subject, repeated or not.
_REPLY_PREFIX = re.compile(
    r"^(?:\s*(?:re|fw|fwd|aw|wg|sv|vs|tr|antw|rif|答复|答覆|回复|回覆|转发|轉發|转寄|轉寄)\s*(?:\[\d+\]|\(\d+\))?\s*[:：])+",
    re.IGNORECASE)


def _blank(text: str) -> bool:
    """True when `text` has nothing to read: empty, or only whitespace, invisible or control
    characters, by the rule :func:`retrieval.text.prepare` applies."""
    text = text.strip()
    if not text:
        return True
    if text[0].isprintable():  # stripped, so not a space: a visible character that normalising keeps
        return False
    return not normalize(text)  # starts with an invisible or control character: the full rule


def _part(value, name: str) -> str:
    if _missing(value):
        return ""
    if isinstance(value, (bytes, bytearray)):  # undecodable bytes stay visible, as lone surrogates
        value = bytes(value).decode("utf-8", "surrogateescape")
    if not isinstance(value, str):
        raise TextInputError(f"the {name} is not text (got {type(value).__name__})")
    value = value.strip()
    return "" if _blank(value) else value


def ticket_text(subject, body) -> str:
    """The message of a ticket with a subject and a body, as ``triage score`` and ``triage demo``
    read it; ``""`` when the ticket has none.

    - Each part counts when it has something to read: None, NaN, an empty cell, and text of only
      whitespace, zero-width or control characters count as absent (as :func:`retrieval.text.prepare`
      would refuse them).
    - A subject alone is a message the customer wrote, and is scored; so is a body alone.
    - Reply and forward prefixes are not the customer's words and are dropped from the subject
      (``Re:``, ``RE[2]:``, ``Fwd:``, ``AW:``, ``回复：``, ``轉寄:``, repeated or not), so a subject of only
      prefixes with an empty body is no message.
    - Both present: subject, a newline, body; a body that already starts with the subject does not
      repeat it.

    Raises
    ------
    TextInputError
        When a part is neither text nor missing (a number or a list from JSONL, Parquet or
        Excel): its printed form is not a message.
    """
    subject = _REPLY_PREFIX.sub("", _part(subject, "subject")).strip()
    subject = "" if _blank(subject) else subject
    body = _part(body, "body")
    if subject and body and not body.startswith(subject):
        return f"{subject}\n{body}"
    return body or subject


# ---------------------------------------------------------------------- scoring
def _message_columns(text_column, subject_column, body_column) -> list[str]:
    return [c for c in (subject_column, body_column) if c] if subject_column or body_column else [text_column]


def _empty_error(columns: list[str], subject_column) -> str:
    """The ``empty`` error of a row with no message in `columns`: what is wrong and what to do."""
    names = " and ".join(map(repr, columns))
    prefix = ", or a reply prefix such as 'Re:'" if subject_column else ""
    return (f"empty: no message text in {names} (blank, or only spaces, invisible or control "
            f"characters{prefix}); write the message there or drop the row")


def _text_of(row, text_column, subject_column, body_column) -> tuple[str | None, str | None]:
    """The message text of a row (:func:`ticket_text`), or an error saying why there is none. A
    number or a list in a typed format (JSONL, Parquet, Excel) is refused, not scored as its
    printed form."""
    columns = _message_columns(text_column, subject_column, body_column)
    for value in (row.get(c) for c in columns):
        if not isinstance(value, (str, bytes, bytearray)) and not _missing(value):
            return None, f"invalid: text is not a string (got {type(value).__name__})"
    if subject_column or body_column:
        text = ticket_text(row.get(subject_column) if subject_column else None,
                           row.get(body_column) if body_column else None)
    else:
        text = ticket_text(None, row.get(text_column))
    if not text:
        return None, _empty_error(columns, subject_column)
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
                drafts: bool = True, max_chars: int | None = None):
    """Score every row of a pandas DataFrame.

    Parameters
    ----------
    frame : pandas.DataFrame
        One ticket per row.
    text_column : str
        The message column; or give `subject_column` and/or `body_column` (joined by
        :func:`ticket_text`).
    id_column : str, optional
        Ticket ids, copied as they are (default: the frame's index).
    time_column : str, optional
        Arrival times, the base of the due times, each parsed on its own (see :func:`_arrival`). A
        row whose time cannot be parsed is refused as invalid; an empty one counts as now.
    drafts : bool
        Draft replies in both languages (False skips them, about twice as fast).
    max_chars : int, optional
        Only a check: longer texts are truncated at ``triage.max_chars`` and flagged ``truncated``
        (the cap is the Triage's, set with ``triage.load(max_chars=...)``); a different value here
        is a ValueError rather than silently ignored.

    Returns
    -------
    pandas.DataFrame
        :data:`OUTPUT_COLUMNS`, one row per input row in order. A row that cannot be scored has
        only ``id`` and ``error`` (``"<reason>: <detail>"``) filled.
    """
    import pandas as pd

    if max_chars is not None and max_chars != triage.max_chars:
        raise ValueError(f"max_chars={max_chars} but this Triage truncates at {triage.max_chars} characters; "
                         f"build it with triage.load(max_chars={max_chars}) (or Triage(..., max_chars=...))")
    _check_columns(frame.columns, text_column, subject_column, body_column, id_column, time_column)
    columns = _message_columns(text_column, subject_column, body_column)
    records = frame.to_dict("records")
    ids = frame[id_column].tolist() if id_column else frame.index.tolist()
    times = [_arrival(v) for v in frame[time_column]] if time_column else [(None, None)] * len(records)
    out = [{"id": _id_text(i), "error": None} for i in ids]
    texts, positions = [], []
    for n, record in enumerate(records):
        text, error = _text_of(record, text_column, subject_column, body_column)
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
        if isinstance(result, TriageFailure):  # ticket_text leaves no empty text, but say so the same way
            empty = result.error.startswith(("message is empty", "message is whitespace"))
            out[n]["error"] = _empty_error(columns, subject_column) if empty else f"invalid: {result.error}"
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
            draft_needs_human=result.draft.needs_human if result.draft else None, truncated=r.truncated)
    return pd.DataFrame(out, columns=OUTPUT_COLUMNS)


# ---------------------------------------------------------------------- reading
def _oversized_error(fields: dict, where: str) -> str:
    named = ", ".join(f"{k!r} has {n:,} characters" for k, n in fields.items())
    return (f"oversized: {named} ({where}); fields over {FIELD_LIMIT:,} characters are not read (a message "
            f"over the length limit, 20,000 characters by default, is truncated and flagged, not refused)")


def _checked(record: dict, where: str) -> dict:
    """The record with its fields that cannot be read emptied and an error naming them, so the
    other fields (the id above all) survive: ``oversized`` for a field over :data:`FIELD_LIMIT`
    characters, ``undecodable`` for one that is not UTF-8."""
    big = {k: len(v) for k, v in record.items() if isinstance(v, str) and len(v) > FIELD_LIMIT}
    if big:
        return {**record, **dict.fromkeys(big), "_error": _oversized_error(big, where)}
    bad = [k for k, v in record.items() if isinstance(v, str) and has_undecodable(v)]
    if not bad:
        return record
    return {**record, **dict.fromkeys(bad), "_error": f"undecodable: bytes that are not UTF-8 in "
                                                      f"{', '.join(map(repr, bad))}"}


def _check_frame(frame) -> None:
    """:func:`_checked` for a typed chunk (Parquet), in place: oversized text fields are emptied and
    named in the row's error."""
    import pandas as pd

    big: dict = {}
    for column in frame.columns.drop([_ROW, "_error"]):
        if pd.api.types.is_object_dtype(frame[column]) or pd.api.types.is_string_dtype(frame[column]):
            for index, value in frame[column].items():
                if isinstance(value, str) and len(value) > FIELD_LIMIT:
                    big.setdefault(index, {})[column] = len(value)
    for index, fields in big.items():
        frame.loc[index, list(fields)] = None
        frame.at[index, "_error"] = _oversized_error(fields, f"row {frame.at[index, _ROW]}")


def _chunk_frame(rows: list[dict], header=()):
    """Rows as a DataFrame of objects, so ids stay as written (no 1 -> 1.0 beside an empty cell),
    with every header column and an ``_error`` column even when no row of the chunk fills them."""
    import pandas as pd

    frame = pd.DataFrame(rows, dtype=object)
    return frame.reindex(columns=list(dict.fromkeys([*header, *frame.columns, "_error"])))


def _source(path: str | os.PathLike) -> tuple[Path, str]:
    """An input file and its format; DataFileError when it is missing."""
    fmt = file_format(path, FORMATS)
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
    allow_large_csv_fields()
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        try:  # cells may hold newlines, so rows are counted by the CSV reader, not by lines
            rows = csv.reader(map(clean_nul, fh), delimiter="," if fmt == "csv" else "\t")
            return max(sum(1 for _ in rows) - 1, 0)
        except csv.Error:
            return None


def iter_chunks(path: str | os.PathLike, chunk_size: int = 500) -> Iterator:
    """Yield pandas DataFrames of at most `chunk_size` rows, with a ``_row`` column of source row
    numbers and an ``_error`` one: malformed and undecodable rows are kept (with their error and
    whatever fields could be read) so they are reported, not lost.

    A NUL byte in a text file is read as a space (:func:`retrieval.files.clean_nul`), the way
    triage reads every control character in a message; a field over :data:`FIELD_LIMIT`
    characters makes its row ``oversized``.

    Raises
    ------
    DataFileError
        For a missing, binary (:func:`retrieval.files.binary_problem`) or unreadable file, one
        without a header, or a CSV or TSV header that shows the wrong delimiter.
    """
    path, fmt = _source(path)
    if fmt in ("csv", "tsv", "jsonl"):
        with open(path, "rb") as fh:
            problem = binary_problem(fh.read(SNIFF_BYTES))
        if problem:
            raise DataFileError(path, problem)
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
            _check_frame(frame)
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
            chunk.append({**_checked(dict(zip(header, values)), f"row {number}"), _ROW: number})
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
                line = clean_nul(line)
                try:
                    record = json.loads(line)
                    if not isinstance(record, dict):
                        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
                except ValueError as exc:  # json.JSONDecodeError included
                    error = _UNDECODABLE if has_undecodable(line) else \
                        f"malformed: line {number} is not a JSON object ({exc})"
                    chunk.append({_ROW: number, "_error": error})
                else:
                    chunk.append({**_checked(record, f"line {number}"), _ROW: number})
                if len(chunk) == chunk_size:
                    yield _chunk_frame(chunk)
                    chunk = []
            if chunk:
                yield _chunk_frame(chunk)
            return
        allow_large_csv_fields()
        reader = csv.reader(map(clean_nul, fh), delimiter="," if fmt == "csv" else "\t")
        try:
            header = next(reader)
        except StopIteration:
            raise DataFileError(path, "is empty: no header row", line=1) from None
        except csv.Error as exc:
            raise DataFileError(path, f"malformed header ({exc})", line=1) from None
        problem = delimiter_problem(header, fmt)
        if problem:
            raise DataFileError(path, problem, line=1)
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
            fields = _checked(dict(zip(header, values)), f"line {reader.line_num}")
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
    return {"version": _JOURNAL_VERSION, "input_sha256": sha256_file(input), "settings": settings}


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
    if found.get("version") != expected["version"]:
        raise ValueError(f"{journal} was written by another version of kefu-triage (its rows have other "
                         f"columns); rerun without --resume to start over")
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
    fmt = file_format(output, FORMATS)
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
                             else pa.bool_() if c in ("needs_review", "knowledge_gap", "draft_needs_human",
                                                      "truncated")
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
                sheet.append([_EXCEL_ILLEGAL.sub("\ufffd", v) if isinstance(v, str) else v for v in row])
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

    fmt = file_format(path, FORMATS)
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "excel":
        return pd.read_excel(path, dtype={"id": str})
    if fmt == "jsonl":
        return pd.read_json(path, lines=True, dtype={"id": str})
    return pd.read_csv(path, sep="," if fmt == "csv" else "\t", dtype={"id": str}, keep_default_na=False,
                       na_values=[""])


__all__ = ["FIELD_LIMIT", "FORMATS", "OUTPUT_COLUMNS", "RunSummary", "append_journal", "count_rows", "finalize",
           "iter_chunks", "read_output", "same_file", "score_chunk", "score_file", "score_frame", "ticket_text"]


# ---------------------------------------------------------------------- the run
_WORKER: Triage | None = None
_THREAD_VARIABLES = ("KEFU_ENCODER_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _init_worker(model, knowledge_base, max_chars) -> None:
    global _WORKER
    _WORKER = Triage(model, knowledge_base=knowledge_base, max_chars=max_chars).warm_up()


def _score_in_worker(frame, options):
    assert _WORKER is not None
    return score_chunk(frame, _WORKER, **options)


def score_file(input: str | os.PathLike, output: str | os.PathLike, *, model=None, knowledge_base=None,
               text_column: str = "text", subject_column: str | None = None, body_column: str | None = None,
               id_column: str | None = None, time_column: str | None = None, drafts: bool = True,
               max_chars: int = DEFAULT_MAX_CHARS, workers: int = 1, resume: bool = False, chunk_size: int = 500,
               report=None, progress=None) -> RunSummary:
    """Score `input` into `output` (formats from the file names), streaming in chunks.

    Messages longer than `max_chars` are truncated and flagged ``truncated`` (the cap of the
    Triage this builds); a row with a field over :data:`FIELD_LIMIT` characters is ``oversized``.

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
    file_format(output, FORMATS)
    for path in (output, _journal_path(output), _tmp_path(output)):
        if same_file(path, input):
            raise ValueError(f"writing {path} would overwrite the input {input}; choose another output path")
    options = dict(id_column=id_column, text_column=text_column, subject_column=subject_column,
                   body_column=body_column, time_column=time_column, drafts=drafts)
    settings = {**options, "max_chars": max_chars, "model": model and str(model),
                "knowledge_base": knowledge_base and str(knowledge_base)}
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
        triage = Triage(model, knowledge_base=knowledge_base, max_chars=max_chars).warm_up()
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
                                     initargs=(model, knowledge_base, max_chars)) as pool:
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
