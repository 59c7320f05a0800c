import json

import numpy as np
import pytest

from triage import Triage
from triage.bundle import BundleError, load_bundle, load_serving, read_manifest, save_bundle
from triage.training import train_bundle

TEXTS = [
    "where is my parcel", "has my order shipped yet", "tracking number please", "订单发货了吗", "我的快递到哪了",
    "give me my money back", "refund my money please", "退款什么时候到账", "钱怎么还没退回来", "how long does a refund take",
    "do you have this in red", "is this waterproof", "这款有黑色吗", "尺码偏大吗", "what size should I get",
]
INTENTS = ["order_status"] * 5 + ["refund"] * 5 + ["product_inquiry"] * 5


@pytest.fixture(scope="module")
def small_bundle():
    return train_bundle(TEXTS, {"intent": INTENTS}, encoder="none", version="test-1", sources=["inline"])


def test_manifest_describes_the_bundle(small_bundle, tmp_path):
    save_bundle(small_bundle, tmp_path / "b")
    manifest = read_manifest(tmp_path / "b")
    assert manifest["version"] == "test-1"
    assert manifest["encoder"] == "none"
    assert manifest["heads"]["intent"]["labels"] == ["order_status", "product_inquiry", "refund"]
    assert manifest["categories"]["refund"] == "after_sales"
    assert len(manifest["training_data"]["sha256"]) == 64
    assert manifest["library_versions"]["scikit-learn"]
    assert set(manifest["files"]) == {"featurizer", "intent", "serving"}
    assert not list(tmp_path.glob(".b.*")), "staging directory left behind"
    assert (tmp_path / "b").stat().st_mode & 0o777 == 0o755  # readable by a service running as another user


def test_round_trip_gives_identical_probabilities(small_bundle, tmp_path):
    save_bundle(small_bundle, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b")
    X1 = small_bundle.featurizer.transform(["退款到账了吗"])
    X2 = loaded.featurizer.transform(["退款到账了吗"])
    np.testing.assert_allclose(
        small_bundle.heads["intent"].predict_proba(X1), loaded.heads["intent"].predict_proba(X2), rtol=1e-6
    )


def test_saving_over_an_existing_bundle_replaces_it(small_bundle, tmp_path):
    save_bundle(small_bundle, tmp_path / "b")
    newer = train_bundle(TEXTS, {"intent": INTENTS}, encoder="none", version="test-2")
    save_bundle(newer, tmp_path / "b")
    assert read_manifest(tmp_path / "b")["version"] == "test-2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_saving_never_replaces_what_is_not_a_bundle(small_bundle, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "plan.txt").write_text("keep me")
    with pytest.raises(BundleError, match="not a model bundle; refusing to replace it"):
        save_bundle(small_bundle, notes)
    assert (notes / "plan.txt").read_text() == "keep me"
    a_file = tmp_path / "report.txt"
    a_file.write_text("keep me too")
    with pytest.raises(BundleError, match="is a file, not a bundle directory"):
        save_bundle(small_bundle, a_file)
    assert a_file.read_text() == "keep me too"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "report.txt"]  # no staging left behind
    (tmp_path / "empty").mkdir()
    save_bundle(small_bundle, tmp_path / "empty")
    assert read_manifest(tmp_path / "empty")["format"] == "kefu-triage-bundle"


class NotAModel:
    pass


def _rewrite_manifest(directory, change):
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_types_outside_the_allow_list_are_refused(small_bundle, tmp_path):
    import hashlib

    import skops.io as sio

    save_bundle(small_bundle, tmp_path / "b")
    sio.dump(NotAModel(), tmp_path / "b" / "intent.skops")
    digest = hashlib.sha256((tmp_path / "b" / "intent.skops").read_bytes()).hexdigest()
    _rewrite_manifest(tmp_path / "b", lambda m: m["files"]["intent"].update(sha256=digest))
    with pytest.raises(BundleError, match="outside the allow-list.*NotAModel"):
        load_bundle(tmp_path / "b")


def test_file_paths_must_stay_inside_the_bundle(small_bundle, tmp_path):
    save_bundle(small_bundle, tmp_path / "b")
    _rewrite_manifest(tmp_path / "b", lambda m: m["files"]["intent"].update(path="../outside.skops"))
    with pytest.raises(BundleError, match="outside the bundle directory"):
        load_bundle(tmp_path / "b")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(format_version="2"), "format_version must be an integer"),
        (lambda m: m.update(files=[]), "must list the featurizer and serving files"),
        (lambda m: m.update(format_version=1), "written by an earlier kefu-triage; retrain it"),
        (lambda m: m["files"].update(intent={"sha256": "x"}), "needs string 'path' and 'sha256'"),
    ],
)
@pytest.mark.parametrize("load", [load_bundle, load_serving])
def test_malformed_manifests_are_bundle_errors(small_bundle, tmp_path, change, message, load):
    save_bundle(small_bundle, tmp_path / "b")
    if load is load_serving and "sha256" in message:
        change = lambda m: m["files"].update(serving={"sha256": "x"})  # noqa: E731
    _rewrite_manifest(tmp_path / "b", change)
    with pytest.raises(BundleError, match=message):
        load(tmp_path / "b")
    (tmp_path / "b" / "manifest.json").write_text("[1, 2]")
    with pytest.raises(BundleError, match="must hold a JSON object"):
        load(tmp_path / "b")


def test_tampered_file_is_refused(small_bundle, tmp_path):
    save_bundle(small_bundle, tmp_path / "b")
    with open(tmp_path / "b" / "intent.skops", "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(tmp_path / "b")


def test_missing_and_foreign_manifests(tmp_path):
    with pytest.raises(BundleError, match="manifest.json is missing"):
        load_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(BundleError, match="expected 'kefu-triage-bundle'"):
        load_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(tmp_path)


def test_intent_only_bundle_takes_other_heads_from_the_default(small_bundle, default_triage):
    text = "我要退款，钱还没到账，都一个星期了"
    r = Triage(small_bundle).triage(text)
    default = default_triage.triage(text)
    assert r.intent.label == "refund"
    assert r.model_version == "test-1"
    assert r.urgency.model_level == default.urgency.model_level
    assert r.sentiment.score == pytest.approx(default.sentiment.score)


def test_training_validates_labels():
    with pytest.raises(ValueError, match=r"labels\['urgency'\]\[0\]: urgency label 'soon' is not one of"):
        train_bundle(["a b", "c d"], {"urgency": ["soon", "later"]}, encoder="none")
    with pytest.raises(ValueError, match="unknown heads"):
        train_bundle(["a b", "c d"], {"topic": ["x", "y"]}, encoder="none")
    with pytest.raises(ValueError, match="2 intent labels for 3 texts"):
        train_bundle(["a b", "c d", "e f"], {"intent": ["x", "y"]}, encoder="none")


def test_shipped_default_matches_its_manifest(default_triage):
    manifest = default_triage.manifest
    assert manifest["encoder"] == "usem3"
    assert set(manifest["heads"]) == {"intent", "urgency", "sentiment"}
    assert len(manifest["heads"]["intent"]["labels"]) == 20
    assert manifest["heads"]["urgency"]["labels"] == ["critical", "high", "low", "normal"]
    assert manifest["metrics"]["heldout"]["intent"]["accuracy"] > 0.8
    bundle = default_triage.bundle
    for head, model in bundle.heads.items():
        assert [str(c) for c in model.classes] == manifest["heads"][head]["labels"]
