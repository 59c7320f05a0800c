"""Reading data files (CSV, TSV, JSONL) with errors that name the file, line and field.

Shared by the knowledge-base loaders here and the labeled-data readers in `triage`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import marshal
import os
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "tsv"}


class DataFileError(ValueError):
    """A data file that cannot be used; the message says where and how to fix it."""

    def __init__(self, path: str | os.PathLike, message: str, *, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = str(path), line, field
        where = self.path + (f", line {line}" if line is not None else "") + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {message}")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """Where derived files that only make things faster are kept: ``$KEFU_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/kefu-triage``, else ``~/.cache/kefu-triage``. Safe to delete.

    Raises RuntimeError when none is set and the user has no home directory.
    """
    configured = os.environ.get("KEFU_CACHE_DIR")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "kefu-triage"


def read_cached(name: str, key: str):
    """What :func:`write_cached` stored under `name` and `key`, or None if there is nothing usable.

    For tables that are slow to build in Python and fast to read back: marshal reads plain
    containers (dict, list, tuple, str, bytes, numbers) several times faster than Python can
    build them. marshal is not made for untrusted data, so only files owned by this user are
    read, and callers check what they get (a probe) before trusting it.
    """
    try:
        path = cache_dir() / f"{name}-{key}.marshal"
        if path.stat().st_uid != os.getuid():
            return None
        return marshal.loads(path.read_bytes())
    except (OSError, RuntimeError, EOFError, ValueError, TypeError):
        return None


def write_cached(name: str, key: str, value) -> None:
    """Store `value` (plain containers only) atomically, replacing other keys' files of `name`;
    a read-only or missing cache directory only costs speed."""
    temporary = None
    try:
        data = marshal.dumps(value)
        directory = cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=f".{name}-", delete=False) as fh:
            temporary = fh.name
            fh.write(data)
        os.replace(temporary, directory / f"{name}-{key}.marshal")
        temporary = None
        for stale in directory.glob(f"{name}-*.marshal"):  # tables of other package versions
            if stale.name != f"{name}-{key}.marshal":
                stale.unlink(missing_ok=True)
    except (OSError, RuntimeError, ValueError):
        pass
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def file_format(path: str | os.PathLike) -> str:
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise DataFileError(path, f"unsupported file type {Path(path).suffix!r}; use .csv, .tsv or .jsonl")
    return fmt


def read_text(path: str | os.PathLike) -> str:
    """The file decoded as UTF-8 (a BOM is dropped); refuses missing, binary and non-UTF-8 files."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataFileError(path, "file not found") from None
    except IsADirectoryError:
        raise DataFileError(path, "is a directory, expected a file") from None
    if b"\x00" in raw[:8192]:
        raise DataFileError(path, "looks binary (contains NUL bytes); expected UTF-8 text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataFileError(
            path, f"is not valid UTF-8 (byte {exc.start}); re-save it as UTF-8", line=line
        ) from None


def _tsv_quoting(text: str) -> int:
    """How to read a TSV file: without quoting when quotes would only merge its lines.

    Many TSV exports and public datasets never quote, and a review that merely starts with a quote
    mark would otherwise swallow the lines after it (on ChnSentiCorp, 454 of 9,600 rows). When every
    line already has the header's number of tabs, quoting is only kept if it is well formed and
    leaves one record per line (a field written as ``"5"" screen"``); otherwise quotes are text.
    """
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if '"' not in text or not lines or any(line.count("\t") != lines[0].count("\t") for line in lines):
        return csv.QUOTE_MINIMAL
    try:
        quoted = sum(1 for row in csv.reader(io.StringIO(text, newline=""), delimiter="\t", strict=True) if row)
    except csv.Error:  # a quote that does not close a field, as in "好书"，值得一读
        return csv.QUOTE_NONE
    return csv.QUOTE_MINIMAL if quoted == len(lines) else csv.QUOTE_NONE


def _too_few_message(record: dict, header: list[str], fmt: str) -> str:
    """"row has 1 field but the header has 3 (text, intent, urgency); check ..." for a short row."""
    got = sum(1 for value in record.values() if value is not None)
    names = ", ".join(header[:10]) + (f", ... ({len(header) - 10} more)" if len(header) > 10 else "")
    delimiter = "commas" if fmt == "csv" else "tabs"
    return (
        f"row has {got} field{'s' if got != 1 else ''} but the header has {len(header)} ({names}); check the "
        f"delimiter or quoting ({fmt.upper()} fields are separated by {delimiter})"
    )


def iter_records(path: str | os.PathLike, *, required: Collection[str] = ()) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for each data row of a CSV, TSV or JSONL file.

    A CSV or TSV row with fewer fields than the header is yielded with None for the missing
    ones, unless a missing one is among `required` (columns the caller cannot do without):
    then it is refused, naming the line, the column and both field counts.
    """
    path = Path(path)
    fmt = file_format(path)
    text = read_text(path)
    if fmt == "jsonl":
        # split("\n"), not splitlines(): JSON strings may hold U+2028 and friends unescaped.
        for number, line in enumerate(text.split("\n"), start=1):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFileError(path, f"invalid JSON ({exc.msg})", line=number) from None
            if not isinstance(record, dict):
                raise DataFileError(path, f"expected a JSON object, got {type(record).__name__}", line=number)
            yield number, record
        return
    delimiter = "," if fmt == "csv" else "\t"
    quoting = _tsv_quoting(text) if fmt == "tsv" else csv.QUOTE_MINIMAL
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    if not reader.fieldnames:
        raise DataFileError(path, "is empty: no header row", line=1)
    try:
        end = reader.line_num  # the header's last line
        for record in reader:
            start, end = end + 1, reader.line_num
            too_many, too_few = None in record, None in record.values()
            if end > start and (too_many or too_few):
                # One record over several lines with a wrong field count: a quote was left open.
                raise DataFileError(
                    path, f"the row starting here runs on to line {end}: a double quote (\") opened on this "
                    "line is probably never closed; close it, or write a quote inside a quoted field as \"\"",
                    line=start,
                )
            if too_many:
                raise DataFileError(
                    path, f"row has more fields than the {len(reader.fieldnames)} in the header", line=end,
                )
            if too_few:
                missing = [c for c in reader.fieldnames if c in required and record.get(c) is None]
                if missing:
                    raise DataFileError(path, _too_few_message(record, reader.fieldnames, fmt), line=end,
                                        field=missing[0])
            yield end, record
    except csv.Error as exc:
        raise DataFileError(path, f"malformed {fmt.upper()} ({exc})", line=reader.line_num) from None
