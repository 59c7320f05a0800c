"""Knowledge-base entries: the schema, validation and the JSONL, CSV and Markdown loaders.

A file is validated completely before anything uses it: the first bad row raises a
:class:`~retrieval.files.DataFileError` naming the file, line and field, and nothing is built or
written from a bad file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from .files import DataFileError, iter_records, read_text

#: Languages an entry can be written in.
ENTRY_LANGUAGES = ("zh", "en")
MAX_QUESTION_CHARS = 1_000
MAX_ANSWER_CHARS = 10_000
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
#: ``{order_number}``-style placeholders; doubled braces are literal.
PLACEHOLDER_RE = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
_BILINGUAL_FIELDS = ("question_zh", "question_en", "answer_zh", "answer_en")
_COMMON_FIELDS = ("id", "intent", "category", "tags", "slots", "metadata", "updated_at")
KNOWN_FIELDS = frozenset(_COMMON_FIELDS + _BILINGUAL_FIELDS + ("lang", "question", "answer"))
#: Separator for several values in one CSV cell (questions, tags, slots).
CSV_LIST_SEPARATOR = "|"
KB_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".tsv", ".md", ".markdown")


class EntryError(ValueError):
    """One entry is invalid; `field` names the offending field."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True, eq=True)
class KBEntry:
    """One knowledge-base answer, in one or both languages.

    Attributes
    ----------
    id : str
        Stable identifier; search results and index operations use it.
    questions : dict
        ``{"zh": (...), "en": (...)}``: the canonical question first, then alternatives. A
        language may be absent.
    answers : dict
        ``{"zh": str, "en": str}``; at least one language.
    intent, category : str or None
        Labels used by filters and by the triage intent boost.
    slots : tuple of str
        Placeholder names (``{order_number}``) the answers use; declared so drafting can fill
        or drop them.
    """

    id: str
    questions: dict[str, tuple[str, ...]]
    answers: dict[str, str]
    intent: str | None = None
    category: str | None = None
    tags: tuple[str, ...] = ()
    slots: tuple[str, ...] = ()
    metadata: dict = field(default_factory=dict)
    updated_at: str | None = None

    @property
    def languages(self) -> tuple[str, ...]:
        """Languages the entry has an answer in."""
        return tuple(lang for lang in ENTRY_LANGUAGES if lang in self.answers)

    def answer(self, lang: str) -> str:
        """The answer in `lang`, or in the other language when the entry has only that one."""
        return self.answers.get(lang) or next(iter(self.answers.values()))

    def to_dict(self) -> dict:
        """The record form the loaders read (bilingual, or monolingual with ``lang``)."""
        langs = sorted(set(self.questions) | set(self.answers), key=ENTRY_LANGUAGES.index)
        record: dict = {"id": self.id, "intent": self.intent, "category": self.category}
        if len(langs) == 1:
            record.update(lang=langs[0], question=list(self.questions.get(langs[0], ())),
                          answer=self.answers.get(langs[0]))
        else:
            for lang in ENTRY_LANGUAGES:
                if lang in self.questions:
                    record[f"question_{lang}"] = list(self.questions[lang])
                if lang in self.answers:
                    record[f"answer_{lang}"] = self.answers[lang]
        record.update(tags=list(self.tags), slots=list(self.slots), metadata=dict(self.metadata),
                      updated_at=self.updated_at)
        return {key: value for key, value in record.items() if value not in (None, [], {})}


def _text(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str):
        raise EntryError(f"expected text, got {type(value).__name__}", name)
    text = value.strip()
    if not text:
        raise EntryError("is empty", name)
    if "\x00" in text or "\ufffd" in text:
        raise EntryError("contains NUL or U+FFFD replacement characters (undecodable text); re-save the source as UTF-8", name)
    if len(text) > limit:
        raise EntryError(f"is {len(text)} characters long; the limit is {limit}", name)
    return text


def _text_list(value: object, name: str, limit: int, *, split: bool) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(CSV_LIST_SEPARATOR) if split else [value]
    if not isinstance(value, (list, tuple)):
        raise EntryError(f"expected text or a list of texts, got {type(value).__name__}", name)
    return tuple(_text(item, name, limit) for item in value if not (isinstance(item, str) and not item.strip()))


def entry_from_record(record: Mapping, *, taxonomy: Mapping[str, str] | None = None,
                      split_lists: bool = False) -> KBEntry:
    """Validate one record and build its entry.

    Parameters
    ----------
    record : mapping
        Bilingual (``question_zh``, ``question_en``, ``answer_zh``, ``answer_en``) or monolingual
        (``lang``, ``question``, ``answer``) form, plus ``id``, ``intent``, ``category``,
        ``tags``, ``slots``, ``metadata``, ``updated_at``. Empty values count as missing.
    taxonomy : mapping, optional
        ``intent -> category``. When given, the intent is required and must be one of its keys,
        and a missing category is filled from it.
    split_lists : bool
        Split text cells on ``|`` into several values (CSV cells).

    Raises
    ------
    EntryError
        Naming the field and what is wrong with it.
    """
    record = {k: v for k, v in record.items() if v is not None and not (isinstance(v, str) and not v.strip())}
    unknown = sorted(set(record) - KNOWN_FIELDS)
    if unknown:
        raise EntryError(f"unknown field(s) {unknown}; known fields are {sorted(KNOWN_FIELDS)}", unknown[0])
    if "id" not in record:
        raise EntryError("is missing; every entry needs a unique id", "id")
    entry_id = record["id"]
    if not isinstance(entry_id, str) or not _ID_RE.match(entry_id.strip()):
        raise EntryError(
            f"{entry_id!r} is not a valid id: use 1-128 letters, digits and _ . : / - "
            "starting with a letter or digit", "id")
    questions: dict[str, tuple[str, ...]] = {}
    answers: dict[str, str] = {}
    if "lang" in record or "question" in record or "answer" in record:
        bilingual = [name for name in _BILINGUAL_FIELDS if name in record]
        if bilingual:
            raise EntryError("mixes the monolingual form (lang/question/answer) with the bilingual "
                             "form; use one of them", bilingual[0])
        lang = record.get("lang")
        if lang not in ENTRY_LANGUAGES:
            raise EntryError(f"{lang!r} is not a supported language; use one of {ENTRY_LANGUAGES}", "lang")
        if "question" in record:
            questions[lang] = _text_list(record["question"], "question", MAX_QUESTION_CHARS, split=split_lists)
        if "answer" in record:
            answers[lang] = _text(record["answer"], "answer", MAX_ANSWER_CHARS)
    else:
        for lang in ENTRY_LANGUAGES:
            if f"question_{lang}" in record:
                name = f"question_{lang}"
                questions[lang] = _text_list(record[name], name, MAX_QUESTION_CHARS, split=split_lists)
            if f"answer_{lang}" in record:
                answers[lang] = _text(record[f"answer_{lang}"], f"answer_{lang}", MAX_ANSWER_CHARS)
    questions = {lang: qs for lang, qs in questions.items() if qs}
    if not answers:
        raise EntryError("the entry has no answer; give answer_zh and/or answer_en (or lang + answer)", "answer")
    if not questions:
        raise EntryError("the entry has no question; give question_zh and/or question_en (or lang + question)",
                         "question")

    intent = record.get("intent")
    category = record.get("category")
    for name, value in (("intent", intent), ("category", category)):
        if value is not None and not isinstance(value, str):
            raise EntryError(f"expected text, got {type(value).__name__}", name)
    intent = intent.strip() if intent else None
    category = category.strip() if category else None
    if taxonomy is not None:
        if intent is None:
            raise EntryError("is missing; this knowledge base requires an intent per entry", "intent")
        if intent not in taxonomy:
            raise EntryError(f"unknown intent {intent!r}; expected one of {sorted(taxonomy)}", "intent")
        if category is None:
            category = taxonomy[intent]
        elif category != taxonomy[intent]:
            raise EntryError(f"category {category!r} does not match intent {intent!r} "
                             f"(its category is {taxonomy[intent]!r})", "category")

    tags = _text_list(record.get("tags", ()), "tags", 100, split=True)
    slots = _text_list(record.get("slots", ()), "slots", 100, split=True)
    for slot in slots:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", slot):
            raise EntryError(f"slot name {slot!r} is not an identifier", "slots")
    used = {name for text in answers.values() for name in PLACEHOLDER_RE.findall(text)}
    undeclared = sorted(used - set(slots))
    if undeclared:
        raise EntryError(f"answer uses placeholder(s) {undeclared} that are not declared in slots", "slots")
    unused = sorted(set(slots) - used)
    if unused:
        raise EntryError(f"slot(s) {unused} are declared but no answer uses them", "slots")

    metadata = record.get("metadata", {})
    if isinstance(metadata, str) and split_lists:
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError as exc:
            raise EntryError(f"is not valid JSON ({exc.msg})", "metadata") from None
    if not isinstance(metadata, dict):
        raise EntryError(f"expected an object, got {type(metadata).__name__}", "metadata")
    updated_at = record.get("updated_at")
    if updated_at is not None:
        if not isinstance(updated_at, str):
            raise EntryError(f"expected an ISO date string, got {type(updated_at).__name__}", "updated_at")
        try:
            (date if len(updated_at.strip()) == 10 else datetime).fromisoformat(updated_at.strip())
        except ValueError:
            raise EntryError(f"{updated_at!r} is not an ISO date such as 2026-10-01", "updated_at") from None
        updated_at = updated_at.strip()
    return KBEntry(id=entry_id.strip(), questions=questions, answers=answers, intent=intent,
                   category=category, tags=tags, slots=slots, metadata=metadata, updated_at=updated_at)


def _markdown_records(path: Path) -> Iterable[tuple[int, dict]]:
    """Markdown FAQ: ``#`` headings name a category, ``##``/``###`` headings are questions
    (alternatives separated by ``|``), the text below is the answer. ``key: value`` lines right
    under a question set ``id``, ``intent``, ``tags``, ``slots`` or ``updated_at``."""
    category = None
    current: dict | None = None
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        line = line.rstrip("\r")
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if heading:
            if current is not None:
                yield current.pop("_line"), current
                current = None
            if len(heading.group(1)) == 1:
                category = heading.group(2) or None
                continue
            current = {"_line": number, "_questions": heading.group(2), "_answer": [], "category": category}
            continue
        if current is None:
            continue
        meta = re.match(r"^(id|intent|tags|slots|updated_at)\s*:\s*(.+)$", line.strip())
        if meta and not any(part.strip() for part in current["_answer"]):
            current[meta.group(1)] = meta.group(2).strip()
            continue
        current["_answer"].append(line)
    if current is not None:
        yield current.pop("_line"), current


def _from_markdown(raw: dict) -> dict:
    questions = [q.strip() for q in raw.pop("_questions").split(CSV_LIST_SEPARATOR) if q.strip()]
    answer = "\n".join(raw.pop("_answer")).strip()
    sample = "".join(questions) + answer
    lang = "zh" if re.search(r"[\u4e00-\u9fff]", sample) else "en"
    if "id" not in raw:
        raw["id"] = "md-" + hashlib.sha1("|".join(questions).encode()).hexdigest()[:12]
    return {**raw, "lang": lang, "question": questions, "answer": answer}


def load_entries(path: str | os.PathLike, *, taxonomy: Mapping[str, str] | None = None,
                 allow_empty: bool = False) -> list[KBEntry]:
    """Read and validate every entry of a JSONL, CSV, TSV or Markdown file, or of every such file
    in a directory (sorted by name).

    Raises
    ------
    DataFileError
        For a path that does not exist, an unreadable file, a bad entry (file, line and field
        named) or an id used twice.
    """
    path = Path(path)
    if not path.exists():
        raise DataFileError(path, "does not exist; check the path (a knowledge-base file "
                                  f"({', '.join(KB_SUFFIXES)}), a directory of them, or a directory built by "
                                  "`triage kb build`)")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in KB_SUFFIXES)
        if not files:
            raise DataFileError(path, f"directory has no knowledge-base files ({', '.join(KB_SUFFIXES)}) and is "
                                      "not a knowledge base built by `triage kb build` (no CURRENT file)")
    else:
        files = [path]
    entries: list[KBEntry] = []
    seen: dict[str, str] = {}
    for file in files:
        suffix = file.suffix.lower()
        if suffix not in KB_SUFFIXES:
            raise DataFileError(file, f"unsupported knowledge-base file type {suffix!r}; use {', '.join(KB_SUFFIXES)}")
        markdown = suffix in (".md", ".markdown")
        rows = _markdown_records(file) if markdown else iter_records(file)
        count = 0
        for number, record in rows:
            try:
                entry = entry_from_record(_from_markdown(record) if markdown else record, taxonomy=taxonomy,
                                          split_lists=suffix in (".csv", ".tsv"))
            except EntryError as exc:
                raise DataFileError(file, str(exc), line=number, field=exc.field) from None
            if entry.id in seen:
                raise DataFileError(file, f"duplicate id {entry.id!r} (first used at {seen[entry.id]})",
                                    line=number, field="id")
            seen[entry.id] = f"{file.name} line {number}"
            entries.append(entry)
            count += 1
        if count == 0 and not allow_empty:
            raise DataFileError(file, "contains no entries")
    return entries


def write_entries_jsonl(entries: Iterable[KBEntry], out: io.TextIOBase) -> None:
    """Write entries in the JSONL form :func:`load_entries` reads."""
    for entry in entries:
        out.write(json.dumps(entry.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")

