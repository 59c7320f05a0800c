import numpy as np
import pytest

from triage.fusion import LateFusion


def _scores(rng, y, noise):
    """Two-class scores that point to the true class, plus noise."""
    signal = np.where(y == 1, 1.0, -1.0)
    s = signal + rng.normal(0, noise, len(y))
    return np.column_stack([-s, s])


def test_fusion_of_two_noisy_models_beats_both_and_picks_a_middle_weight():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    first, second = _scores(rng, y, 1.2), _scores(rng, y, 1.2) * 50  # independent errors, other scale
    fusion = LateFusion().fit(first[:1000], second[:1000], y[:1000])
    assert 0.3 <= fusion.weight_ <= 0.7  # equally good models: the scale difference must not matter
    alone = max((first[1000:].argmax(1) == y[1000:]).mean(), (second[1000:].argmax(1) == y[1000:]).mean())
    assert (fusion.predict(first[1000:], second[1000:]) == y[1000:]).mean() > alone + 0.03


def test_a_useless_second_model_gets_no_weight():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    first, noise = _scores(rng, y, 0.3), rng.normal(size=(500, 2))
    assert LateFusion(weights=[0.0, 0.5, 1.0]).fit(first, noise, y).weight_ == 1.0


def test_ties_keep_the_middle_weight():
    y = np.array([0, 1])
    perfect = np.array([[1.0, -1.0], [-1.0, 1.0]])
    assert LateFusion(weights=[0.2, 0.4, 0.6, 0.8, 1.0]).fit(perfect, perfect, y).weight_ == 0.6


@pytest.mark.parametrize(
    "first, second, y, message",
    [
        (np.zeros((3, 1)), np.zeros((3, 1)), [0, 0, 0], r"shape \(n_samples, n_classes\)"),
        (np.zeros((3, 2)), np.zeros((3, 3)), [0, 0, 0], r"second has 3 classes, expected 2"),
        (np.zeros((3, 2)), np.zeros((2, 2)), [0, 0, 0], r"score the same messages"),
        (np.full((3, 2), np.nan), np.zeros((3, 2)), [0, 0, 0], r"NaN"),
        (np.zeros((3, 2)), np.zeros((3, 2)), [0, 2, 0], r"class index in \[0, 2\)"),
    ],
)
def test_bad_scores_are_refused_with_what_is_wrong(first, second, y, message):
    with pytest.raises(ValueError, match=message):
        LateFusion().fit(first, second, y)


def test_unfitted_fusion_says_so():
    with pytest.raises(RuntimeError, match="not fitted"):
        LateFusion().predict(np.zeros((1, 2)), np.zeros((1, 2)))
