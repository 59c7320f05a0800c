"""Late fusion: two models' scores for the same labels, added with one weight chosen on held-out data.

A fine-tuned transformer and a TF-IDF linear model make different mistakes: on ChnSentiCorp their
sum beat both (docs/benchmarks.md). Each model's scores are centred per row and divided by their
spread on the held-out data, so the weight means the same whatever the models' score ranges.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _centred(scores: np.ndarray, name: str, n_classes: int | None = None) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] < 2:
        raise ValueError(f"{name} must have shape (n_samples, n_classes) with n_classes >= 2, got {scores.shape}")
    if n_classes is not None and scores.shape[1] != n_classes:
        raise ValueError(f"{name} has {scores.shape[1]} classes, expected {n_classes}")
    if not np.isfinite(scores).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return scores - scores.mean(axis=1, keepdims=True)


class LateFusion:
    """``weight * first + (1 - weight) * second`` over centred, spread-normalised scores.

    Parameters
    ----------
    weights : sequence of float
        Candidate weights of the first model, each in [0, 1]. :meth:`fit` keeps the one with the
        best held-out accuracy; among tied ones, the middle one (the least extreme choice).
    """

    def __init__(self, *, weights: Sequence[float] = tuple(np.round(np.linspace(0.0, 1.0, 21), 2))) -> None:
        self.weights = weights

    def fit(self, first: np.ndarray, second: np.ndarray, y_index: Sequence[int]) -> "LateFusion":
        """Choose the weight on held-out data: both models' scores, shape ``(n, n_classes)``, for
        the same messages and label order, and the true label's column index per message."""
        candidates = [float(w) for w in self.weights]
        if not candidates or any(not 0.0 <= w <= 1.0 for w in candidates):
            raise ValueError(f"weights must be a non-empty list of numbers in [0, 1], got {self.weights!r}")
        a, b = _centred(first, "first"), _centred(second, "second", first.shape[1])
        if a.shape != b.shape:
            raise ValueError(f"first has shape {a.shape} but second {b.shape}; score the same messages")
        y = np.asarray(y_index)
        if y.shape != (len(a),) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= a.shape[1]:
            raise ValueError(f"y_index must hold one class index in [0, {a.shape[1]}) per message")
        self.scales_ = (float(a.std()) or 1.0, float(b.std()) or 1.0)
        self.n_classes_ = a.shape[1]
        accuracy = [float((self._fused(a, b, w).argmax(axis=1) == y).mean()) for w in candidates]
        best = max(accuracy)
        tied = [w for w, acc in zip(candidates, accuracy) if acc == best]
        self.weight_ = tied[len(tied) // 2]
        self.heldout_accuracy_ = best
        return self

    def _fused(self, a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
        return weight * a / self.scales_[0] + (1.0 - weight) * b / self.scales_[1]

    def decision_function(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Fused scores, shape ``(n, n_classes)``; the argmax is the prediction."""
        if not hasattr(self, "weight_"):
            raise RuntimeError("this LateFusion is not fitted yet; call fit() on held-out scores first")
        a = _centred(first, "first", self.n_classes_)
        b = _centred(second, "second", self.n_classes_)
        if a.shape != b.shape:
            raise ValueError(f"first has shape {a.shape} but second {b.shape}; score the same messages")
        return self._fused(a, b, self.weight_)

    def predict(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The fused argmax column per message."""
        return self.decision_function(first, second).argmax(axis=1)
