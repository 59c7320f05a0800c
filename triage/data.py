"""Reading labeled tables (CSV, TSV, JSONL) with errors that name the file, line and field."""

from __future__ import annotations

import os
from dataclasses import dataclass

from retrieval.files import DataFileError, file_format, iter_records

__all__ = ["DataFileError", "LabeledData", "file_format", "iter_records", "read_labeled"]


@dataclass(frozen=True)
class LabeledData:
    """Texts and labels read from one file; `lines` are the 1-based source line numbers."""

    texts: list[str]
    labels: list[str]
    lines: list[int]
    path: str


def read_labeled(path: str | os.PathLike, text_column: str, label_column: str) -> LabeledData:
    """Read (text, label) pairs; refuses missing columns and empty cells, naming line and field."""
    texts, labels, lines = [], [], []
    for number, record in iter_records(path):
        for column in (text_column, label_column):
            if column not in record:
                raise DataFileError(
                    path, f"no column {column!r}; columns are {sorted(record)}", line=number, field=column
                )
        text, label = record[text_column], record[label_column]
        if not isinstance(text, str) or not text.strip():
            raise DataFileError(path, "text is empty or not a string", line=number, field=text_column)
        if label is None or (isinstance(label, str) and not label.strip()) or isinstance(label, (dict, list)):
            raise DataFileError(path, f"label {label!r} is empty or not a scalar", line=number, field=label_column)
        texts.append(text)
        labels.append(str(label).strip())
        lines.append(number)
    if not texts:
        raise DataFileError(path, "contains no data rows")
    return LabeledData(texts, labels, lines, str(path))
