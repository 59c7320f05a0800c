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

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}

#: How much of a file's head :func:`binary_problem` looks at.
SNIFF_BYTES = 8192
#: The CSV parser's own per-field limit while reading data files (the ``csv`` module's default,
#: 131,072 characters, is raised to this). It only guards memory against a runaway field (an
#: unclosed quote over a huge file, a pasted attachment); messages are capped far below it, by
#: truncation (``max_chars``).
CSV_FIELD_LIMIT = 16_000_000

# Signatures of files that are never text, with what to call them.
_SIGNATURES = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook, for example)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document (.xls or .doc)"),
    (b"%PDF-", "a PDF document"), (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"), (b"PAR1", "a Parquet file"),
    (b"SQLite format 3\x00", "an SQLite database"), (b"\x1f\x8b", "a gzip archive"),
    (b"\xfd7zXZ\x00", "an xz archive"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive"), (b"\x7fELF", "a program (ELF)"),
)
# Control bytes that never occur in text files (tab, newline, vertical tab, form feed, carriage
# return and escape do).
_BINARY_BYTES = bytes(b for b in range(32) if b not in (9, 10, 11, 12, 13, 27))


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


def unsupported_type(path: str | os.PathLike, suffixes) -> str:
    """Why `path`'s extension is refused, listing `suffixes`. A ``.txt`` file is not guessed at (it
    may hold commas or tabs): the message says to rename it, and which to when the file's first
    line shows its delimiter."""
    suffix = Path(path).suffix
    if suffix.lower() != ".txt":
        what = f"unsupported file type {suffix!r}" if suffix else "no file extension"
        return f"{what}; use {', '.join(suffixes)}"
    try:
        with open(path, "rb") as fh:
            first = fh.readline(65536)
    except OSError:
        first = b""
    hint = ("; its first line has tabs, so .tsv" if b"\t" in first
            else "; its first line has commas, so .csv" if b"," in first else "")
    return (f"a .txt file may be comma- or tab-separated, so it is not read; rename it to .csv (commas) or .tsv "
            f"(tabs){hint}")


def file_format(path: str | os.PathLike, formats: dict[str, str] = FORMATS) -> str:
    """The format name of `path` by its extension, one of `formats`' values; refused otherwise."""
    fmt = formats.get(Path(path).suffix.lower())
    if fmt is None:
        raise DataFileError(path, unsupported_type(path, formats))
    return fmt


def binary_problem(head: bytes) -> str | None:
    """Why a file whose first bytes are `head` is not a text data file, or None when it is text.

    The rule: a file is binary when it starts with the signature of a known binary format (ZIP
    and .xlsx, old Office, PDF, images, Parquet, SQLite, compressed archives, programs), when it
    is UTF-16 or UTF-32 (a byte-order mark, or NULs in every other byte as UTF-16 text without
    one has), or when NULs and other control bytes that text never holds are more than 5 % of
    the first :data:`SNIFF_BYTES` bytes and at least 16 of them (or, in a tiny file, more than
    30 %). A stray NUL in a row is not enough: that row is read with a space in its place (see
    :func:`clean_nul`).
    """
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return f"is {name}, not text; export the data as UTF-8 CSV, TSV or JSONL"
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "is UTF-32 text; re-save it as UTF-8"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "is UTF-16 text (Excel's \"Unicode Text\" saves this); re-save it as UTF-8 (\"CSV UTF-8\")"
    controls = len(head) - len(head.translate(None, _BINARY_BYTES))
    if controls <= 0.05 * len(head) or (controls < 16 and controls <= 0.3 * len(head)):
        return None  # a few stray control bytes (a NUL in one row of a small file) are not binary
    nuls = head.count(0)
    if nuls >= 0.3 * len(head) and max(head[0::2].count(0), head[1::2].count(0)) >= 0.95 * nuls:
        return "looks like UTF-16 text without a byte-order mark; re-save it as UTF-8"
    return (f"looks binary ({controls / len(head):.0%} of its first {len(head):,} bytes are NUL or other control "
            f"bytes); expected UTF-8 text")


def clean_nul(text: str) -> str:
    """`text` with each NUL character read as a space, as :func:`retrieval.text.normalize` reads every
    control character in a message. Done before parsing, so a NUL in a row neither stops the CSV
    parser nor makes a JSON line invalid; it only separates words, like a space."""
    return text.replace("\x00", " ") if "\x00" in text else text


def allow_large_csv_fields() -> None:
    """Raise the ``csv`` module's per-field limit (process-wide, never lowered) to
    :data:`CSV_FIELD_LIMIT`, so a long message is read and then truncated, not refused."""
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)


def delimiter_problem(header: list[str], fmt: str) -> str | None:
    """Why a CSV or TSV header looks read with the wrong delimiter (one column whose name holds
    another format's delimiter, as ``body,intent`` read as TSV), or None."""
    if len(header) != 1:
        return None
    others = {"csv": (("\t", "tabs", ".tsv"), (";", "semicolons", None)),
              "tsv": ((",", "commas", ".csv"), (";", "semicolons", None))}[fmt]
    for char, name, suffix in others:
        if char in header[0]:
            fix = (f"if its fields are separated by {name}, rename it to {suffix}" if suffix
                   else "save it with commas (.csv) or tabs (.tsv) between fields")
            return (f"the header is one column, {header[0][:80]!r}, holding {name}: the delimiter looks wrong "
                    f"({fmt.upper()} fields are separated by {'commas' if fmt == 'csv' else 'tabs'}); {fix}")
    return None


def read_text(path: str | os.PathLike) -> str:
    """The file decoded as UTF-8 (a BOM is dropped); refuses missing, binary (see
    :func:`binary_problem`) and non-UTF-8 files."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataFileError(path, "file not found") from None
    except IsADirectoryError:
        raise DataFileError(path, "is a directory, expected a file") from None
    problem = binary_problem(raw[:SNIFF_BYTES])
    if problem:
        raise DataFileError(path, problem)
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
    then it is refused, naming the line, the column and both field counts. A NUL byte in a row
    is read as a space (:func:`clean_nul`); a header that is one column holding another format's
    delimiter is refused (:func:`delimiter_problem`).
    """
    path = Path(path)
    fmt = file_format(path)
    text = clean_nul(read_text(path))
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
    allow_large_csv_fields()
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise DataFileError(path, f"malformed header ({exc})", line=1) from None
    if not header:
        raise DataFileError(path, "is empty: no header row", line=1)
    problem = delimiter_problem(header, fmt)
    if problem:
        raise DataFileError(path, problem, line=1)
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
