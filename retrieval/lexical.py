"""BM25 over jieba words (Chinese) and lightly stemmed words (English), with Chinese character
bigrams as a fallback for words jieba splits differently in the query and the entry."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from .text import tokenize

_HAN_RUN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{2,}")
_EN_STOP = frozenset(
    "a an the to of for in on at is are was were be been am i me my we our you your it its this that "
    "and or but if so do does did can could would should will have has had with from by as not no "
    "what when where how why which who there here please pls hi hello thanks thank just get got".split()
)
_ZH_STOP = frozenset("的 了 吗 呢 吧 啊 呀 哦 嘛 么 我 你 您 他 她 是 在 有 和 就 都 也 还 这 那 个 请问 一下 亲".split())


def _stem(word: str) -> str:
    """Crude English suffix stripping: enough to match refund/refunds/refunded."""
    for suffix, repl in (("'s", ""), ("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)] + repl
    return word


@functools.lru_cache(maxsize=8)
def _user_tokenizer(words: tuple[str, ...]):
    """A private jieba tokenizer with the user's words, so the global one (used by the triage
    features) is never changed."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    for word in words:
        tokenizer.add_word(word)
    return tokenizer


def analyze(text: str, *, char_bigrams: bool = True, user_words: tuple[str, ...] = ()) -> list[str]:
    """BM25 terms of normalised, simplified text (stop words dropped)."""
    words = tokenize(text, segmenter=_user_tokenizer(user_words) if user_words else None)
    terms = []
    for word in words:
        if word.isascii():
            if word not in _EN_STOP:
                terms.append(_stem(word))
        elif word not in _ZH_STOP:
            terms.append(word)
    if char_bigrams:
        for run in _HAN_RUN_RE.findall(text):
            terms.extend("#" + run[i : i + 2] for i in range(len(run) - 1))
    return terms


class BM25Index:
    """Okapi BM25 over documents keyed by id; documents can be added and removed.

    Parameters
    ----------
    k1, b : float
        The usual BM25 saturation and length-normalisation constants.
    char_bigrams : bool
        Also index Chinese character bigrams (a fallback when segmentation differs).
    user_words : sequence of str
        Extra words for the jieba dictionary (product names, brand terms); saved with the index.
    """

    def __init__(self, *, k1: float = 1.2, b: float = 0.75, char_bigrams: bool = True,
                 user_words: Sequence[str] = ()) -> None:
        self.k1 = k1
        self.b = b
        self.char_bigrams = char_bigrams
        self.user_words = tuple(user_words)
        self._docs: dict[str, Counter] = {}
        self._state = None  # (matrix, vocab, ids), published as one tuple so readers never mix builds

    def params(self) -> dict:
        return {"k1": self.k1, "b": self.b, "char_bigrams": self.char_bigrams, "user_words": list(self.user_words)}

    def _terms(self, text: str) -> list[str]:
        return analyze(text, char_bigrams=self.char_bigrams, user_words=self.user_words)

    def add(self, items: Iterable[tuple[str, str]]) -> None:
        """Add or replace ``(id, text)`` documents."""
        for doc_id, text in items:
            self._docs[doc_id] = Counter(self._terms(text))
        self._state = None

    def remove(self, ids: Iterable[str]) -> None:
        for doc_id in ids:
            self._docs.pop(doc_id, None)
        self._state = None

    def __len__(self) -> int:
        return len(self._docs)

    def _build(self) -> tuple:
        from scipy import sparse  # here, so importing the library (and serving triage) does not load SciPy

        ids = list(self._docs)
        vocab: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        for row, doc_id in enumerate(ids):
            for term, tf in self._docs[doc_id].items():
                rows.append(row)
                cols.append(vocab.setdefault(term, len(vocab)))
                tfs.append(tf)
        n = len(ids)
        tf = sparse.csr_matrix((np.asarray(tfs, np.float32), (rows, cols)), shape=(n, len(vocab)))
        lengths = np.asarray(tf.sum(axis=1)).ravel()
        avg = lengths.mean() if n else 1.0
        df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=len(vocab))
        idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        # Precompute the per-(doc, term) BM25 weight so a query is one sparse mat-vec.
        norm = self.k1 * (1 - self.b + self.b * lengths / max(avg, 1e-9))
        tf = tf.tocoo()
        weights = tf.data * (self.k1 + 1) / (tf.data + norm[tf.row]) * idf[tf.col]
        matrix = sparse.csc_matrix((weights.astype(np.float32), (tf.row, tf.col)), shape=tf.shape)
        return matrix, vocab, np.asarray(ids, dtype=object)

    def scores(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """BM25 score of every document with at least one query term.

        Returns
        -------
        ids : numpy.ndarray of object
            Document ids.
        scores : numpy.ndarray of float32
            Matching BM25 scores (> 0), unsorted.
        """
        state = self._state
        if state is None:
            state = self._state = self._build()
        matrix, vocab, all_ids = state
        counts = Counter(t for t in self._terms(text) if t in vocab)
        if not counts:
            return np.empty(0, dtype=object), np.empty(0, dtype=np.float32)
        cols = [vocab[t] for t in counts]
        sub = matrix[:, cols]
        scores = sub @ np.fromiter(counts.values(), dtype=np.float32, count=len(cols))
        hit = np.flatnonzero(scores > 0)
        return all_ids[hit], scores[hit].astype(np.float32)
