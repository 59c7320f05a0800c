import pytest

from retrieval.text import (
    TextInputError,
    decode,
    detect_language,
    normalize,
    prepare,
    to_simplified,
    to_traditional,
    tokenize,
)


def test_normalize_folds_full_width_and_strips_controls():
    assert normalize("ＡＢＣ１２３，\u200b订单\x07  号\u3000 ") == "ABC123,订单 号"


def test_normalize_keeps_paragraphs_but_collapses_blank_runs():
    assert normalize("第一行\r\n\r\n\r\n\r\n第二行") == "第一行\n\n第二行"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("我的快递三天了还没到", "zh-Hans"),
        ("請問我的訂單什麼時候會出貨？", "zh-Hant"),
        ("唔該，我啲貨幾時到？", "zh-Hant"),
        ("Where is my order? It has been a week.", "en"),
        ("我的order还没ship，怎么回事", "mixed"),
        ("請問refund幾時到帳", "mixed"),
        ("😡😡😡 !!!", "unknown"),
        ("12345678", "unknown"),
        ("Hi, my name is 王伟 and my parcel never arrived at my house", "en"),
        ("订单号SF1403928475612还没到", "zh-Hans"),
    ],
)
def test_detect_language(text, expected):
    assert detect_language(normalize(text)) == expected


def test_traditional_simplified_round_trip():
    assert to_simplified("請問運費多少") == "请问运费多少"
    assert to_traditional("请问运费多少") == "請問運費多少"
    assert to_simplified("hello") == "hello"
    with pytest.raises(ValueError, match="unknown traditional variant"):
        to_traditional("x", "jp")


def test_prepare_keeps_original_and_simplifies_features():
    doc = prepare("請問訂單　幾時發貨？")
    assert doc.original == "請問訂單　幾時發貨？"
    assert doc.simplified == "请问订单 几时发货?"
    assert doc.language == "zh-Hant"
    assert not doc.truncated


@pytest.mark.parametrize(
    "bad, message",
    [
        (None, "None"),
        ("", "empty"),
        ("   \n\t ", "whitespace"),
        ("\x00\x01", "control"),
        (b"\xff\xfe\xfa", "not valid utf-8"),
        (42, "must be str or bytes"),
        ("ab\udccf c", "lone surrogate U\\+DCCF at offset 2"),
    ],
)
def test_prepare_refuses_bad_input_with_a_clear_message(bad, message):
    with pytest.raises(TextInputError, match=f"(?i){message}"):
        prepare(bad)


def test_prepare_truncates_and_flags_long_text():
    doc = prepare("很" * 25_000, max_chars=20_000)
    assert doc.truncated and len(doc.normalized) == 20_000


def test_decode_accepts_utf8_bytes():
    assert decode("退款".encode()) == "退款"


def test_tokenize_mixes_jieba_words_and_latin_words():
    tokens = tokenize("我的order还没有发货 iPhone")
    assert "order" in tokens and "iphone" in tokens and "发货" in tokens
    assert "," not in tokens


def test_leading_blanks_do_not_count_against_the_cap_and_nfkc_growth_is_capped():
    assert prepare(" " * 10 + "退款", max_chars=5).normalized == "退款"
    doc = prepare("\ufdfa" * 10, max_chars=50)
    assert doc.truncated and len(doc.normalized) == 50


def test_traditional_conversion_fixes_shop_talk():
    from retrieval.text import to_traditional

    out = to_traditional("具体看发卡银行的处理速度，而不是只看可用额度", "tw")
    assert "發卡銀行" in out and "只看" in out and "髮" not in out


def test_segmenter_gives_jiebas_words():
    """Chinese blocks go to rjieba, the rest to jieba: together exactly jieba's output."""
    import random

    from retrieval import text as text_module

    segment = text_module._segment()
    jieba = text_module._jieba_state()[0]
    assert segment is not jieba.lcut  # rjieba is a dependency: the fast path is on
    rng = random.Random(7)
    pool = list("我想退货快递没到订单取消发票优惠券尺码颜色破损换货维修价格红包积分地址物流顺丰恤卡拉") + list(
        "abcxyzTOK0123456789+#&._%-") + list(" ,.!?，。！？：“”（）@/\n\t") + ["é", "ก", "한", "の", "😡", "\u200b"]
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 50))) for _ in range(3000)]
    texts += ["买了件t恤尺码不对", "卡拉ok麦克风没声音", "iphone15手机壳3.5折", "电话0987-221-305 邮箱k.zhang@gmail.com"]
    for text in texts:
        assert segment(text) == jieba.lcut(text), text


def test_segmenter_is_plain_jieba_without_rjieba_or_with_the_applications_dictionary(monkeypatch):
    import sys

    from retrieval import text as text_module

    jieba = text_module._jieba_state()[0]
    try:
        text_module._segment.cache_clear()
        monkeypatch.setitem(sys.modules, "rjieba", None)  # import fails
        assert text_module._segment() == jieba.lcut
        monkeypatch.undo()
        text_module._segment.cache_clear()
        monkeypatch.setattr(text_module, "_jieba_state", lambda: (jieba, False))
        assert text_module._segment() == jieba.lcut
    finally:
        monkeypatch.undo()
        text_module._segment.cache_clear()
    assert text_module._segment() != jieba.lcut
