"""Reading labeled tables (CSV, TSV, JSONL) with errors that name the file, line and field."""

from __future__ import annotations

import os
from dataclasses import dataclass

from retrieval.files import DataFileError, file_format, iter_records
from retrieval.text import TextInputError, prepare

from .taxonomy import HEADS, SENTIMENTS, URGENCY_LEVELS

__all__ = ["DataFileError", "HEAD_LABELS", "LabeledData", "file_format", "iter_records", "label_problem",
           "read_labeled", "text_problem"]

#: The only labels the urgency and sentiment heads accept (intent labels are open-ended).
HEAD_LABELS: dict[str, tuple[str, ...]] = {"urgency": URGENCY_LEVELS, "sentiment": SENTIMENTS}


@dataclass(frozen=True)
class LabeledData:
    """Texts and labels read from one file; `lines` are the 1-based source line numbers."""

    texts: list[str]
    labels: list[str]
    lines: list[int]
    path: str


def _shown(value: object, limit: int = 60) -> str:
    """`value` as repr (so invisible characters show as escapes), cut to about `limit` characters."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"... ({len(value)} characters)"
    return repr(value)


def text_problem(text: object) -> str | None:
    """Why `text` cannot be a training message, by the rule triage applies to every message
    (:func:`retrieval.text.prepare`), or None when it can."""
    try:
        prepare(text)
    except TextInputError as exc:
        return f"text {_shown(text)} is not usable: {exc}"
    return None


def label_problem(head: str, label: object) -> str | None:
    """Why `label` is not a label of `head`, or None when it is (or when the head takes any
    label, as intent does)."""
    allowed = HEAD_LABELS.get(head)
    if allowed is None or label in allowed:
        return None
    close = label.strip().lower() if isinstance(label, str) else None
    fix = f"write it as {close!r}" if close in allowed else "relabel it with one of those"
    return f"{head} label {label!r} is not one of {', '.join(allowed)}; {fix}"


def read_labeled(
    path: str | os.PathLike, text_column: str, label_column: str, *, head: str | None = None
) -> LabeledData:
    """Read (text, label) pairs, refusing missing columns, unusable texts and empty labels and,
    when `head` is given, labels that head does not accept; errors name the file, line and field.

    A text is usable when :func:`retrieval.text.prepare` accepts it (not empty, not only
    whitespace, invisible or control characters, no undecodable characters), as when triaging.
    """
    if head is not None and head not in HEADS:
        raise ValueError(f"unknown head {head!r}; heads are {HEADS}")
    texts, labels, lines = [], [], []
    for number, record in iter_records(path, required=(text_column, label_column)):
        for column in (text_column, label_column):
            if column not in record:
                raise DataFileError(
                    path, f"no column {column!r}; columns are {sorted(record)}", line=number, field=column
                )
        text, label = record[text_column], record[label_column]
        problem = text_problem(text)
        if problem:
            raise DataFileError(
                path, f"{problem}; write the message in this field or delete the row", line=number, field=text_column
            )
        if label is None or (isinstance(label, str) and not label.strip()) or isinstance(label, (dict, list)):
            raise DataFileError(
                path, f"label {label!r} is empty or not a scalar; give each row one label", line=number,
                field=label_column,
            )
        label = str(label).strip()
        problem = label_problem(head, label) if head else None
        if problem:
            raise DataFileError(path, problem, line=number, field=label_column)
        texts.append(text)
        labels.append(label)
        lines.append(number)
    if not texts:
        raise DataFileError(path, "contains no data rows")
    return LabeledData(texts, labels, lines, str(path))
