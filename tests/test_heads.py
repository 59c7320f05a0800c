import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification

from triage.heads import CalibratedLinearHead, expected_calibration_error, fit_temperature, make_head
from triage.serving import two_columns


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=600, n_features=30, n_informative=12, n_classes=4, random_state=0)
    return X, np.array(["a", "b", "c", "d"])[y]


def test_fit_returns_self_and_probabilities_are_calibrated(data):
    X, y = data
    head = make_head("linear-svm", C=0.5)
    assert head.fit(X, y) is head
    proba = head.predict_proba(X)
    assert proba.shape == (600, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert head.calibration_["folds"] == 5
    assert head.calibration_["ece_after"] <= head.calibration_["ece_before"] + 0.02
    assert list(head.predict(X[:5])) == list(head.classes_[proba[:5].argmax(1)])


def test_logreg_and_binary(data):
    X, y = data
    yb = np.where(np.isin(y, ["a", "b"]), "neg", "pos")
    head = make_head("logreg", C=1.0).fit(X, yb)
    assert head.predict_proba(X).shape == (600, 2)
    assert head.serving().class_weights().shape == (2, X.shape[1])


def test_sklearn_contract(data):
    head = CalibratedLinearHead(C=0.3, calibration_folds=0)
    assert clone(head).get_params()["C"] == 0.3
    X, y = data
    assert head.fit(X, y).temperature_ == 1.0


def test_scores_match_the_estimator_for_lists_sparse_and_binary_input_and_bad_shapes_are_named(data):
    from scipy import sparse

    X, y = data
    yb = np.where(np.isin(y, ["a", "b"]), "neg", "pos")
    for labels in (y, yb):
        head = CalibratedLinearHead(calibration_folds=0).fit(X, labels)
        expected = two_columns(head.estimator_.decision_function(X[:20]))
        np.testing.assert_allclose(head.decision_function(X[:20]), expected, rtol=1e-6)
        np.testing.assert_allclose(head.decision_function(sparse.csr_matrix(X[:20])), expected, rtol=1e-6)
        np.testing.assert_allclose(head.decision_function(X[:20].tolist()), expected, rtol=1e-6)
    with pytest.raises(ValueError, match=r"expects \(n_samples, 30\)"):
        head.decision_function(X[:, :5])
    with pytest.raises(ValueError, match="NaN or infinity"):
        head.decision_function(np.full((1, 30), np.nan))


def test_single_label_is_refused(data):
    X, _ = data
    with pytest.raises(ValueError, match="at least two labels"):
        CalibratedLinearHead().fit(X, ["x"] * len(X))


def test_unknown_head_name():
    with pytest.raises(ValueError, match="unknown head 'forest'"):
        make_head("forest")


def test_temperature_fixes_overconfidence():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    scores = rng.normal(size=(2000, 3))
    scores[np.arange(2000), y] += 1.0
    overconfident = scores * 10
    t = fit_temperature(overconfident, y)
    assert t > 5
    from scipy.special import softmax

    assert expected_calibration_error(softmax(overconfident / t, axis=1), y) < expected_calibration_error(
        softmax(overconfident, axis=1), y
    )
