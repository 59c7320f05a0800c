"""Reply templates: data files a support team edits, validated when loaded.

One YAML file per language (``zh.yaml``, ``en.yaml``) with the parts of a reply. Every leaf is a
list of variants; the composer takes the first variant whose placeholders it can fill, so a
template never leaks an unfilled ``{placeholder}``. Braces only ever write a placeholder: any
other brace, doubled braces included, is refused when the file is loaded. See
``data/templates/`` for the shipped set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from retrieval.files import DataFileError, read_text

from ..taxonomy import INTENTS, URGENCY_LEVELS

TONES = ("apologetic", "neutral", "warm")
TEMPLATE_LANGUAGES = ("zh", "en")
#: Placeholders a template may use.
TEMPLATE_SLOTS = ("customer_name", "order_number", "tracking_number", "amount", "date", "due_time")
# Anything in single braces counts, so a typo such as {order number} is caught, not sent.
_PLACEHOLDER_RE = re.compile(r"(?<!\{)\{([^{}]*)\}(?!\})")
#: Section -> the keys it must have.
_SECTIONS: dict[str, tuple[str, ...]] = {
    "greeting": TONES,
    "empathy": TONES,
    "intro": INTENTS,
    "next_step": INTENTS,
    "escalation": ("critical", "high"),
    "holding": ("default",),
    "closing": TONES,
}


@dataclass(frozen=True)
class TemplateSet:
    """The validated templates of one language: ``parts[section][key] -> tuple of variants``."""

    language: str
    parts: dict[str, dict[str, tuple[str, ...]]]
    path: str

    def variants(self, section: str, key: str) -> tuple[str, ...]:
        return self.parts[section].get(key, ())


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER_RE.findall(text))


def fill(text: str, slots: dict[str, str]) -> str:
    """`text` with each ``{name}`` replaced by ``slots[name]`` (no other brace syntax: loading
    refuses any other brace, so what a team writes is what the customer reads)."""
    return _PLACEHOLDER_RE.sub(lambda m: slots[m.group(1)], text)


def _excerpt(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_templates(path: str | os.PathLike, language: str) -> TemplateSet:
    """Load and validate one language's template file.

    Raises
    ------
    DataFileError
        Naming the file and the template (``section.key``) for a missing section or key, a
        variant that is not text, an unknown placeholder, a brace that is not part of a
        ``{placeholder}`` (doubled braces such as ``{{CODE}}`` included: they are not an escape
        here), or a list whose last variant needs a placeholder (so there is always a variant
        that can be used).
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataFileError(path, f"invalid YAML ({getattr(exc, 'problem', exc)})",
                            line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise DataFileError(path, "expected a mapping of sections (greeting, empathy, intro, ...)")
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise DataFileError(path, f"unknown section(s) {unknown}; sections are {sorted(_SECTIONS)}")
    parts: dict[str, dict[str, tuple[str, ...]]] = {}
    for section, keys in _SECTIONS.items():
        block = data.get(section)
        if not isinstance(block, dict):
            raise DataFileError(path, f"section {section!r} is missing or not a mapping", field=section)
        missing = [k for k in keys if k not in block]
        if missing:
            raise DataFileError(path, f"section {section!r} lacks key(s) {missing}", field=section)
        extra = sorted(set(block) - set(keys))
        if extra:
            raise DataFileError(path, f"section {section!r} has unknown key(s) {extra}; expected {list(keys)}",
                                field=section)
        parts[section] = {}
        for key, variants in block.items():
            name = f"{section}.{key}"
            if variants is None:
                variants = []
            if not isinstance(variants, list) or not all(isinstance(v, str) and v.strip() for v in variants):
                raise DataFileError(path, "expected a list of non-empty texts", field=name)
            for n, variant in enumerate(variants):
                stray = _PLACEHOLDER_RE.sub("", variant)
                if "{" in stray or "}" in stray:
                    raise DataFileError(path, f"variant {n + 1} has braces that are not a {{placeholder}}: "
                                              f"{_excerpt(variant)!r}. Braces in a template only write a "
                                              f"placeholder such as {{order_number}}; doubled braces ({{{{...}}}}) "
                                              "and single { or } are not allowed, write the text without them",
                                        field=name)
                bad = sorted(placeholders(variant) - set(TEMPLATE_SLOTS))
                if bad:
                    raise DataFileError(path, f"unknown placeholder(s) {bad} in variant {n + 1}; "
                                              f"templates may use {list(TEMPLATE_SLOTS)}", field=name)
            if variants and placeholders(variants[-1]):
                raise DataFileError(path, "the last variant must need no placeholder, so one always fits",
                                    field=name)
            parts[section][key] = tuple(v.strip() for v in variants)
    for level in URGENCY_LEVELS[:2]:
        if not parts["escalation"].get(level):
            raise DataFileError(path, f"escalation.{level} needs at least one variant", field=f"escalation.{level}")
    if not parts["holding"]["default"]:
        raise DataFileError(path, "holding.default needs at least one variant", field="holding.default")
    return TemplateSet(language, parts, str(path))
