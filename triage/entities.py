"""Entities in customer messages (order and tracking numbers, amounts, phones, emails, dates).

They are model features, reply slots (issue: drafting) and the basis of PII masking. Patterns are
written for the formats Chinese and international shops use; offsets refer to the text passed in.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import asdict, dataclass, field

ENTITY_TYPES = ("order_number", "tracking_number", "amount", "phone", "email", "date", "card_number")


@dataclass(frozen=True)
class Entity:
    """A span of the message.

    Attributes
    ----------
    type : str
        One of :data:`ENTITY_TYPES`.
    text : str
        The span as written.
    start, end : int
        Character offsets into the text the entity was found in (end exclusive).
    value : dict
        Normalised value: ``{"amount": 299.0, "currency": "CNY"}`` for amounts,
        ``{"number": ...}`` for order, tracking and phone numbers, ``{}`` otherwise. Treat it as
        read-only: entities are cached and shared between results for the same text.
    """

    type: str
    text: str
    start: int
    end: int
    value: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


_CURRENCY_PREFIX = {
    "¥": "CNY", "￥": "CNY", "rmb": "CNY", "cny": "CNY", "us$": "USD", "usd": "USD", "$": "USD",
    "hk$": "HKD", "hkd": "HKD", "nt$": "TWD", "ntd": "TWD", "twd": "TWD", "s$": "SGD", "sgd": "SGD",
    "rm": "MYR", "myr": "MYR", "€": "EUR", "eur": "EUR", "£": "GBP", "gbp": "GBP", "₱": "PHP",
    "php": "PHP", "rp": "IDR", "฿": "THB",
}
_CURRENCY_SUFFIX = {
    "元": "CNY", "块钱": "CNY", "rmb": "CNY", "人民币": "CNY", "港币": "HKD",
    "港元": "HKD", "台币": "TWD", "新台币": "TWD", "美元": "USD", "美金": "USD", "usd": "USD",
    "dollars": "USD", "bucks": "USD", "eur": "EUR", "euros": "EUR", "sgd": "SGD", "myr": "MYR",
    "ringgit": "MYR", "hkd": "HKD",
}
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?"
_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)


def _alternation(keys) -> str:
    return "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))


_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("email", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    # Tracking numbers: courier prefixes (SF, YT, JT, ZTO, JD...), UPS 1Z, or after a keyword.
    ("tracking_number", re.compile(
        r"(?<![A-Za-z0-9])(?:SF|YT|JT|ZTO|STO|YD|JD|JDV|EMS|DHL|LP|CN)\d{10,16}(?![A-Za-z0-9])"
        r"|(?<![A-Za-z0-9])1Z[0-9A-Z]{16}(?![A-Za-z0-9])"
        r"|(?:运单号|快递单号|物流单号|運單號|快遞單號|tracking\s*(?:number|no\.?|#)?)\s*[:：#]?\s*"
        r"(?P<tn>[A-Za-z0-9]{8,22})", re.IGNORECASE)),
    # Order numbers: Amazon 3-7-7, Shopee date+code, long digit runs, or after a keyword.
    ("order_number", re.compile(
        r"(?<![\d-])\d{3}-\d{7}-\d{7}(?![\d-])"
        r"|(?<![A-Za-z0-9])\d{6}(?=[A-Z0-9]{0,7}[A-Z])[A-Z0-9]{8}(?![A-Za-z0-9])"
        r"|(?:订单号?|訂單號?|单号|單號|order\s*(?:number|no\.?|id|#)?|#)\s*[:：#]?\s*"
        r"(?P<on>[A-Za-z0-9-]{5,24})(?![A-Za-z0-9])"
        r"|(?<![\d+])(?!(?:86)?1[3-9]\d{9}(?!\d))\d{12,19}(?!\d)", re.IGNORECASE)),
    ("phone", re.compile(
        r"(?<![\d+])(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)"
        r"|(?<![\d+])\+\d{1,3}[- ]?\d{2,4}[- ]?\d{3,4}(?:[- ]?\d{3,4})?(?!\d)"
        r"|(?<!\d)0\d{2,3}-\d{7,8}(?!\d)"
        r"|(?<![\d+])09\d{2}[- ]?\d{3}[- ]?\d{3}(?!\d)")),  # Taiwan mobile: 0912-345-678
    ("amount", re.compile(
        # A letter prefix must start a word ("inform 5" is not RM 5); 块 is also a measure word
        # (2块蛋糕), so it counts as money only when no Chinese character follows.
        rf"(?<![A-Za-z])(?P<cur1>{_alternation(_CURRENCY_PREFIX)})\s?(?P<num1>{_NUM})"
        rf"|(?P<num2>{_NUM})\s?(?P<cur2>{_alternation(_CURRENCY_SUFFIX)})(?![A-Za-z])"
        rf"|(?P<num3>{_NUM})\s?块(?![\u4e00-\u9fff])", re.IGNORECASE)),
    ("date", re.compile(
        r"\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}[日号號]?"
        r"|\d{1,2}月\d{1,2}[日号號]"
        r"|(?:大?前天|昨天|今天|明天|后天|後天|上周[一二三四五六日天]?|上個?星期[一二三四五六日天]|下周[一二三四五六日天]?)"
        r"|\b(?:yesterday|today|tomorrow|(?:last|next|this)\s+(?:mon|tues|wednes|thurs|fri|satur|sun)day"
        r"|(?:last|next|this)\s+week)\b"
        rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS})\b"
        rf"|\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b",
        re.IGNORECASE)),
]

# Card numbers are only masked, never used as features or slots: 13-19 digits passing Luhn,
# unless an order keyword stands right before them.
_CARD_RE = re.compile(r"(?<![\d+])(?:\d[ -]?){12,18}\d(?!\d)")
_ORDER_KEYWORD_RE = re.compile(r"(?:订单|訂單|单号|單號|order)\s*(?:no\.?|number|#)?\s*[:：#]?\s*$", re.IGNORECASE)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _value(kind: str, match: re.Match) -> tuple[dict, int, int]:
    start, end = match.span()
    groups = match.groupdict()
    if kind == "amount":
        num = groups.get("num1") or groups.get("num2") or groups.get("num3") or "0"
        if groups.get("cur1"):
            currency = _CURRENCY_PREFIX[groups["cur1"].lower()]
        elif groups.get("cur2"):
            currency = _CURRENCY_SUFFIX[groups["cur2"].lower()]
        else:
            currency = "CNY"  # 块
        return {"amount": float(num.replace(",", "")), "currency": currency}, start, end
    if kind in ("order_number", "tracking_number"):
        key = "on" if kind == "order_number" else "tn"
        if groups.get(key):
            start, end = match.span(key)
            return {"number": groups[key]}, start, end
        return {"number": match.group(0)}, start, end
    if kind == "phone":
        return {"number": re.sub(r"[^\d+]", "", match.group(0))}, start, end
    return {}, start, end


@functools.lru_cache(maxsize=4096)
def extract_entities(text: str) -> tuple[Entity, ...]:
    """Non-overlapping entities in `text`, in order of position.

    Earlier patterns win overlaps (an email's digits are not a phone number; a tracking number
    is not also an order number). Cached: the featurizer and the result builder both ask for the
    same message's entities, and the result is immutable.
    """
    taken: list[tuple[int, int]] = []
    found: list[Entity] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            value, start, end = _value(kind, match)
            if kind == "order_number" and not any(c.isdigit() for c in text[start:end]):
                continue  # "order number: pending" is not an order number
            if any(start < b and a < end for a, b in taken):
                continue
            taken.append((start, end))
            found.append(Entity(kind, text[start:end], start, end, value))
    found.sort(key=lambda e: e.start)
    return tuple(found)


_MASKS = {"email": "[EMAIL]", "phone": "[PHONE]", "card_number": "[CARD]"}


def _fold_width(text: str) -> str:
    """`text` with each character that NFKC maps to one character (full-width letters, digits
    and punctuation) replaced by that character: NFKC's folding without changing any offset."""
    out = []
    for ch in text:
        folded = unicodedata.normalize("NFKC", ch) if ord(ch) > 0x7F else ch
        out.append(folded if len(folded) == 1 else ch)
    return "".join(out)


def mask_pii(text: str, types: tuple[str, ...] = ("email", "phone", "card_number")) -> str:
    """Replace personal data with placeholders such as ``[EMAIL]``, ``[PHONE]``, ``[CARD]``.

    Card numbers are recognised by length and the Luhn checksum, so order numbers survive.
    Full-width characters (１３８…, ａｂｃ＠ｑｑ．ｃｏｍ) are recognised too and masked in place;
    the rest of the text is returned as it was.
    """
    if isinstance(types, str):
        raise TypeError(f"types must be a tuple of entity types, e.g. ({types!r},), not a string")
    unknown = set(types) - set(_MASKS)
    if unknown:
        raise ValueError(f"cannot mask {sorted(unknown)}; maskable types are {sorted(_MASKS)}")
    folded = _fold_width(text)  # same length as `text`, so its offsets are the text's
    spans: list[tuple[int, int, str]] = []
    if "card_number" in types:
        for m in _CARD_RE.finditer(folded):
            digits = re.sub(r"\D", "", m.group(0))
            after_order_keyword = _ORDER_KEYWORD_RE.search(folded[max(0, m.start() - 8) : m.start()])
            if 13 <= len(digits) <= 19 and _luhn_ok(digits) and not after_order_keyword:
                spans.append((m.start(), m.end(), _MASKS["card_number"]))
    for ent in extract_entities(folded):
        if ent.type in types and not any(ent.start < b and a < ent.end for a, b, _ in spans):
            spans.append((ent.start, ent.end, _MASKS[ent.type]))
    for start, end, mask in sorted(spans, reverse=True):
        text = text[:start] + mask + text[end:]
    return text
