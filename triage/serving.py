"""Scoring messages with a trained bundle's arrays and numpy alone.

Training needs scikit-learn (vocabulary selection, the SVM solver, cross-validated calibration);
scoring a message needs only what training learned: n-gram vocabularies with their IDF weights,
and per head a weight matrix, intercepts and a temperature. This module is that runtime. It
imports neither scikit-learn, SciPy nor skops, so ``triage.load()`` skips about two seconds of
imports, and the scikit-learn estimators reuse its featurisation so the two can never disagree.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.encoders import get_encoder
from retrieval.text import LANGUAGES, PreparedText, prepare, tokenize

from .entities import ENTITY_TYPES, Entity, extract_entities

SERVING_FILE = "serving.npz"
EMBEDDING_FEATURE = "sentence embedding"
_TERM_SEPARATOR = "\x00"  # never inside a term: prepare() removes control characters
_ANALYZERS = ("char_wb", "word")


def as_prepared(texts: Sequence[str | PreparedText]) -> list[PreparedText]:
    """Prepared texts from raw or prepared ones, raw ones read as :class:`Triage` reads them by
    default (greetings, quoted thread and signature cut); a bare string is refused."""
    if isinstance(texts, str):
        raise TypeError("expected a list of texts, got a single string")
    return [t if isinstance(t, PreparedText) else prepare(t, strip_boilerplate=True) for t in texts]


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a 2-D score array."""
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def two_columns(scores: np.ndarray) -> np.ndarray:
    """Binary linear models score only the positive class (one column); softmax wants two."""
    return np.column_stack([-scores / 2, scores / 2]) if scores.ndim == 1 else scores


def segment_sums(values: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Sums of ``values[ends[i]:ends[i + 1]]`` along the first axis (0 for an empty segment).

    Each segment is summed on its own, so a row's result never depends on the rows batched with it.
    """
    starts = ends[:-1]
    out = np.zeros((len(starts), *values.shape[1:]), dtype=values.dtype)
    filled = ends[1:] > starts
    if filled.any():
        out[filled] = np.add.reduceat(values, starts[filled], axis=0)
    return out


class NgramTfidf:
    """Sublinear TF-IDF over n-grams, each row L2-normalised, with a fixed vocabulary.

    Reproduces scikit-learn's ``TfidfVectorizer(sublinear_tf=True)`` transform for the two
    analyzers the featurizer uses (same n-grams and vocabulary; values agree to float32 rounding).

    Parameters
    ----------
    analyzer : {"char_wb", "word"}
        Character n-grams inside space-padded words, or n-grams of :func:`retrieval.text.tokenize` tokens.
    ngram_range : (int, int)
        Smallest and largest n.
    terms : sequence of str
        The vocabulary, in column order.
    idf : numpy.ndarray
        Inverse document frequency per term, shape ``(len(terms),)``.
    """

    def __init__(self, analyzer: str, ngram_range: tuple[int, int], terms: Sequence[str], idf: np.ndarray) -> None:
        if analyzer not in _ANALYZERS:
            raise ValueError(f"unknown analyzer {analyzer!r}; use one of {_ANALYZERS}")
        idf = np.asarray(idf, dtype=np.float32)
        if idf.shape != (len(terms),):
            raise ValueError(f"idf has shape {idf.shape} for {len(terms)} terms")
        self.analyzer = analyzer
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        self.terms = list(terms)
        self.idf = idf
        self.index = {term: j for j, term in enumerate(self.terms)}
        self._slices: dict[int, list[slice]] = {}
        self._packed: _PackedGrams | None = _PackedGrams.build(self) if analyzer == "char_wb" else None

    def __len__(self) -> int:
        return len(self.terms)

    def ngrams(self, text: str) -> list[str]:
        """The n-grams of `text` (simplified, lower-cased), with repeats."""
        low, high = self.ngram_range
        grams: list[str] = []
        if self.analyzer == "char_wb":
            for word in text.split():
                padded = f" {word} "
                grams += map(padded.__getitem__, self._char_slices(len(padded)))
            return grams
        tokens = tokenize(text)
        for n in range(low, min(high, len(tokens)) + 1):
            grams.extend(tokens if n == 1 else (" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)))
        return grams

    def _char_slices(self, length: int) -> Iterable[slice]:
        """The n-gram slices of a padded word of `length` characters: a list shared by all words
        of up to 64 characters (one C-level map per word instead of a comprehension per n), made
        on the fly for longer ones (a 200,000-character word would need millions)."""
        cached = self._slices.get(length)
        if cached is not None:
            return cached
        low, high = self.ngram_range
        last = next((n for n in range(low, high + 1) if length <= n), None)  # a short word counts once
        slices = chain.from_iterable((slice(i, i + n) for i in range(length - n + 1)) for n in range(low, high + 1)
                                     if last is None or n < last)
        if last is not None:
            slices = chain(slices, (slice(0, length),))
        if length > 64:
            return slices
        self._slices[length] = cached = list(slices)
        return cached

    def occurrences(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The text (index into `texts`) and column of every in-vocabulary n-gram occurrence,
        two int64 arrays (in no particular order); counting them is left to numpy, once per batch."""
        rows, columns = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for start in range(0, len(texts), 256):  # bounds the n-gram strings held at once
            if self._packed is not None:
                found_rows, found_columns = self._packed.occurrences(texts[start : start + 256])
                rows.append(found_rows + start)
                columns.append(found_columns)
                continue
            grams = [self.ngrams(text) for text in texts[start : start + 256]]
            lengths = np.fromiter(map(len, grams), np.int64, len(grams))
            ids = np.fromiter(map(self.index.get, chain.from_iterable(grams), repeat(-1)), np.int64,
                              int(lengths.sum()))
            found = ids >= 0  # -1: out of the vocabulary
            rows.append(np.repeat(np.arange(start, start + len(grams), dtype=np.int64), lengths)[found])
            columns.append(ids[found])
        return np.concatenate(rows), np.concatenate(columns)


class _PackedGrams:
    """Character n-grams found with numpy: the characters of the vocabulary get small codes, an
    n-gram becomes one integer (its n and its codes, packed), and looking the integers up in the
    vocabulary's sorted integers finds the same occurrences as :meth:`NgramTfidf.ngrams` does,
    about four times faster than making and hashing the n-gram strings.

    A character outside the vocabulary gets code 0, which no vocabulary term contains. Needs the
    smallest n to be 1 (then a word shorter than n simply has no n-gram of that length) and the
    codes to fit in 63 bits; :meth:`build` gives None otherwise.
    """

    def __init__(self, code: np.ndarray, bits: int, longest: int) -> None:
        self.code, self.bits, self.longest = code, bits, longest
        self.keys, self.columns = np.zeros(0, np.int64), np.zeros(0, np.int64)  # sorted, and their terms

    @classmethod
    def build(cls, tfidf: NgramTfidf) -> _PackedGrams | None:
        low, high = tfidf.ngram_range
        alphabet = sorted(set("".join(tfidf.terms)))
        bits = max(len(alphabet), 1).bit_length()
        lengths = np.fromiter(map(len, tfidf.terms), np.int64, len(tfidf.terms))
        if low != 1 or high * bits + high.bit_length() > 63:
            return None
        if not len(lengths) or lengths.min() < 1 or lengths.max() > high:  # not a vocabulary of this range
            return None
        code = np.zeros(0x110000, dtype=np.uint16 if bits <= 16 else np.int64)
        code[[ord(ch) for ch in alphabet]] = np.arange(1, len(alphabet) + 1)
        packer = cls(code, bits, high)
        # each term as its own group: its key is that of the window of its length at its start
        keys = packer._window_keys("".join(tfidf.terms), np.repeat(np.arange(len(lengths)), lengths))
        starts = np.cumsum(lengths) - lengths
        term_keys = np.empty(len(lengths), np.int64)
        for n in range(1, high + 1):
            term_keys[lengths == n] = keys[n - 1][starts[lengths == n]]
        packer.columns = np.argsort(term_keys)
        packer.keys = term_keys[packer.columns]
        return packer

    def _window_keys(self, joined: str, group: np.ndarray) -> list[np.ndarray]:
        """Per n, the packed key of the window of n characters at each position of `joined`,
        whose characters belong to the groups (words) numbered in `group`; -1 for a window that
        leaves its group."""
        codes = self.code[np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)]
        out, key = [], np.zeros(len(codes), np.int64)
        for n in range(1, self.longest + 1):
            key = key[: max(len(codes) - n + 1, 0)] << self.bits
            key |= codes[n - 1 :]
            tagged = key | (n << (self.longest * self.bits))
            tagged[group[: len(tagged)] != group[n - 1 :]] = -1
            out.append(tagged)
        return out

    def occurrences(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`NgramTfidf.occurrences`."""
        words = [text.split() for text in texts]
        flat = list(chain.from_iterable(words))
        lengths = np.fromiter((len(w) + 2 for w in flat), np.int64, len(flat))
        text_of_word = np.repeat(np.arange(len(words)), np.fromiter(map(len, words), np.int64, len(words)))
        word = np.repeat(np.arange(len(flat)), lengths)
        rows, columns = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        joined = " " + "  ".join(flat) + " " if flat else ""  # each word as " word "
        for key in self._window_keys(joined, word):
            at = np.searchsorted(self.keys, key).clip(max=len(self.keys) - 1)
            found = np.flatnonzero(self.keys[at] == key)
            rows.append(text_of_word[word[found]])
            columns.append(self.columns[at[found]])
        return np.concatenate(rows), np.concatenate(columns)


@dataclass(frozen=True, eq=False)
class FeatureRows:
    """Feature rows of a batch: a sparse TF-IDF part and a dense part (embedding, indicators).

    Column ``j < n_sparse`` is sparse (CSR arrays `indptr`, `indices`, `data`); column
    ``n_sparse + k`` is ``dense[:, k]``.
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    dense: np.ndarray
    n_sparse: int
    n_embedding: int = 0

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), self.n_sparse + self.dense.shape[1]

    @property
    def embeddings(self) -> np.ndarray:
        """The sentence-embedding columns (the first dense ones), shape ``(n, n_embedding)``."""
        return self.dense[:, : self.n_embedding]

    def matmul(self, weights: np.ndarray) -> np.ndarray:
        """``rows @ weights`` for `weights` of shape ``(n_features, k)``; shape ``(n, k)``."""
        if weights.ndim != 2 or weights.shape[0] != self.shape[1]:
            raise ValueError(f"weights have shape {weights.shape}; these rows need ({self.shape[1]}, k)")
        out = segment_sums(weights[self.indices] * self.data[:, None], self.indptr)
        # einsum, not BLAS: BLAS picks kernels by batch size, so a message's scores would change
        # in the last bits with the messages batched beside it (and rounded outputs could differ).
        out += np.einsum("ij,jk->ik", self.dense, weights[self.n_sparse :])
        return out

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Column ids and values of row `i`'s non-zero features."""
        start, stop = self.indptr[i], self.indptr[i + 1]
        dense_cols = np.flatnonzero(self.dense[i])
        return (np.concatenate([self.indices[start:stop], dense_cols + self.n_sparse]),
                np.concatenate([self.data[start:stop], self.dense[i, dense_cols]]))

    def to_csr(self):
        """The rows as one SciPy CSR matrix (float32), for fitting scikit-learn models."""
        from scipy import sparse

        tfidf = sparse.csr_matrix((self.data, self.indices, self.indptr), shape=(len(self), self.n_sparse))
        out = sparse.hstack([tfidf, sparse.csr_matrix(self.dense)], format="csr", dtype=np.float32)
        out.sort_indices()
        return out


@dataclass(eq=False)
class ServingFeaturizer:
    """Messages to :class:`FeatureRows`: character and word TF-IDF blocks (each L2-normalised),
    the weighted sentence embedding, and weighted entity / language / length indicators."""

    encoder: str
    char: NgramTfidf
    word: NgramTfidf
    embedding_dim: int
    embedding_weight: float = 1.0
    meta_weight: float = 0.5
    _names: list[str] | None = field(default=None, repr=False)

    @property
    def n_meta(self) -> int:
        return len(ENTITY_TYPES) + len(LANGUAGES) + 1 if self.meta_weight else 0

    @property
    def n_features(self) -> int:
        return len(self.char) + len(self.word) + self.embedding_dim + self.n_meta

    def featurize(
        self, texts: Sequence[str | PreparedText], entities: Sequence[Sequence[Entity]] | None = None
    ) -> FeatureRows:
        """Feature rows for `texts`; `entities` are each text's entities when the caller already has
        them (:func:`extract_entities` of its normalised text), so they are not found twice."""
        docs = as_prepared(texts)
        if entities is None:
            entities = [extract_entities(doc.normalized) for doc in docs] if self.meta_weight else []
        elif len(entities) != len(docs):
            raise ValueError(f"got entities for {len(entities)} texts, but {len(docs)} texts")
        # One sorted key per (row, column) with its count: rows in order, char columns before word ones.
        n_char, n_sparse = len(self.char), len(self.char) + len(self.word)
        lowered = [doc.simplified.lower() for doc in docs]
        keys = []
        for offset, block in ((0, self.char), (n_char, self.word)):
            rows, columns = block.occurrences(lowered)
            keys.append(rows * n_sparse + (columns + offset))
        keys, counts = np.unique(np.concatenate(keys), return_counts=True)
        rows, indices = np.divmod(keys, n_sparse)
        idf = np.concatenate([self.char.idf, self.word.idf])
        data = (1.0 + np.log(counts.astype(np.float32))) * idf[indices]
        segments = rows * 2 + (indices >= n_char)  # each block of each row is L2-normalised on its own
        norms = np.sqrt(np.bincount(segments, weights=data.astype(np.float64) ** 2, minlength=2 * len(docs)))
        data /= np.where(norms > 0, norms, 1.0)[segments].astype(np.float32)
        dense = [self._embed(docs)] if self.embedding_dim else []
        if self.meta_weight:
            dense.append(self._meta(docs, entities) * np.float32(self.meta_weight))
        return FeatureRows(indptr=np.searchsorted(rows, np.arange(len(docs) + 1)), indices=indices.astype(np.int32),
                           data=data, dense=np.hstack(dense) if dense else np.zeros((len(docs), 0), np.float32),
                           n_sparse=len(self.char) + len(self.word), n_embedding=self.embedding_dim)

    def _embed(self, docs: list[PreparedText]) -> np.ndarray:
        emb = get_encoder(self.encoder).encode([d.normalized for d in docs])
        if emb.shape[1] != self.embedding_dim:
            raise ValueError(
                f"encoder {self.encoder!r} gives {emb.shape[1]}-d vectors but this model was "
                f"trained with {self.embedding_dim}-d ones; retrain or install the same encoder"
            )
        return emb * np.float32(self.embedding_weight)

    @staticmethod
    def _meta(docs: list[PreparedText], entities: Sequence[Sequence[Entity]]) -> np.ndarray:
        out = np.zeros((len(docs), len(ENTITY_TYPES) + len(LANGUAGES) + 1), dtype=np.float32)
        for i, doc in enumerate(docs):
            for ent in entities[i]:
                out[i, ENTITY_TYPES.index(ent.type)] = 1.0
            out[i, len(ENTITY_TYPES) + LANGUAGES.index(doc.language)] = 1.0
            out[i, -1] = min(math.log1p(len(doc.normalized)) / 8.0, 1.0)
        return out

    def feature_names(self) -> list[str]:
        """Readable names: ``char:快递``, ``word:没到``, ``emb:17``, ``entity:amount``..."""
        if self._names is None:
            names = [f"char:{t}" for t in self.char.terms] + [f"word:{t}" for t in self.word.terms]
            names += [f"emb:{i}" for i in range(self.embedding_dim)]
            if self.meta_weight:
                names += [f"entity:{t}" for t in ENTITY_TYPES] + [f"language:{lang}" for lang in LANGUAGES]
                names.append("length")
            self._names = names
        return self._names


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """`vectors` (2-D) with each row scaled to length 1, float32; all-zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, np.float32(1))


@dataclass(frozen=True, eq=False)
class NeighbourVote:
    """A vote of the `k` training messages closest to a message in sentence-embedding space,
    blended into a head's probabilities as ``(1 - weight) * head + weight * vote``.

    A linear head weighs features one by one; the vote recalls whole phrasings it was taught,
    which helps most on wordings the head's features only half cover (docs/benchmarks.md).
    Neighbours are found by cosine similarity after projecting the embeddings onto their main
    axes; each casts ``exp((cos - best_cos) / temperature)`` for its label.

    Parameters
    ----------
    projection : numpy.ndarray
        Float32, shape ``(embedding_dim, dims)``: the embedding's principal axes on the training set.
    memory : numpy.ndarray
        Float16 (half the bundle's size; scored in float32), shape ``(n_messages, dims)``: each
        training message's projected embedding, unit length.
    labels : numpy.ndarray
        Shape ``(n_messages,)``: each training message's class index into the head's classes.
    k : int
        Neighbours per message (fewer if the memory is smaller).
    temperature : float
        Cosine units: a neighbour 0.03 less similar than the best counts 1/e as much (at 0.03).
    weight : float
        The vote's share of the blended probabilities, in [0, 1].
    blend_temperature : float
        The blend is recalibrated as ``softmax(log(blend) / blend_temperature)``, a temperature
        fitted on out-of-fold blends (the argmax is unchanged).
    """

    projection: np.ndarray
    memory: np.ndarray
    labels: np.ndarray
    k: int = 5
    temperature: float = 0.03
    weight: float = 0.3
    blend_temperature: float = 1.0

    _BLOCK = 64  # neighbours are searched block by block: see neighbours()
    _CHUNK = 128

    def __post_init__(self) -> None:
        if self.projection.ndim != 2 or self.memory.ndim != 2 or self.memory.shape[1] != self.projection.shape[1]:
            raise ValueError(f"vote projection {self.projection.shape} and memory {self.memory.shape} do not fit: "
                             f"expected (embedding_dim, dims) and (n_messages, dims)")
        if self.memory.dtype != np.float16:
            raise ValueError(f"vote memory must be float16, got {self.memory.dtype}")
        if self.labels.shape != (len(self.memory),) or not len(self.memory):
            raise ValueError(f"vote has {len(self.memory)} memory rows and labels of shape {self.labels.shape}")
        if not (self.k >= 1 and self.temperature > 0 and 0.0 <= self.weight <= 1.0 and self.blend_temperature > 0):
            raise ValueError(f"vote needs k >= 1, temperatures > 0 and weight in [0, 1]; got k={self.k}, "
                             f"temperature={self.temperature}, weight={self.weight}, "
                             f"blend_temperature={self.blend_temperature}")
        # Searched in blocks of _BLOCK rows (see neighbours()), padded to whole blocks. Stored
        # interleaved, column j * n_blocks + b holding row j of block b, so that block maxima are
        # an elementwise maximum over contiguous rows (twice as fast as reducing short runs).
        n, dims = self.memory.shape
        n_blocks = -(-n // self._BLOCK)
        padded = np.zeros((n_blocks * self._BLOCK, dims), dtype=np.float32)
        padded[:n] = self.memory
        order = np.arange(len(padded)).reshape(n_blocks, self._BLOCK).T.ravel()  # memory row of each column
        object.__setattr__(self, "_columns", np.ascontiguousarray(padded[order].T))
        object.__setattr__(self, "_column_rows", order)
        object.__setattr__(self, "_padding", np.flatnonzero(order >= n))
        object.__setattr__(self, "_projection", np.asarray(self.projection, dtype=np.float32))

    def __getstate__(self) -> dict:  # the float32 copies are rebuilt on load
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    @property
    def dim(self) -> int:
        return self.projection.shape[0]

    def neighbours(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Memory rows of each message's nearest training messages and their cosine similarity,
        both shape ``(n, min(k, n_messages))``, most similar first."""
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            raise ValueError(f"embeddings have shape {embeddings.shape}; this vote needs (n, {self.dim})")
        n, k = len(embeddings), min(self.k, len(self.memory))
        if n == 0:
            return np.zeros((0, k), np.intp), np.zeros((0, k), np.float32)
        if n > self._CHUNK:  # bounds the similarity matrix at 128 rows (6 MB here)
            parts = [self.neighbours(embeddings[i : i + self._CHUNK]) for i in range(0, n, self._CHUNK)]
            return np.vstack([rows for rows, _ in parts]), np.vstack([sims for _, sims in parts])
        n_blocks = self._columns.shape[1] // self._BLOCK
        sims = unit_rows(embeddings @ self._projection) @ self._columns
        sims[:, self._padding] = -np.inf  # a padding row is never a neighbour
        # Exact top k without sorting every row: the k blocks with the highest maxima hold the k
        # best rows (any row better than the k-th best block maximum lies in one of those blocks).
        block_max = sims.reshape(n, self._BLOCK, n_blocks).max(axis=1)
        if n_blocks > k:
            blocks = np.argpartition(-block_max, k - 1, axis=1)[:, :k]
        else:
            blocks = np.broadcast_to(np.arange(n_blocks), (n, n_blocks))
        columns = (blocks[:, :, None] + np.arange(self._BLOCK) * n_blocks).reshape(n, -1)
        candidates = np.take_along_axis(sims, columns, axis=1)
        top = np.argpartition(-candidates, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(candidates, top, axis=1), axis=1), axis=1)
        return self._column_rows[np.take_along_axis(columns, top, axis=1)], np.take_along_axis(candidates, top, axis=1)

    def proba(self, embeddings: np.ndarray, n_classes: int) -> np.ndarray:
        """The vote alone, shape ``(n, n_classes)``, rows summing to 1."""
        rows, sims = self.neighbours(embeddings)
        votes = np.exp((sims - sims[:, :1]) / self.temperature)
        flat = (np.arange(len(rows))[:, None] * n_classes + self.labels[rows]).ravel()
        out = np.bincount(flat, weights=votes.ravel(), minlength=len(rows) * n_classes).reshape(len(rows), n_classes)
        return out / out.sum(axis=1, keepdims=True)

    def blend(self, proba: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
        """`proba` (a head's, shape ``(n, n_classes)``) blended with the vote and recalibrated."""
        return self.recalibrate(self.mix(proba, self.proba(embeddings, proba.shape[1])))

    def mix(self, proba: np.ndarray, votes: np.ndarray) -> np.ndarray:
        """``(1 - weight) * proba + weight * votes``, before recalibration."""
        return (1.0 - self.weight) * proba + self.weight * votes

    def recalibrate(self, blend: np.ndarray) -> np.ndarray:
        """``softmax(log(blend) / blend_temperature)``; a zero probability stays zero."""
        if self.blend_temperature == 1.0:
            return blend
        with np.errstate(divide="ignore"):
            return softmax(np.log(blend) / self.blend_temperature)


@dataclass(frozen=True, eq=False)
class ServingHead:
    """One head's learned arrays: ``softmax((rows @ coef.T + intercept) / temperature)``,
    blended with a :class:`NeighbourVote` when the head has one.

    `coef` has shape ``(n_classes, n_features)``, or ``(1, n_features)`` for two classes (the
    positive class's score, as scikit-learn's binary linear models give it).
    """

    classes: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    temperature: float = 1.0
    vote: NeighbourVote | None = None

    def __post_init__(self) -> None:
        # Feature-major, so a batch's features gather contiguous rows.
        object.__setattr__(self, "_by_feature", np.ascontiguousarray(self.coef.T))

    @property
    def weights(self) -> np.ndarray:
        """The weights feature-major, shape ``(n_features, n_classes or 1)``: ``rows.matmul(weights)``
        is the product :meth:`proba_from_product` takes."""
        return self._by_feature

    def decision_function(self, rows: FeatureRows) -> np.ndarray:
        """Raw scores, shape ``(n_samples, n_classes)``."""
        return self._scores(rows.matmul(self._by_feature))

    def _scores(self, product: np.ndarray) -> np.ndarray:
        scores = product + self.intercept
        return two_columns(scores[:, 0] if self.coef.shape[0] == 1 else scores)

    def predict_proba(self, rows: FeatureRows) -> np.ndarray:
        """Calibrated probabilities, shape ``(n_samples, n_classes)``, rows summing to 1."""
        return self.proba_from_product(rows.matmul(self._by_feature), rows)

    def proba_from_product(self, product: np.ndarray, rows: FeatureRows) -> np.ndarray:
        """:meth:`predict_proba` given ``rows.matmul(self.weights)`` already computed."""
        proba = softmax(self._scores(product) / self.temperature)
        return proba if self.vote is None else self.vote.blend(proba, rows.embeddings)

    def class_weights(self) -> np.ndarray:
        """Weights per class, shape ``(n_classes, n_features)``, for explanations."""
        return two_columns(self.coef[0]).T if self.coef.shape[0] == 1 else self.coef


class HeadSet:
    """Heads that read the same feature rows, scored with one product over their stacked weights:
    a third faster than a product per head, and equal to the bit."""

    def __init__(self, heads: dict[str, ServingHead]) -> None:
        self.heads = dict(heads)
        self._weights = np.ascontiguousarray(np.hstack([h.weights for h in self.heads.values()]))
        self._bounds = np.cumsum([0, *(h.weights.shape[1] for h in self.heads.values())]).tolist()

    def predict_proba(self, rows: FeatureRows) -> dict[str, np.ndarray]:
        """Each head's :meth:`ServingHead.predict_proba`, by head name."""
        product = rows.matmul(self._weights)
        return {name: head.proba_from_product(product[:, start:stop], rows)
                for (name, head), start, stop in zip(self.heads.items(), self._bounds, self._bounds[1:])}


@dataclass(eq=False)
class ModelParts:
    """A featurizer, the heads that read its features and the manifest describing them: the
    common shape of a bundle's two forms (:class:`triage.bundle.Bundle`, :class:`ServingModel`)."""

    featurizer: Any
    heads: dict[str, Any]
    manifest: dict = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "unversioned"))

    @property
    def encoder(self) -> str:
        return self.featurizer.encoder


class ServingModel(ModelParts):
    """What the runtime needs from a bundle: a :class:`ServingFeaturizer`, :class:`ServingHead`
    objects by head name, and the manifest."""

    featurizer: ServingFeaturizer
    heads: dict[str, ServingHead]

    def save(self, path: str | Path) -> None:
        """Write the arrays to one ``.npz`` (no pickled objects; read back with :meth:`load`)."""
        f = self.featurizer
        config = {"encoder": f.encoder, "char_ngram_range": f.char.ngram_range,
                  "word_ngram_range": f.word.ngram_range, "embedding_dim": f.embedding_dim,
                  "embedding_weight": f.embedding_weight, "meta_weight": f.meta_weight,
                  "heads": {name: {"temperature": h.temperature,
                                   **({"vote": {"k": h.vote.k, "temperature": h.vote.temperature,
                                                "weight": h.vote.weight,
                                                "blend_temperature": h.vote.blend_temperature}} if h.vote else {})}
                            for name, h in self.heads.items()}}
        arrays = {"config": _encode_strings([json.dumps(config)]),
                  "char.terms": _encode_strings(f.char.terms), "char.idf": f.char.idf,
                  "word.terms": _encode_strings(f.word.terms), "word.idf": f.word.idf}
        for name, head in self.heads.items():
            arrays[f"{name}.classes"] = _encode_strings([str(c) for c in head.classes])
            arrays[f"{name}.coef"] = head.coef
            arrays[f"{name}.intercept"] = head.intercept
            if head.vote is not None:
                arrays[f"{name}.vote.projection"] = head.vote.projection
                arrays[f"{name}.vote.memory"] = head.vote.memory
                arrays[f"{name}.vote.labels"] = head.vote.labels
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path, manifest: dict | None = None) -> "ServingModel":
        """Read a file written by :meth:`save` (arrays only: ``allow_pickle=False``)."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
            config = json.loads(_decode_strings(arrays["config"])[0])
            featurizer = ServingFeaturizer(
                encoder=config["encoder"],
                char=NgramTfidf("char_wb", config["char_ngram_range"], _decode_strings(arrays["char.terms"]),
                                arrays["char.idf"]),
                word=NgramTfidf("word", config["word_ngram_range"], _decode_strings(arrays["word.terms"]),
                                arrays["word.idf"]),
                embedding_dim=int(config["embedding_dim"]), embedding_weight=float(config["embedding_weight"]),
                meta_weight=float(config["meta_weight"]),
            )
            heads = {name: ServingHead(classes=np.asarray(_decode_strings(arrays[f"{name}.classes"]), dtype=object),
                                       coef=arrays[f"{name}.coef"], intercept=arrays[f"{name}.intercept"],
                                       temperature=float(spec["temperature"]),
                                       vote=_load_vote(arrays, name, spec["vote"]) if "vote" in spec else None)
                     for name, spec in config["heads"].items()}
        except (KeyError, ValueError, TypeError, IndexError, AttributeError, OSError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path} is not a readable serving file: {exc!r}") from None
        for name, head in heads.items():
            rows = 1 if len(head.classes) == 2 else len(head.classes)
            if head.coef.ndim != 2 or head.coef.shape != (rows, featurizer.n_features) \
                    or head.intercept.shape != (rows,):
                raise ValueError(
                    f"{path}: head {name!r} has weights {head.coef.shape} and intercepts {head.intercept.shape} "
                    f"for {len(head.classes)} classes and {featurizer.n_features} features; expected "
                    f"({rows}, {featurizer.n_features}) and ({rows},). Save the bundle again with save_bundle"
                )
            vote = head.vote
            if vote is not None and (vote.dim != featurizer.embedding_dim
                                     or not 0 <= vote.labels.min() <= vote.labels.max() < len(head.classes)):
                raise ValueError(f"{path}: head {name!r} has a neighbour vote for {vote.dim}-d embeddings and "
                                 f"labels {vote.labels.min()}..{vote.labels.max()}; this featurizer gives "
                                 f"{featurizer.embedding_dim}-d embeddings and the head has {len(head.classes)} labels")
        return cls(featurizer=featurizer, heads=heads, manifest=dict(manifest or {}))


def _load_vote(arrays: dict[str, np.ndarray], head: str, spec: dict) -> NeighbourVote:
    return NeighbourVote(projection=arrays[f"{head}.vote.projection"].astype(np.float32),
                         memory=arrays[f"{head}.vote.memory"], labels=arrays[f"{head}.vote.labels"].astype(np.intp),
                         k=int(spec["k"]), temperature=float(spec["temperature"]), weight=float(spec["weight"]),
                         blend_temperature=float(spec["blend_temperature"]))


def _encode_strings(strings: Sequence[str]) -> np.ndarray:
    bad = next((s for s in strings if _TERM_SEPARATOR in s), None)
    if bad is not None:
        raise ValueError(f"cannot store {bad!r}: it contains a NUL character")
    return np.frombuffer(_TERM_SEPARATOR.join(strings).encode("utf-8"), dtype=np.uint8)


def _decode_strings(blob: np.ndarray) -> list[str]:
    text = blob.tobytes().decode("utf-8")
    return text.split(_TERM_SEPARATOR) if text else []
