"""Bilingual reply drafts built from parts: greeting, empathy, the knowledge-base answer with its
slots filled, the next step or escalation, closing.

The composer never invents facts: the only facts in a draft come from a knowledge-base entry, and
with no good entry the draft is a holding reply flagged ``needs_human``. No ``{placeholder}``
reaches a draft: template parts fall back to variants without it, and a knowledge-base sentence
that needs a slot the message does not give is dropped, or replaced by a visible marker listed in
``missing_slots`` when nothing would be left.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from retrieval.schema import PLACEHOLDER_RE, KBEntry
from retrieval.search import SearchResult
from retrieval.text import to_traditional

from .templates import TEMPLATE_LANGUAGES, TemplateSet, fill, load_templates, placeholders

if TYPE_CHECKING:
    from ..results import TriageResult

_SENTENCE_RE = {"zh": re.compile(r"(?<=[。！？；!?])"), "en": re.compile(r"(?<=[.!?])\s+")}
# Characters written in Hong Kong Cantonese and rarely elsewhere: reply with HK phrasing.
_CANTONESE_RE = re.compile(r"[嘅咗唔係冇喺啲嗰咁佢哋嚟]")
_SLOT_LABELS = {
    "zh": {"order_number": "订单号", "tracking_number": "运单号", "amount": "金额", "date": "日期",
           "customer_name": "称呼"},
    "en": {"order_number": "order number", "tracking_number": "tracking number", "amount": "amount",
           "date": "date", "customer_name": "name"},
}
_MARKER = {"zh": "【请填写{label}】", "en": "[fill in {label}]"}
# "请把运单号 {tracking_number} 发给我们" reads fine without the value: the noun is already there.
_NAMED_BEFORE = {
    "order_number": r"(?:订单号?|\border(?: number| no\.?)?)",
    "tracking_number": r"(?:运单号|快递单号|单号|\btracking number)",
}
# An English noun needs a determiner once its value is gone ("for order ." -> "for your order.").
_EN_DETERMINER_RE = re.compile(r"\b(?:the|your|a|an|this|that|these|those|each|both|its|our|their|my|his|her)"
                               r"\s+(?:[\w-]+\s+)?$", re.IGNORECASE)
# After these, a Chinese noun would end the clause bare ("关于订单。"): the slot is marked instead.
_ZH_CLAUSE_END = "。！？；!?;：:）)」』】”"


def _drop_named_value(sentence: str, name: str, lang: str) -> str:
    """`sentence` without the value of each ``{name}`` that directly follows its noun
    ("send us the tracking number {tracking_number} and ..." -> "send us the tracking number
    and ..."), kept grammatical: an English noun without a determiner gets "your" ("for order
    {order_number}." -> "for your order."), and no space is left before punctuation. A Chinese
    noun that would end its clause ("关于订单{order_number}。") keeps the placeholder, which the
    caller turns into a visible marker."""
    pattern = re.compile(rf"({_NAMED_BEFORE[name]})\s*\{{{name}\}}[ \t]*", re.IGNORECASE)

    def replace(match: re.Match) -> str:
        noun, rest = match.group(1), sentence[match.end():]
        if lang != "en":
            return match.group(0) if not rest or rest[0] in _ZH_CLAUSE_END else noun
        if not _EN_DETERMINER_RE.search(sentence[:match.start()]):
            noun = ("Your " if noun[0].isupper() else "your ") + noun[0].lower() + noun[1:]
        return noun if not rest or not (rest[0].isalnum() or rest[0] in "([\"'“‘") else noun + " "

    return pattern.sub(replace, sentence)


@dataclass(frozen=True)
class Draft:
    """A reply for an agent to accept, edit or reject.

    Attributes
    ----------
    id : str
        Pass it to ``Triage.feedback`` with what the agent did.
    zh, en : str
        The reply in Chinese (in the customer's script: traditional for a traditional-Chinese
        customer, with Taiwan or Hong Kong phrasing) and in English.
    primary_language : str
        The customer's language and script (``zh-Hans``, ``zh-Hant`` or ``en``).
    kb_ids : tuple of str
        Knowledge-base entries the reply uses (empty for a holding reply).
    needs_human : bool
        A person must handle the case (critical, no good answer, asked for a person, ...);
        `reasons` says why.
    missing_slots : tuple of str
        Slots shown as visible markers for the agent to fill.
    generator : str
        ``"template"``, or the generator whose polished text passed the checks.
    """

    id: str
    zh: str
    en: str
    primary_language: str
    kb_ids: tuple[str, ...]
    needs_human: bool
    missing_slots: tuple[str, ...]
    tone: str
    reasons: tuple[str, ...] = ()
    generator: str = "template"
    generator_notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def primary(self) -> str:
        """The reply in the customer's language."""
        return self.en if self.primary_language == "en" else self.zh

    def text(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh

    def to_dict(self) -> dict:
        return {"id": self.id, "primary_language": self.primary_language, "primary": self.primary,
                "zh": self.zh, "en": self.en, "kb_ids": list(self.kb_ids), "needs_human": self.needs_human,
                "missing_slots": list(self.missing_slots), "tone": self.tone, "reasons": list(self.reasons),
                "generator": self.generator, "generator_notes": list(self.generator_notes)}


def default_templates_dir() -> Path:
    from ..pipeline import require_shipped

    return require_shipped("_data/templates", "data/templates", "the reply templates")


def tone_of(result: TriageResult) -> str:
    """apologetic for an upset or urgent customer, warm for a happy one, neutral otherwise."""
    if result.sentiment.label == "negative" or result.urgency.level in ("critical", "high") \
            or result.intent.label == "complaint":
        return "apologetic"
    return "warm" if result.sentiment.label == "positive" else "neutral"


def _format_due(due: datetime, lang: str, tz: ZoneInfo) -> str:
    local = (due if due.tzinfo else due.replace(tzinfo=timezone.utc)).astimezone(tz)
    offset = local.strftime("%z")
    offset = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    if lang == "zh":
        return f"{local.month}月{local.day}日 {local:%H:%M}"
    return f"{local:%b} {local.day}, {local:%H:%M} ({offset})"


class Drafter:
    """Composes drafts from templates (``data/templates/<lang>.yaml``) and knowledge-base hits.

    Parameters
    ----------
    templates : path, optional
        Directory with ``zh.yaml`` and ``en.yaml``; default: the shipped set.
    timezone : str
        Zone in which deadlines are written in the reply.
    generator : Generator, optional
        Polishes the template drafts (see :mod:`triage.drafting.generators`); its output is
        used only when it passes the checks.
    low_confidence : float
        When triage abstains or the search is unsure (a knowledge gap, or its top hit is of
        another intent), the best answer of triage's intent is still used, flagged
        ``needs_human``, down to this search confidence in [0, 1]; below it the draft is a
        holding reply.
    pool : int
        Search hits the drafter chooses from (``assist`` searches at least this deep and still
        returns its `k`): an answer of the triage intent is often just below the top three.
    """

    name = "template"

    def __init__(self, templates: str | Path | None = None, *, timezone: str = "Asia/Shanghai",
                 generator=None, low_confidence: float = 0.1, pool: int = 10) -> None:
        if not 0.0 <= low_confidence <= 1.0:
            raise ValueError(f"low_confidence must be in [0, 1], got {low_confidence}")
        if pool < 1:
            raise ValueError(f"pool must be at least 1, got {pool}")
        self.templates_dir = templates
        self.low_confidence = low_confidence
        self.pool = pool
        self.timezone = ZoneInfo(timezone)
        self.generator = generator
        self._sets: dict[str, TemplateSet] | None = None

    def warm_up(self) -> Drafter:
        if self._sets is None:
            directory = Path(self.templates_dir) if self.templates_dir else default_templates_dir()
            self._sets = {lang: load_templates(directory / f"{lang}.yaml", lang) for lang in TEMPLATE_LANGUAGES}
        return self

    # ------------------------------------------------------------------ parts
    @staticmethod
    def _pick(variants: tuple[str, ...], slots: dict[str, str]) -> str:
        for variant in variants:
            if placeholders(variant) <= slots.keys():
                return fill(variant, slots)
        return ""

    @staticmethod
    def _answer(entry: KBEntry, lang: str, slots: dict[str, str], missing: list[str]) -> str:
        """The entry's answer in `lang` with slots filled. A sentence that needs a slot the
        message does not give is dropped when it states no number (nothing factual is lost);
        otherwise the slot becomes a visible marker for the agent, listed in `missing`."""
        text = entry.answer(lang)
        source_lang = lang if lang in entry.answers else next(iter(entry.answers))
        unknown = set(PLACEHOLDER_RE.findall(text)) - slots.keys()
        if unknown:
            sentences = [s for s in _SENTENCE_RE[source_lang].split(text) if s.strip()]
            droppable = [bool(set(PLACEHOLDER_RE.findall(s)) & unknown) and not re.search(r"\d", PLACEHOLDER_RE.sub("", s))
                         for s in sentences]
            if all(droppable):  # dropping would leave no answer: mark instead
                droppable = [False] * len(sentences)
            kept = []
            for sentence, drop in zip(sentences, droppable):
                if drop:
                    continue
                needs = set(PLACEHOLDER_RE.findall(sentence)) & unknown
                for name in sorted(needs):
                    if name in _NAMED_BEFORE:
                        sentence = _drop_named_value(sentence, name, source_lang)
                        if "{" + name + "}" not in sentence:
                            continue
                    missing.append(name)
                    label = _SLOT_LABELS[source_lang].get(name, name)
                    sentence = sentence.replace("{" + name + "}", _MARKER[source_lang].format(label=label))
                kept.append(sentence.strip())
            text = ("" if source_lang == "zh" else " ").join(kept)
        return PLACEHOLDER_RE.sub(lambda m: slots[m.group(1)], text)

    def _compose_one(self, lang: str, result: TriageResult, entry: KBEntry | None, tone: str,
                     slots: dict[str, str], missing: list[str]) -> str:
        assert self._sets is not None
        t = self._sets[lang]
        intent = result.intent.label
        body = [self._pick(t.variants("empathy", tone), slots)]
        if entry is not None:
            body += [self._pick(t.variants("intro", intent), slots), self._answer(entry, lang, slots, missing),
                     self._pick(t.variants("next_step", intent), slots)]
        else:
            body.append(self._pick(t.variants("holding", "default"), slots))
        if result.urgency.level in ("critical", "high"):
            body.append(self._pick(t.variants("escalation", result.urgency.level), slots))
        glue = "" if lang == "zh" else " "
        lines = [self._pick(t.variants("greeting", tone), slots), glue.join(p for p in body if p),
                 self._pick(t.variants("closing", tone), slots)]
        return ("\n" if lang == "zh" else "\n\n").join(line for line in lines if line)

    # ------------------------------------------------------------------ public
    def compose(self, result: TriageResult, answers: SearchResult, *, customer_name: str | None = None) -> Draft:
        """Draft replies in both languages for a triaged message and its knowledge-base answers."""
        self.warm_up()
        tone = tone_of(result)
        reasons: list[str] = []
        entry = self._choose_entry(result, answers, reasons)
        if result.urgency.level == "critical":
            reasons.append("critical urgency")
        if result.intent.abstained:
            reasons.append("intent uncertain")
        if result.intent.label == "human_agent":
            reasons.append("customer asked for a person")
        customer_lang = "en" if result.language == "en" else "zh"
        if entry is not None and customer_lang not in entry.answers:
            reasons.append(f"the answer exists only in {'Chinese' if customer_lang == 'en' else 'English'}")
        drafts, missing_by_lang = {}, {}
        for lang in TEMPLATE_LANGUAGES:
            slots = self._slots(result, lang, customer_name)
            missing: list[str] = []
            drafts[lang] = self._compose_one(lang, result, entry, tone, slots, missing)
            missing_by_lang[lang] = missing
        if result.language == "zh-Hant":
            drafts["zh"] = to_traditional(drafts["zh"], "hk" if _CANTONESE_RE.search(result.text) else "tw")
        missing = tuple(sorted(set(missing_by_lang["zh"]) | set(missing_by_lang["en"])))
        if missing:
            reasons.append(f"fill in {', '.join(missing)}")
        for lang, text in drafts.items():
            left = PLACEHOLDER_RE.search(text)
            if left:  # a bug, not a user error: refuse rather than send it
                raise RuntimeError(f"unfilled placeholder {left.group(0)} in the {lang} draft")
        primary_language = result.language if result.language in ("zh-Hans", "zh-Hant", "en") else \
            ("en" if customer_lang == "en" else "zh-Hans")
        draft = Draft(id=uuid.uuid4().hex, zh=drafts["zh"], en=drafts["en"], primary_language=primary_language,
                      kb_ids=(entry.id,) if entry is not None else (), needs_human=bool(reasons),
                      missing_slots=missing, tone=tone, reasons=tuple(reasons))
        if self.generator is not None:
            draft = self.generator.polish(draft)
        return draft

    def _choose_entry(self, result: TriageResult, answers: SearchResult, reasons: list[str]) -> KBEntry | None:
        """The best hit of triage's intent: unflagged when triage is sure and it is also the
        search's confident top hit, flagged for a check otherwise (down to a search confidence of
        `low_confidence`). Without such a hit, the top hit when the search is confident;
        otherwise none (a holding reply).

        Triage ranks intents better than the search ranks entries (it is trained on messages,
        the search matches them to a few questions per entry), so on disagreement its intent
        wins, even its best guess when it abstains: on the held-out messages that guess is right
        more often than the search's top hit, and the flag sends the draft to a person either way.
        """
        hits = answers.hits[: self.pool]
        match = next((h for h in hits if h.entry.intent == result.intent.label), None)
        if match is not None and match is hits[0] and not answers.knowledge_gap and not result.intent.abstained:
            return match.entry
        if match is not None and answers.confidence >= self.low_confidence:
            reasons.append("low-confidence answer: check that it fits")
            return match.entry
        if hits and not answers.knowledge_gap:
            return hits[0].entry
        reasons.append("no good knowledge-base answer")
        return None

    def _slots(self, result: TriageResult, lang: str, customer_name: str | None) -> dict[str, str]:
        slots: dict[str, str] = {}
        for entity in result.entities:
            if entity.type in ("order_number", "tracking_number") and entity.type not in slots:
                slots[entity.type] = entity.value.get("number", entity.text)
            elif entity.type in ("amount", "date") and entity.type not in slots:
                slots[entity.type] = entity.text
        if customer_name and customer_name.strip():
            slots["customer_name"] = customer_name.strip()
        # Values are data, not template text: braces in them must not read as placeholders.
        slots = {k: v.replace("{", "｛").replace("}", "｝") for k, v in slots.items()}
        slots["due_time"] = _format_due(result.urgency.due, lang, self.timezone)
        return slots

