from datetime import datetime, timedelta, timezone

import pytest

from retrieval.text import prepare
from triage.urgency import decide_urgency, find_signals


def signals(text):
    return {r.signal for r in find_signals(prepare(text).simplified)}


@pytest.mark.parametrize(
    "text, signal",
    [
        ("充电宝充着充着鼓包了还冒烟", "safety_hazard"),
        ("行動電源在包包裡膨脹發燙", "safety_hazard"),
        ("The charger caught fire and burned my desk", "safety_hazard"),
        ("再不处理我就打12315投诉你们", "legal_threat"),
        ("我已經找律師了", "legal_threat"),
        ("I will contact my lawyer and the BBB", "legal_threat"),
        ("信用卡被盗刷了三笔", "fraud"),
        ("There are unauthorized charges on my card", "fraud"),
        ("I'm filing a chargeback with my bank", "chargeback"),
        ("再唔處理我就同銀行講chargeback", "chargeback"),
        ("my account kena hack, someone used my wallet", "fraud"),
        ("不解决就发微博曝光你们", "public_exposure"),
        ("这是我第三次问了", "repeated_contact"),
        ("This is the third time I'm emailing you", "repeated_contact"),
        ("明天就要用，急用！", "deadline"),
        ("need it by Friday for my wedding", "deadline"),
        ("被扣了两次钱", "money_lost"),
        ("I was charged twice for one order", "money_lost"),
        # Still fire with the context that makes them evidence.
        ("我要打12345投诉你们", "legal_threat"),
        ("再不退款我就去12315投诉", "legal_threat"),
        ("我已经在12315平台登记了，等着吧", "legal_threat"),
        ("I'll take you to small claims court", "legal_threat"),
        ("Fine, see you in court.", "legal_threat"),
        ("孩子被烫伤了送医了", "safety_hazard"),
        ("I burned my hand on the kettle lid", "safety_hazard"),
        ("the charger started smoking and the plug melted", "safety_hazard"),
        ("this is urgent, my flight is tomorrow", "deadline"),
        ("婚礼在周六，周五前能到吗", "deadline"),
        ("our wedding is on 14 june, can it arrive before then?", "deadline"),
        ("I need it before my daughter's birthday", "deadline"),
    ],
)
def test_named_signals(text, signal):
    assert signal in signals(text)


@pytest.mark.parametrize(
    "text",
    [
        "请问这款有黑色吗",
        "Can you deliver to Canada?",
        "订单号2024123456789什么时候发货",
        "运单号SF1231500012345查不到",
        "我用工商银行卡付的款",
        "公安局附近的快递点能自提吗",
        "Any news on my order?",
        "Is the Fire TV stick in stock?",
        "心态炸了，这个颜色好看",
        "飞机杯什么时候发货",
        "rash question: does it come in blue?",
    ],
)
def test_routine_messages_raise_no_signal(text):
    assert signals(text) == set()


@pytest.mark.parametrize(
    "text",
    [
        # A hotline number only counts as a whole number near a complaint verb, never as an order number.
        "My order 12345 has not arrived",
        "打电话问订单12345到哪了",
        "Please call me back on 98450 12345",
        # 送医 is "taken to hospital", not the start of 送医生 (a gift for a doctor).
        "送医生朋友的，要精美包装",
        # Heat and burn words need someone burned, not a product question or a product.
        "会不会烫手",
        "这个杯子防烫伤吗",
        "best burn cream for kids?",
        "Is the screen prone to burn-in?",
        "the projector bulb burnt out after a year",
        # "court" is legal only in "take you to court" and the like.
        "I'm at the food court, can I pick up from the store on level 2?",
        # Negated urgency is no urgency.
        "Not urgent at all",
        "No rush, whenever you can",
        "It's not an emergency, just curious",
        "不着急，慢慢发就行",
        "不是很急，下周到也可以",
        # An occasion without a date or "before/by" is no deadline.
        "wedding guest",
        "wedding guest dress, does it come in navy?",
        "生日填错了能改吗",
    ],
)
def test_words_out_of_context_raise_no_signal(text):
    assert signals(text) == set()


def test_a_vetoed_match_does_not_hide_a_real_one():
    reasons = find_signals(prepare("order 12345: I will report this to 12315").simplified)
    assert [(r.signal, r.evidence) for r in reasons] == [("legal_threat", "report this to 12315")]


def test_order_number_that_reads_like_a_hotline_keeps_the_model_level():
    result = decide_urgency("normal", 0.7, prepare("My order 12345 has not arrived").simplified)
    assert result.level == "normal"
    assert [r.signal for r in result.reasons] == ["model"]


def test_signals_only_raise_the_level_and_are_listed():
    received = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    result = decide_urgency("low", 0.8, prepare("我要打12315投诉").simplified, received_at=received)
    assert result.level == "critical" and result.model_level == "low"
    assert [r.signal for r in result.reasons] == ["legal_threat", "model"]
    assert result.due == received + timedelta(hours=1)


def test_signal_never_lowers_a_critical_model_level():
    result = decide_urgency("critical", 0.9, prepare("明天要用").simplified)
    assert result.level == "critical"


def test_response_targets_are_configurable_and_naive_times_are_utc():
    received = datetime(2026, 1, 5, 9, 0)
    result = decide_urgency(
        "normal", 0.7, "hello", received_at=received, response_targets={"normal": timedelta(hours=8)}
    )
    assert result.due == datetime(2026, 1, 5, 17, 0, tzinfo=timezone.utc)
