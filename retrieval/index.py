"""FAISS inner-product search over unit vectors, addressed by int64 ids that survive removals.

Three layouts share one wrapper:

``"flat"``
    Exact search (``IndexFlatIP``). Right for knowledge bases up to tens of thousands of
    passages: exact, no training, cheap removal.
``"hnsw"``
    ``IndexHNSWFlat``: graph search, no training. FAISS cannot delete from a graph, so removed
    ids are tombstoned, filtered out of results, and the graph is rebuilt once tombstones pass
    a quarter of the index.
``"ivf"``
    ``IndexIVFFlat``: inverted lists, trained on the vectors at build time, real removal.
``"auto"``
    ``flat`` below :data:`AUTO_EXACT_BELOW` vectors, ``hnsw`` from there (measured in
    ``benchmarks/bench_kb_scale.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

KINDS = ("auto", "flat", "hnsw", "ivf")
#: Size at which "auto" leaves exact search: one exact query over 512-d vectors costs about
#: 0.14 ms per thousand vectors on 2 cores (14 ms at 100,000), so up to here it stays near 4 ms
#: (see docs/benchmarks.md).
AUTO_EXACT_BELOW = 30_000
_TOMBSTONE_REBUILD_SHARE = 0.25


@dataclass
class IndexParams:
    """FAISS layout and its knobs.

    Parameters
    ----------
    kind : {"auto", "flat", "hnsw", "ivf"}
    hnsw_m : int
        Graph degree; more is more accurate, slower to build and bigger.
    hnsw_ef_construction, hnsw_ef_search : int
        Beam widths while building and searching.
    ivf_nlist : int or None
        Number of inverted lists; None picks ``sqrt(n)`` at build time (trained on a sample of
        64 vectors per list).
    ivf_nprobe : int
        Lists visited per query.
    """

    kind: str = "auto"
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 64
    ivf_nlist: int | None = None
    ivf_nprobe: int = 16

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"index kind {self.kind!r} is not one of {KINDS}")
        for name in ("hnsw_m", "hnsw_ef_construction", "hnsw_ef_search", "ivf_nprobe"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def _check_vectors(vectors: np.ndarray, dim: int, name: str = "vectors") -> np.ndarray:
    if not isinstance(vectors, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(vectors).__name__}")
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}), got {vectors.shape}")
    if vectors.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got {vectors.dtype}; use .astype(np.float32)")
    if not np.isfinite(vectors).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return np.ascontiguousarray(vectors)


def _check_ids(ids: np.ndarray, n: int) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.shape != (n,) or ids.dtype.kind not in "iu":
        raise ValueError(f"ids must be {n} integers in a 1-d array, got shape {ids.shape} dtype {ids.dtype}")
    if (ids < 0).any():
        raise ValueError("ids must be non-negative (-1 is the 'no result' sentinel)")
    return np.ascontiguousarray(ids, dtype=np.int64)


class VectorIndex:
    """A FAISS index of unit vectors under caller-chosen int64 ids.

    Parameters
    ----------
    dim : int
        Vector length.
    params : IndexParams, optional
        Layout and knobs; the default is ``IndexParams()`` (``"auto"``).
    """

    def __init__(self, dim: int, params: IndexParams | None = None) -> None:
        if int(dim) < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = int(dim)
        self.params = params or IndexParams()
        self._index = None
        self._kind: str | None = None
        self._tombstones: set[int] = set()
        self._live: set[int] = set()

    # -- layout -------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """The layout in use (``flat``, ``hnsw`` or ``ivf``); ``auto`` resolved by size."""
        if self._kind is None:
            return "flat" if self.params.kind in ("auto", "flat") else self.params.kind
        return self._kind

    def _target_kind(self, n: int) -> str:
        if self.params.kind == "auto":
            return "flat" if n < AUTO_EXACT_BELOW else "hnsw"
        return self.params.kind

    def _new_index(self, kind: str, train: np.ndarray | None):
        import faiss

        if kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, self.params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.params.hnsw_ef_construction
            inner.hnsw.efSearch = self.params.hnsw_ef_search
            return faiss.IndexIDMap2(inner)
        n = 0 if train is None else len(train)
        nlist = self.params.ivf_nlist or max(1, min(int(math.sqrt(max(n, 1))), n // 39 or 1))
        if n < nlist:
            raise ValueError(f"an IVF index with {nlist} lists needs at least {nlist} vectors to train, got {n}; "
                             "use kind='flat' for small collections")
        if n > 64 * nlist:  # k-means on a sample: enough for the centroids, minutes less to build
            train = train[np.random.default_rng(0).choice(n, 64 * nlist, replace=False)]
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(train)
        index.nprobe = self.params.ivf_nprobe
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        return index

    def __len__(self) -> int:
        """Live vectors (tombstoned ones excluded)."""
        return len(self._live)

    def _all(self) -> tuple[np.ndarray, np.ndarray]:
        """Every live (id, vector) pair, for a rebuild."""
        ids = np.fromiter(sorted(self._live), np.int64, len(self._live))
        if not len(ids):
            return ids, np.empty((0, self.dim), np.float32)
        return ids, np.ascontiguousarray(self._index.reconstruct_batch(ids), dtype=np.float32)

    def _rebuild(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        kind = self._target_kind(len(ids))
        self._index = self._new_index(kind, vectors if kind == "ivf" else None)
        self._kind = kind
        self._tombstones = set()
        self._live = set(ids.tolist())
        if len(ids):
            self._index.add_with_ids(vectors, ids)

    # -- mutation -----------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under new ids.

        Parameters
        ----------
        ids : numpy.ndarray of int64, shape (n,)
            Non-negative ids not already live in the index.
        vectors : numpy.ndarray of float32, shape (n, dim)
            Unit-norm rows (inner product is cosine similarity).
        """
        vectors = _check_vectors(vectors, self.dim)
        ids = _check_ids(ids, len(vectors))
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids must be unique within one add() call")
        if self._index is None:
            self._rebuild(ids, vectors)
            return
        live = self.contains(ids)
        if live.any():
            raise ValueError(f"ids already in the index: {ids[live][:5].tolist()}; remove them first")
        if self._target_kind(len(self) + len(ids)) != self._kind or self._tombstones & set(ids.tolist()):
            old_ids, old_vecs = self._all()
            self._rebuild(np.concatenate([old_ids, ids]), np.vstack([old_vecs, vectors]))
            return
        self._index.add_with_ids(vectors, ids)
        self._live.update(ids.tolist())

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Boolean mask: which of `ids` are live in the index."""
        live = self._live
        return np.fromiter((int(i) in live for i in np.asarray(ids).ravel()), bool, np.asarray(ids).size)

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids (unknown ids are ignored); returns how many were removed."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        live = ids[self.contains(ids)]
        if not len(live):
            return 0
        self._live.difference_update(live.tolist())
        if not self._live:  # nothing left: start again from an empty index
            self._index, self._kind, self._tombstones = None, None, set()
            return len(live)
        if self.kind == "hnsw":
            self._tombstones.update(live.tolist())
            if len(self._tombstones) > _TOMBSTONE_REBUILD_SHARE * self._index.ntotal:
                self._rebuild(*self._all())
        else:
            import faiss

            self._index.remove_ids(faiss.IDSelectorArray(live) if self.kind == "ivf" else faiss.IDSelectorBatch(live))
            if self._target_kind(len(self)) != self._kind:
                self._rebuild(*self._all())
        return len(live)

    # -- search -------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` nearest live vectors by inner product.

        Parameters
        ----------
        queries : numpy.ndarray of float32, shape (m, dim)
        k : int
            Results per query.

        Returns
        -------
        scores : numpy.ndarray of float32, shape (m, k)
            Inner products, best first; ``-inf`` where fewer than `k` results exist.
        ids : numpy.ndarray of int64, shape (m, k)
            Matching ids; ``-1`` marks a missing result.
        """
        queries = _check_vectors(queries, self.dim, "queries")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        m = len(queries)
        out_scores = np.full((m, k), -np.inf, np.float32)
        out_ids = np.full((m, k), -1, np.int64)
        if self._index is None or len(self) == 0:
            return out_scores, out_ids
        fetch = min(self._index.ntotal, k + len(self._tombstones))
        scores, ids = self._index.search(queries, fetch)
        if self._tombstones:
            dead = np.isin(ids, np.fromiter(self._tombstones, np.int64, len(self._tombstones)))
            ids = np.where(dead, -1, ids)
        for row in range(m):
            keep = ids[row] >= 0
            n = min(k, int(keep.sum()))
            out_scores[row, :n] = scores[row][keep][:n]
            out_ids[row, :n] = ids[row][keep][:n]
        return out_scores, out_ids

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the FAISS index to `path` (tombstones are compacted first)."""
        import faiss

        if self._tombstones:
            self._rebuild(*self._all())
        index = self._index if self._index is not None else self._new_index("flat", None)
        faiss.write_index(index, str(path))

    @classmethod
    def load(cls, path: str | Path, params: IndexParams) -> VectorIndex:
        import faiss

        index = faiss.read_index(str(path))
        self = cls(index.d, params)
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = params.ivf_nprobe
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
            self._kind = "ivf"
        else:
            index = faiss.downcast_index(index) if not isinstance(index, faiss.IndexIDMap2) else index
            inner = faiss.downcast_index(index.index)
            if isinstance(inner, faiss.IndexHNSW):
                inner.hnsw.efSearch = params.hnsw_ef_search
                self._kind = "hnsw"
            else:
                self._kind = "flat"
            index.index = inner
        self._index = index if index.ntotal else None
        if self._index is None:
            self._kind = None
        elif self._kind == "ivf":
            invlists = index.invlists
            self._live = {int(i) for lst in range(invlists.nlist)
                          for i in faiss.rev_swig_ptr(invlists.get_ids(lst), invlists.list_size(lst))}
        else:
            self._live = set(faiss.vector_to_array(index.id_map).tolist())
        return self
