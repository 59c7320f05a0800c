"""Text normalisation, script detection and tokenisation shared by triage and retrieval.

Everything here is deterministic and cheap; the heavy resources (OpenCC tables, the jieba
dictionary) load once, on first use.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from . import boilerplate
from .files import read_cached, sha256_file, write_cached

#: Default cap on message length, in characters (after decoding, before normalisation).
DEFAULT_MAX_CHARS = 20_000

LANGUAGES = ("zh-Hans", "zh-Hant", "en", "mixed", "unknown")

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN_RE = re.compile(f"[{_HAN}]")
# Latin words, not letters glued to digits (SF1403928475612 is a tracking number, not English).
_LATIN_WORD_RE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][A-Za-z'’]+(?![A-Za-z0-9])")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")  # never valid in text; marks bytes that failed to decode
_SPACE_RE = re.compile(r"[ \t\u00a0\u3000]+")
_NEWLINES_RE = re.compile(r"\n{3,}")


class TextInputError(ValueError):
    """A message that cannot be processed (None, empty, not text, undecodable)."""


@dataclass(frozen=True)
class PreparedText:
    """A message as the models see it; `original` is kept untouched for replies and display.

    Attributes
    ----------
    original : str
        The text as received (decoded), before any change.
    normalized : str
        NFKC, half-width, control characters removed, whitespace collapsed; script unchanged.
    simplified : str
        `normalized` with traditional Chinese converted to simplified (features and search).
    language : str
        One of :data:`LANGUAGES`.
    truncated : bool
        True when the text was longer than the cap and only its head was kept.
    boilerplate_chars : int
        Characters of greetings, thanks, quoted email history, signature and mail-app footer
        left out of `normalized` (see :func:`retrieval.boilerplate.strip_boilerplate`); 0 when none were.
    """

    original: str
    normalized: str
    simplified: str
    language: str
    truncated: bool = False
    boilerplate_chars: int = 0


@functools.lru_cache(maxsize=None)  # four configs at most; building one takes about 10 ms
def _opencc(config: str):
    import opencc

    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    """Traditional to simplified Chinese (OpenCC ``t2s``); other scripts pass through."""
    if not _HAN_RE.search(text):
        return text
    return _opencc("t2s").convert(text)


# Conversions OpenCC gets wrong in shop talk (发卡银行 is a card issuer, not a hair clip).
_TRADITIONAL_FIXES = (("髮卡", "發卡"), ("隻看", "只看"), ("隻能", "只能"), ("隻有", "只有"), ("隻是", "只是"))


def to_traditional(text: str, variant: str = "t") -> str:
    """Simplified to traditional Chinese; `variant` is ``"t"``, ``"tw"`` (Taiwan) or ``"hk"``."""
    config = {"t": "s2t", "tw": "s2twp", "hk": "s2hk"}.get(variant)
    if config is None:
        raise ValueError(f"unknown traditional variant {variant!r}; use 't', 'tw' or 'hk'")
    out = _opencc(config).convert(text)
    for wrong, right in _TRADITIONAL_FIXES:
        out = out.replace(wrong, right)
    return out


def decode(data: bytes | str, *, encoding: str = "utf-8") -> str:
    """Decode bytes strictly; undecodable input is refused, never silently mangled."""
    if isinstance(data, str):
        bad = _SURROGATE_RE.search(data)
        if bad:  # bytes decoded with errors="surrogateescape" upstream: still undecodable
            raise TextInputError(
                f"message has an undecodable character (lone surrogate U+{ord(bad.group()):04X} at offset "
                f"{bad.start()}); decode the text with its real encoding (for example gb18030 or big5) first"
            )
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            return bytes(data).decode(encoding)
        except UnicodeDecodeError as exc:
            raise TextInputError(
                f"message bytes are not valid {encoding} (bad byte at offset {exc.start}); "
                f"decode the text with its real encoding (for example gb18030 or big5) first"
            ) from None
    raise TextInputError(f"message must be str or bytes, got {type(data).__name__}")


def has_undecodable(text: str) -> bool:
    """True if `text` holds lone surrogates: bytes that failed to decode (``errors="surrogateescape"``)."""
    return _SURROGATE_RE.search(text) is not None


def _clean_char(ch: str) -> str:
    category = unicodedata.category(ch)
    if category == "Cf":
        return ""  # zero-width and direction marks: invisible, would split words
    if category[0] == "C" and ch not in "\n\t":
        return " "
    return ch


def normalize(text: str) -> str:
    """NFKC (which also folds full-width ASCII), drop control characters, collapse spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.replace("\n", "").replace("\t", "").isprintable():  # else no category C char to clean
        text = "".join(_clean_char(ch) for ch in text)
    text = _SPACE_RE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _NEWLINES_RE.sub("\n\n", text).strip()


def detect_language(text: str) -> str:
    """Classify the script of a normalised message.

    Chinese characters count half a word each (a Chinese word is about two characters), Latin
    words one each; when the smaller side is at least a fifth of the whole the message is
    ``"mixed"`` (code-switched). Chinese is ``"zh-Hant"`` when more of its characters change
    under traditional-to-simplified conversion than under the reverse.
    """
    han = _HAN_RE.findall(text)
    words = _LATIN_WORD_RE.findall(text)
    if not han and not words:
        return "unknown"
    han_units, word_units = len(han) / 2, len(words)
    if han and words and min(han_units, word_units) / (han_units + word_units) >= 0.2:
        return "mixed"
    if han_units >= word_units:
        return _chinese_script("".join(han))
    return "en"


def _chinese_script(han: str) -> str:
    simplified = _opencc("t2s").convert(han)
    if simplified == han:  # nothing changes to simplified: not more than to traditional
        return "zh-Hans"
    to_s = sum(a != b for a, b in zip(han, simplified))
    to_t = sum(a != b for a, b in zip(han, _opencc("s2t").convert(han)))
    return "zh-Hant" if to_s > to_t else "zh-Hans"


def prepare(text: object, *, max_chars: int = DEFAULT_MAX_CHARS, strip_boilerplate: bool = False) -> PreparedText:
    """Validate, decode, cap and normalise one message.

    With `strip_boilerplate`, only the customer's request is kept (the cap applies
    first, so a long thread's newest reply, at its top, survives it).

    Raises
    ------
    TextInputError
        For None, non-text values, undecodable bytes, and text that is empty after
        normalisation. The message says which of these it was.
    """
    if text is None:
        raise TextInputError("message is None; pass the message text as a string")
    original = decode(text)  # type: ignore[arg-type]
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    # Leading blanks do not count against the cap, and the cap applies again after NFKC,
    # which can expand a character many times (U+FDFA becomes 18).
    body = original.lstrip()
    normalized = normalize(body[:max_chars])
    truncated = len(body) > max_chars or len(normalized) > max_chars
    normalized = normalized[:max_chars]
    if not normalized:
        kind = "empty" if not original else "whitespace or control characters only"
        raise TextInputError(f"message is {kind}; there is nothing to triage (pass the message text, or skip it)")
    boilerplate_chars = 0
    if strip_boilerplate:
        normalized, boilerplate_chars = boilerplate.strip_boilerplate(normalized)
    return PreparedText(
        original=original,
        normalized=normalized,
        simplified=to_simplified(normalized),
        language=detect_language(normalized),
        truncated=truncated,
        boilerplate_chars=boilerplate_chars,
    )


#: Mixed text that tokenizer caches must segment exactly as a freshly built tokenizer does.
TOKENIZER_PROBE = "Where is my parcel? 我的快递三天了还没到，訂單 #A1234 退款到账了吗 😡"


@functools.lru_cache(maxsize=1)
def _jieba_state():
    """jieba with its dictionary loaded, from our cache when it can be, and whether that
    dictionary is jieba's default one.

    jieba keeps its own cache but reads it with ``marshal.load`` on a file object, object by
    object (about 1 s); the same tables read from bytes take about 0.35 s. The cache is keyed by
    jieba's version and dictionary file and checked on a probe text.
    """
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    if jieba.dt.initialized or jieba.dt.dictionary is not None:
        jieba.initialize()  # the application set jieba up (own dictionary or words): leave it be
        return jieba, False
    dictionary = Path(jieba.__file__).parent / jieba.DEFAULT_DICT_NAME
    key = hashlib.sha256(f"{jieba.__version__}:{sha256_file(dictionary)}".encode()).hexdigest()[:16]
    cached = read_cached("jieba-dictionary", key)
    if cached is not None:
        try:
            with jieba.dt.lock:
                jieba.dt.FREQ, jieba.dt.total, probe = cached
                jieba.dt.initialized = True
            if jieba.lcut(TOKENIZER_PROBE) == probe:
                return jieba, True
        except Exception:  # noqa: BLE001 - any damage in a cache file means: build the tables
            pass
        jieba.dt.initialized = False
    jieba.initialize()
    write_cached("jieba-dictionary", key, (jieba.dt.FREQ, jieba.dt.total, jieba.lcut(TOKENIZER_PROBE)))
    return jieba, True


@functools.lru_cache(maxsize=1)
def _segment():
    """``jieba.lcut`` for the default dictionary, with blocks of Chinese characters cut by rjieba.

    jieba cuts a text block by block (runs of Chinese, Latin letters, digits and ``+#&._%-``;
    everything else one character at a time) and each block alone. rjieba (jieba-rs, compiled)
    gives the same words as jieba for blocks of Chinese characters only, checked on all 14,812
    such blocks in the project's data, in about a thirtieth of the time; elsewhere it splits
    differently ("0987-221-305" stays whole), so every other block goes to jieba, remembered
    because they repeat (English words, digits). Plain jieba when rjieba is missing or the
    application has set jieba up with its own dictionary: rjieba only knows the default one.
    """
    jieba, default_dictionary = _jieba_state()
    try:
        if not default_dictionary:
            raise ImportError("jieba has the application's dictionary")
        import rjieba
    except ImportError:
        return jieba.lcut
    blocks = jieba.re_han_default  # jieba's own block pattern, so blocks end where jieba's do
    chinese = re.compile("[\u4E00-\u9FD5]+")
    other = functools.lru_cache(maxsize=16384)(lambda block: tuple(jieba.lcut(block)))

    def segment(text: str) -> list[str]:
        words: list[str] = []
        for block in blocks.split(text):
            if block:
                words.extend(rjieba.cut(block, hmm=True) if chinese.fullmatch(block) else other(block))
        return words

    return segment if segment(TOKENIZER_PROBE) == jieba.lcut(TOKENIZER_PROBE) else jieba.lcut


def warm_up() -> None:
    """Load the jieba dictionaries and the OpenCC tables now rather than on the first message."""
    _segment()
    for config in ("t2s", "s2t"):
        _opencc(config)


def tokenize(text: str, *, segmenter=None) -> list[str]:
    """Word tokens for mixed Chinese/English text: jieba for Chinese, lower-cased Latin words.

    Expects normalised, simplified text. Punctuation and whitespace are dropped. `segmenter` is a
    ``jieba.Tokenizer`` with a user dictionary; the default is jieba's global one.
    """
    tokens = []
    for tok in segmenter.lcut(text) if segmenter else _segment()(text):
        tok = tok.strip().lower()
        if tok and (tok[0].isalnum() or _HAN_RE.match(tok)):
            tokens.append(tok)
    return tokens

