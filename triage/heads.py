"""Trainable classifier heads over the shared feature matrix.

A head is a scikit-learn classifier: hyperparameters in ``__init__``, learning in :meth:`fit`
(which returns ``self``), so it composes with ``Pipeline`` and ``GridSearchCV``. Heads are
registered by name, so a config string (``"linear-svm"``, ``"logreg"``) picks one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import replace
from numbers import Integral, Real

import numpy as np
from scipy import sparse
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from .serving import NeighbourVote, ServingHead, softmax, two_columns, unit_rows

HEADS: dict[str, Callable[..., "CalibratedLinearHead"]] = {}


def register_head(name: str) -> Callable:
    """Register a head factory under `name` (called with keyword hyperparameters)."""

    def decorator(factory: Callable[..., "CalibratedLinearHead"]):
        HEADS[name] = factory
        return factory

    return decorator


def make_head(name: str, **params) -> "CalibratedLinearHead":
    """A new, unfitted head by registered name."""
    try:
        factory = HEADS[name]
    except KeyError:
        raise ValueError(f"unknown head {name!r}; registered: {', '.join(sorted(HEADS))}") from None
    return factory(**params)


def fit_temperature(scores: np.ndarray, y_index: np.ndarray) -> float:
    """The temperature T minimising the negative log-likelihood of ``softmax(scores / T)``.

    Temperature scaling keeps the argmax (so accuracy) unchanged and fixes over- or
    under-confidence, which the abstention thresholds depend on.
    """

    def nll(log_t: float) -> float:
        logp = log_softmax(scores / np.exp(log_t), axis=1)
        return -float(logp[np.arange(len(y_index)), y_index].mean())

    result = minimize_scalar(nll, bounds=(-5.0, 5.0), method="bounded")
    return float(np.exp(result.x))


def expected_calibration_error(proba: np.ndarray, y_index: np.ndarray, bins: int = 10) -> float:
    """Weighted gap between confidence and accuracy over equal-width confidence bins."""
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_index
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            ece += mask.mean() * abs(conf[mask].mean() - correct[mask].mean())
    return float(ece)


def fit_neighbour_vote(
    embeddings: np.ndarray, y_index: np.ndarray, *, k: int, dims: int, temperature: float, weight: float
) -> NeighbourVote:
    """A :class:`~triage.serving.NeighbourVote` remembering `embeddings` (one row per training
    message) with their class indices `y_index`, projected onto their `dims` principal axes."""
    vectors = unit_rows(embeddings)
    _, _, axes = np.linalg.svd(vectors - vectors.mean(axis=0), full_matrices=False)
    projection = np.ascontiguousarray(axes[: min(dims, len(axes))].T, dtype=np.float32)
    return NeighbourVote(projection=projection, memory=unit_rows(vectors @ projection).astype(np.float16),
                         labels=np.asarray(y_index, dtype=np.intp), k=k, temperature=temperature, weight=weight)


class CalibratedLinearHead(ClassifierMixin, BaseEstimator):
    """A linear classifier whose scores are turned into calibrated probabilities, optionally
    blended with a vote of the nearest training messages.

    The estimator is trained on all data; a temperature for its scores is fitted on
    out-of-fold scores from `calibration_folds` cross-validation, so probabilities reflect
    accuracy on unseen text. The same folds measure the blend with the vote (``calibration_``).

    Parameters
    ----------
    model : {"linear-svm", "logreg"}
        The linear model: a linear SVM (squared hinge) or multinomial logistic regression.
    C : float
        Inverse regularisation strength.
    class_weight : {"balanced", None}
        "balanced" reweights classes inversely to their frequency.
    calibration_folds : int
        Folds for the out-of-fold scores; 0 disables calibration (temperature 1).
    max_iter : int
        Solver iteration cap.
    neighbours : int
        Training messages in the vote (:class:`~triage.serving.NeighbourVote`); 0 disables it.
        With a vote, :meth:`fit` and :meth:`predict_proba` need the messages' sentence embeddings.
    neighbour_dims : int
        Principal axes the embeddings are projected onto before neighbours are searched.
    neighbour_temperature : float
        Cosine units; see :class:`~triage.serving.NeighbourVote`.
    neighbour_weight : float
        The vote's share of the blended probabilities, in [0, 1].
    """

    def __init__(
        self,
        *,
        model: str = "linear-svm",
        C: float = 1.0,
        class_weight: str | None = None,
        calibration_folds: int = 5,
        max_iter: int = 5000,
        neighbours: int = 0,
        neighbour_dims: int = 128,
        neighbour_temperature: float = 0.03,
        neighbour_weight: float = 0.3,
    ) -> None:
        self.model = model
        self.C = C
        self.class_weight = class_weight
        self.calibration_folds = calibration_folds
        self.max_iter = max_iter
        self.neighbours = neighbours
        self.neighbour_dims = neighbour_dims
        self.neighbour_temperature = neighbour_temperature
        self.neighbour_weight = neighbour_weight

    def _estimator(self):
        if self.model == "linear-svm":
            return LinearSVC(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, random_state=0)
        if self.model == "logreg":
            return LogisticRegression(
                C=self.C, class_weight=self.class_weight, max_iter=self.max_iter
            )
        raise ValueError(f"unknown model {self.model!r}; use 'linear-svm' or 'logreg'")

    def __setstate__(self, state: dict) -> None:
        # A head saved before a hyperparameter existed gets its default (skops and pickle restore
        # only the saved attributes), and no vote.
        defaults = {name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()
                    if p.default is not p.empty}
        super().__setstate__({**defaults, "vote_": None, **state})

    def check_params(self) -> "CalibratedLinearHead":
        """Refuse hyperparameters out of range, before any slow work; returns self."""
        def number(value, integral: bool = False) -> bool:  # numpy scalars count, booleans do not
            return isinstance(value, Integral if integral else Real) and not isinstance(value, (bool, np.bool_))

        problems = [f"{name}={value!r} ({rule})" for name, value, ok, rule in (
            ("C", self.C, number(self.C) and self.C > 0, "a number > 0"),
            ("neighbours", self.neighbours, number(self.neighbours, True) and self.neighbours >= 0, "an integer >= 0"),
            ("neighbour_dims", self.neighbour_dims, number(self.neighbour_dims, True) and self.neighbour_dims >= 1,
             "an integer >= 1"),
            ("neighbour_temperature", self.neighbour_temperature,
             number(self.neighbour_temperature) and self.neighbour_temperature > 0, "a number > 0"),
            ("neighbour_weight", self.neighbour_weight,
             number(self.neighbour_weight) and 0 <= self.neighbour_weight <= 1, "a number in [0, 1]"),
        ) if not ok]
        if problems:
            raise ValueError(f"bad head hyperparameters: {', '.join(problems)}")
        return self

    def _vote(self, embeddings, y_index) -> NeighbourVote:
        return fit_neighbour_vote(embeddings, y_index, k=self.neighbours, dims=self.neighbour_dims,
                                  temperature=self.neighbour_temperature, weight=self.neighbour_weight)

    def _checked_embeddings(self, embeddings, n_rows: int, method: str, k: int) -> np.ndarray | None:
        """`embeddings` as float32 when a vote of `k` neighbours needs them, else None."""
        if not k:
            return None
        if embeddings is None:
            hint = ", or set neighbours=0" if method == "fit" else ""
            raise ValueError(f"this head blends a vote of {k} neighbours: pass the messages' sentence "
                             f"embeddings, {method}(X, embeddings=...){hint}")
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or len(embeddings) != n_rows or not np.isfinite(embeddings).all():
            raise ValueError(f"embeddings must be finite, shape ({n_rows}, dim) for {n_rows} rows of X; "
                             f"got shape {embeddings.shape}")
        return embeddings

    def fit(self, X, y, *, embeddings=None) -> "CalibratedLinearHead":
        """Learn from feature rows `X` and labels `y`; `embeddings` (one sentence embedding per
        row) are needed only for the neighbour vote."""
        self.check_params()
        y = np.asarray(y, dtype=object)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                f"a head needs at least two labels to learn from, got {list(self.classes_)}"
            )
        embeddings = self._checked_embeddings(embeddings, len(y), "fit", self.neighbours)
        y_index = np.searchsorted(self.classes_, y)
        self.estimator_ = self._estimator().fit(X, y)
        # float32 weights halve the bundle; scores change by ~1e-7, far below any threshold.
        self.estimator_.coef_ = self.estimator_.coef_.astype(np.float32)
        self.vote_ = None if embeddings is None else self._vote(embeddings, y_index)
        self.temperature_ = 1.0
        self.calibration_ = {}
        smallest = int(np.bincount(y_index).min())
        folds = min(self.calibration_folds, smallest)
        if folds >= 2:
            cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
            oof = cross_val_predict(
                clone(self._estimator()), X, y, cv=cv, method="decision_function"
            )
            oof = two_columns(oof)
            before = expected_calibration_error(softmax(oof), y_index)
            self.temperature_ = fit_temperature(oof, y_index)
            proba = softmax(oof / self.temperature_)
            self.calibration_ = {
                "method": "temperature",
                "folds": folds,
                "temperature": round(self.temperature_, 4),
                "cv_accuracy": round(float((proba.argmax(1) == y_index).mean()), 4),
                "ece_before": round(before, 4),
                "ece_after": round(expected_calibration_error(proba, y_index), 4),
            }
            if embeddings is not None:
                votes = np.zeros_like(proba)
                for train, test in cv.split(X, y):
                    votes[test] = self._vote(embeddings[train], y_index[train]).proba(embeddings[test], proba.shape[1])
                blended = self.vote_.mix(proba, votes)
                with np.errstate(divide="ignore"):
                    blend_temperature = fit_temperature(np.maximum(np.log(blended), -1e4), y_index)
                self.vote_ = replace(self.vote_, blend_temperature=blend_temperature)
                blended = self.vote_.recalibrate(blended)
                self.calibration_.update({
                    "cv_accuracy_with_vote": round(float((blended.argmax(1) == y_index).mean()), 4),
                    "blend_temperature": round(blend_temperature, 4),
                    "ece_with_vote": round(expected_calibration_error(blended, y_index), 4),
                })
        return self

    def decision_function(self, X) -> np.ndarray:
        """Raw scores, shape ``(n_samples, n_classes)``.

        Computed from the linear weights directly: the estimator's own input validation costs
        more than the product itself for the one-message calls a help desk makes.
        """
        check_is_fitted(self, "estimator_")
        coef = self.estimator_.coef_
        if not sparse.issparse(X):
            X = np.asarray(X, dtype=np.float64)
            if not np.isfinite(X).all():
                raise ValueError("X contains NaN or infinity; features must be finite")
        if X.ndim != 2 or X.shape[1] != coef.shape[1]:
            raise ValueError(f"X has shape {X.shape}; this head expects (n_samples, {coef.shape[1]}) features")
        scores = np.asarray(X @ coef.T) + self.estimator_.intercept_
        return two_columns(scores[:, 0] if coef.shape[0] == 1 else scores)

    def predict_proba(self, X, *, embeddings=None) -> np.ndarray:
        """Calibrated probabilities, shape ``(n_samples, n_classes)``, rows summing to 1
        (blended with the neighbour vote, which needs `embeddings`, when the head has one)."""
        proba = softmax(self.decision_function(X) / self.temperature_)
        vote = self.vote_  # what fit learned: set_params(neighbours=...) takes effect at the next fit
        embeddings = self._checked_embeddings(embeddings, proba.shape[0], "predict_proba", vote.k if vote else 0)
        return proba if embeddings is None else vote.blend(proba, embeddings)

    def predict(self, X, *, embeddings=None) -> np.ndarray:
        return self.classes_[self.predict_proba(X, embeddings=embeddings).argmax(axis=1)]

    def serving(self) -> ServingHead:
        """The fitted head as the runtime uses it."""
        check_is_fitted(self, "estimator_")
        return ServingHead(classes=self.classes_, coef=np.asarray(self.estimator_.coef_, dtype=np.float32),
                           intercept=np.asarray(self.estimator_.intercept_, dtype=np.float64),
                           temperature=float(self.temperature_), vote=self.vote_)


register_head("linear-svm")(lambda **p: CalibratedLinearHead(model="linear-svm", **p))
register_head("logreg")(lambda **p: CalibratedLinearHead(model="logreg", **p))
