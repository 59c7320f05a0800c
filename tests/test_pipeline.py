"""End to end with the shipped default model."""

import json
from datetime import datetime, timedelta, timezone

import pytest

import triage
from retrieval.encoders import get_encoder
from triage import TextInputError, TriageFailure, TriageResult

CASES = [
    # text, language, intent, urgency, sentiment (None: the label guide leaves room either way)
    ("我的快递三天了还没到，物流一直不更新", "zh-Hans", "delivery_problem", "normal", "negative"),
    ("请问这款电饭煲有没有3L的？", "zh-Hans", "product_inquiry", "low", "neutral"),
    ("充電寶用了兩天就鼓包冒煙了，差點燒到小孩！", "zh-Hant", "quality_issue", "critical", "negative"),
    ("請問可以開增值稅專用發票嗎？", "zh-Hant", "invoice", "low", "neutral"),
    ("Someone used my card to buy 3 phones on my account, I did not make these orders!", "en", None, "critical", "negative"),
    ("Forgot my password and the login page keeps saying it is wrong, what now?", "en", "account_access", "normal", "negative"),
    ("Thank you so much, the delivery guy was super friendly and the shoes fit perfectly!", "en", "feedback", "low", "positive"),
    ("我想cancel这个order，还没发货吧？", "mixed", "order_cancel", "normal", "neutral"),
    ("退款already批准了但是money还没到我的卡上", "mixed", "refund", "normal", "negative"),
    ("这个jacket有XL吗？想买给我老公，thanks", "mixed", "product_inquiry", "low", "neutral"),
    ("Hi 客服，账号被盗了，有人用我的paypal下了单，快帮我冻结!!", "zh-Hans", "account_access", "critical", "negative"),
]


@pytest.mark.parametrize("text, language, intent, urgency, sentiment", CASES)
def test_default_triages_real_messages(default_triage, text, language, intent, urgency, sentiment):
    r = default_triage.triage(text)
    assert r.language == language
    if intent:
        assert r.intent.label == intent, r.intent
        assert r.intent.category == triage.INTENT_CATEGORIES[intent]
    if urgency:
        assert r.urgency.level == urgency, r.urgency
    if sentiment:
        assert r.sentiment.label == sentiment, r.sentiment
    assert -1.0 <= r.sentiment.score <= 1.0


def test_legal_threat_is_critical_with_a_reason_and_one_hour_due(default_triage):
    received = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
    r = default_triage.triage("再不给我退款我就去12315投诉你们！", received_at=received)
    assert r.urgency.level == "critical"
    assert "legal_threat" in [x.signal for x in r.urgency.reasons]
    assert r.urgency.due == received + timedelta(hours=1)
    assert r.sentiment.score < 0


def test_batch_equals_one_by_one_and_keeps_bad_rows_in_place(default_triage, monkeypatch):
    monkeypatch.setattr("triage.pipeline._BATCH_SLICE", 2)  # a large batch runs in slices
    # Single calls embed afresh rather than recall what the batch embedded.
    monkeypatch.setattr(get_encoder(default_triage.bundle.encoder), "cache_size", 0)
    texts = [CASES[0][0], "", CASES[4][0], None, "   ", CASES[6][0]]
    when = datetime(2026, 3, 1, tzinfo=timezone.utc)
    batch = default_triage.triage_batch(texts, received_at=when)
    assert [type(r) for r in batch] == [TriageResult, TriageFailure, TriageResult, TriageFailure, TriageFailure, TriageResult]
    assert batch[1].index == 1 and "empty" in batch[1].error
    assert "None" in batch[3].error
    for i in (0, 2, 5):
        single = default_triage.triage(texts[i], received_at=when)
        assert single.to_dict() == batch[i].to_dict()


def test_batch_equals_one_by_one_on_held_out_messages(default_triage, monkeypatch):
    """More messages than one encoder thread takes: labels, levels, flags and entities are equal;
    probabilities agree to float32 rounding, so a figure rounded to 4 places may differ by 1e-4."""
    from conftest import ROOT

    monkeypatch.setattr(get_encoder(default_triage.bundle.encoder), "cache_size", 0)
    lines = (ROOT / "data" / "eval" / "heldout.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines[::8]][:250]
    when = datetime(2026, 3, 1, tzinfo=timezone.utc)
    batch = default_triage.triage_batch(texts, received_at=when)
    for text, together in zip(texts, batch):
        alone = default_triage.triage(text, received_at=when)
        assert (alone.intent.label, alone.intent.abstained, alone.urgency.level, alone.sentiment.label) == (
            together.intent.label, together.intent.abstained, together.urgency.level, together.sentiment.label), text
        assert alone.entities == together.entities and alone.urgency.reasons == together.urgency.reasons
        assert alone.intent.confidence == pytest.approx(together.intent.confidence, abs=1e-5)
        assert alone.sentiment.score == pytest.approx(together.sentiment.score, abs=1e-5)


def test_batch_refuses_what_is_not_a_list_of_messages(default_triage):
    for value, name in ((None, "NoneType"), (123, "int"), ({"a": 1}, "dict"), ({"退款"}, "set")):
        with pytest.raises(TypeError, match=f"takes a list of messages, got {name}"):
            default_triage.triage_batch(value)


def test_bad_single_input_raises_clear_errors(default_triage):
    with pytest.raises(TextInputError, match="None"):
        default_triage.triage(None)
    with pytest.raises(TextInputError, match="whitespace"):
        default_triage.triage(" \n ")
    with pytest.raises(TextInputError, match="not valid utf-8"):
        default_triage.triage(b"\xc4\xe3\xba\xc3\xff")
    with pytest.raises(TypeError, match="list of messages"):
        default_triage.triage_batch("not a list")


def test_long_text_is_truncated_and_flagged():
    t = triage.Triage(max_chars=50)
    r = t.triage("我要退货，" * 100)
    assert r.truncated and r.text == "我要退货，" * 100  # the message as received stays whole
    assert len(r.normalized) == 50  # the models read the capped head


def test_default_cap_is_20000_characters(default_triage):
    r = default_triage.triage("The zipper broke on the first day. " * 715)  # 25,025 characters
    assert r.truncated and len(r.normalized) == 20_000
    assert not default_triage.triage("The zipper broke on the first day. " * 500).truncated


def test_result_is_json_serialisable_with_entities(default_triage):
    r = default_triage.triage("订单号3812764590213345678被扣了两次钱¥299，电话13812345678")
    data = json.loads(json.dumps(r.to_dict(), ensure_ascii=False))
    kinds = [e["type"] for e in data["entities"]]
    assert kinds == ["order_number", "amount", "phone"]
    assert data["urgency"]["due"].endswith("+00:00")
    assert data["model_version"] == default_triage.version
    assert "money_lost" in [x["signal"] for x in data["urgency"]["reasons"]]


def test_explain_lists_features_for_every_head(default_triage):
    r = default_triage.triage("我的快递三天了还没到", explain=True)
    assert r.intent.explanation and r.urgency.explanation and r.sentiment.explanation
    names = [c.feature for c in r.intent.explanation]
    assert any(n.startswith(("word:", "char:")) for n in names)
    assert all(c.weight > 0 for c in r.intent.explanation)
    assert default_triage.triage("我的快递三天了还没到").intent.explanation is None


def test_abstention_thresholds_are_configurable_per_label():
    strict = triage.load(abstain={"min_confidence": 1.0, "min_margin": 0.0})
    r = strict.triage("hello")
    assert r.intent.abstained and r.intent.label  # keeps its best guess
    lenient = triage.load(abstain=triage.AbstainPolicy(min_confidence=0.0, min_margin=0.0, per_label={}))
    assert not lenient.triage("hello").intent.abstained
    policy = triage.AbstainPolicy(min_confidence=0.1, min_margin=0.0, per_label={"complaint": 0.99})
    assert policy.abstains("complaint", 0.9, 0.05) and not policy.abstains("refund", 0.9, 0.05)


def test_intent_confidence_is_calibrated_on_the_heldout_split(default_triage, root):
    from triage.data import iter_records

    rows = [r for _, r in iter_records(root / "data" / "eval" / "heldout.jsonl")]
    results = default_triage.triage_batch([r["text"] for r in rows])
    accuracy = sum(r["intent"] == res.intent.label for r, res in zip(rows, results)) / len(rows)
    confidence = sum(res.intent.confidence for res in results) / len(rows)
    assert abs(confidence - accuracy) < 0.08, (confidence, accuracy)
    kept = [(r, res) for r, res in zip(rows, results) if not res.intent.abstained]
    assert sum(r["intent"] == res.intent.label for r, res in kept) / len(kept) > accuracy


def test_response_targets_override(default_triage):
    t = triage.load(response_targets={"low": timedelta(hours=5)})
    when = datetime(2026, 3, 1, tzinfo=timezone.utc)
    r = t.triage("請問這款有黑色嗎", received_at=when)
    if r.urgency.level == "low":
        assert r.urgency.due == when + timedelta(hours=5)
    else:
        pytest.fail(f"expected low urgency for a plain pre-sales question, got {r.urgency.level}")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"response_targets": {"high": 2}}, r"response_targets\['high'\] must be a positive timedelta"),
        ({"response_targets": {"urgent": timedelta(hours=1)}}, r"unknown urgency level 'urgent'"),
        ({"abstain": {"bogus": 1}}, r"unknown abstain setting\(s\) \['bogus'\]"),
        ({"abstain": {"min_confidence": 2}}, r"min_confidence must be a probability between 0 and 1, got 2"),
        ({"explain_top_k": -1}, r"explain_top_k must be a positive integer, got -1"),
        ({"max_chars": "100"}, r"max_chars must be a positive integer, got '100'"),
    ],
)
def test_bad_load_options_are_refused_when_given(options, message):
    with pytest.raises(ValueError, match=message):
        triage.load(**options)


def test_abstain_thresholds_for_unknown_intents_are_refused_at_load():
    with pytest.raises(ValueError, match=r"unknown intent label\(s\) \['complain'\].*'complaint'"):
        triage.load(abstain={"per_label": {"complain": 0.6}})


def test_received_at_of_the_wrong_type_says_what_it_needs(default_triage):
    with pytest.raises(TypeError, match=r"received_at must be a datetime.*fromisoformat"):
        default_triage.triage("hi", received_at="2026-01-01T09:00:00+08:00")
    with pytest.raises(TypeError, match=r"received_at\[1\] must be a datetime or None, got str"):
        default_triage.triage_batch(["a", "b"], received_at=[None, "y"])
    with pytest.raises(ValueError, match=r"received_at has 1 entries for 2 messages"):
        default_triage.triage_batch(["a", "b"], received_at=[None])


def test_assist_batch_refuses_mismatched_names_and_bad_k(default_triage):
    texts = ["退款", "where is my parcel", "我要投诉"]
    with pytest.raises(ValueError, match=r"customer_names has 1 entries for 3 messages"):
        default_triage.assist_batch(texts, customer_names=["Amy"])
    with pytest.raises(TypeError, match=r"one name per message"):
        default_triage.assist_batch(texts, customer_names="Amy")
    for k in (0, -3, 1.5):
        with pytest.raises(ValueError, match=r"k must be a positive integer"):
            default_triage.assist("退货运费谁出", k=k)
