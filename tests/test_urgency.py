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


@pytest.mark.parametrize(
    "text, signal",
    [
        # Counting one's own retries of an action is not contacting support again.
        ("Tried 6 times to log in this morning and it still says my password is wrong", "repeated_contact"),
        ("I've tried three times to pay with PayPal and it just spins", "repeated_contact"),
        ("hit refresh like 10 times, the order page is still blank", "repeated_contact"),
        ("I've reset my password 4 times today and still can't get in", "repeated_contact"),
        ("clicked unsubscribe 3 times and the promo emails keep coming", "repeated_contact"),
        ("how many times can I change the delivery address?", "repeated_contact"),
        ("试了好几次还是登不上，验证码一直说错误", "repeated_contact"),
        ("支付页面刷新了好几次，还是一直转圈", "repeated_contact"),
        ("密码输错太多次，账号被锁了怎么办", "repeated_contact"),
        ("这款面霜我回购好几次了，这次的味道怪怪的", "repeated_contact"),
        ("試了好幾次都登不進去，是不是系統有問題", "repeated_contact"),
        ("付款按了好幾次都沒反應", "repeated_contact"),
        ("APP重裝了好幾次還是閃退", "repeated_contact"),
        # 骗子 and "scam" as insults, with nothing taken and nobody posing as the shop, are not fraud.
        ("骗子商家，东西质量这么差", "fraud"),
        ("你们客服都是骗子吗，说好的发货呢", "fraud"),
        ("騙子店家，實品跟照片差太多了", "fraud"),
        ("感觉被骗了，颜色和图片完全不一样", "fraud"),
        ("this 'flash sale' is a total scam, it was cheaper last week", "fraud"),
        ("You lot are scammers, the jacket fell apart after one wash", "fraud"),
        # A social network as a login, a contact channel, an advert or a courier is no threat to go public.
        ("can't log in with Facebook anymore, it just reloads", "public_exposure"),
        ("Facebook login keeps failing on the app", "public_exposure"),
        ("I messaged you on Instagram yesterday about sizing, any news?", "public_exposure"),
        ("saw this lamp on TikTok, is it back in stock?", "public_exposure"),
        ("微博账号登录不了，一直提示授权失败", "public_exposure"),
        ("用微博登录之后订单都不见了，我要投诉", "public_exposure"),
        ("发朋友圈集赞的活动怎么参加", "public_exposure"),
        ("我用小紅書帳號註冊的，怎麼改綁手機", "public_exposure"),
        ("黑貓宅急便什麼時候會來收件", "public_exposure"),
    ],
)
def test_retries_insults_and_logins_are_not_evidence(text, signal):
    assert signal not in signals(text)


@pytest.mark.parametrize(
    "text, signal",
    [
        ("Paid RM450 for a sofa that never came. Filing at the Tribunal for Consumer Claims on Monday", "legal_threat"),
        # Contacting support again still counts, with or without a retry word in the sentence.
        ("This is the third time I'm writing about the same missing parcel", "repeated_contact"),
        ("I've called 4 times and each time I'm told to wait another week", "repeated_contact"),
        ("already emailed twice about the cracked screen, nothing back", "repeated_contact"),
        ("tried calling your hotline 5 times, always engaged", "repeated_contact"),
        ("you've changed the delivery date 3 times now, I just want my sofa", "repeated_contact"),
        ("第三次联系你们了，退款到底什么时候到账", "repeated_contact"),
        ("问了好几遍客服，每次都说在处理", "repeated_contact"),
        ("催了好几次了，还是没发货", "repeated_contact"),
        ("這已經是我第三次私訊你們了，包裹到底在哪", "repeated_contact"),
        ("我試了好幾次打電話給客服都沒人接", "repeated_contact"),
        # 骗子, 被骗 and "scam" with money taken or someone posing as the shop.
        ("有个骗子打电话说我的快递丢了，让我扫码理赔", "fraud"),
        ("我被骗了两千块，对方说是你们平台的客服", "fraud"),
        ("騙子收了我的訂金就跑路了，賣場也關了", "fraud"),
        ("Got a text pretending to be you asking for my card number, is this a scam?", "fraud"),
        ("The seller took my money and went silent. This is a scam.", "fraud"),
        # Threats to post, review or go to the press, on a named network or not.
        ("if this isn't fixed today I'm posting the whole chat on Facebook", "public_exposure"),
        ("Twitter is going to hear about this", "public_exposure"),
        ("I'll leave a 1-star review on every site I can find", "public_exposure"),
        ("going to tell the media how you treat customers", "public_exposure"),
        ("再不退款我就发微博曝光你们", "public_exposure"),
        ("准备发小红书让大家避雷", "public_exposure"),
        ("小紅書避雷文已經寫好了，等著看吧", "public_exposure"),
        ("再不處理我就去黑貓投訴", "public_exposure"),
    ],
)
def test_contact_fraud_and_exposure_in_context_still_fire(text, signal):
    assert signal in signals(text)


def test_a_login_retry_keeps_the_model_level():
    text = prepare("Tried 6 times to log in with Facebook, still nothing").simplified
    result = decide_urgency("normal", 0.7, text)
    assert result.level == "normal"
    assert [r.signal for r in result.reasons] == ["model"]


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
