import pytest

from triage.entities import extract_entities, mask_pii


def types(text):
    return [(e.type, e.text) for e in extract_entities(text)]


def test_chinese_order_tracking_amount():
    found = types("订单号3812764590213345678还没发货，运单号SF1403928475612，付了¥1,299.00")
    assert found == [
        ("order_number", "3812764590213345678"),
        ("tracking_number", "SF1403928475612"),
        ("amount", "¥1,299.00"),
    ]


def test_amount_values_and_currencies():
    ents = extract_entities("paid $45.99, RM59, NT$1,280 and 299元 and HK$350")
    values = [(e.value["amount"], e.value["currency"]) for e in ents if e.type == "amount"]
    assert values == [(45.99, "USD"), (59.0, "MYR"), (1280.0, "TWD"), (299.0, "CNY"), (350.0, "HKD")]


@pytest.mark.parametrize(
    "text, kind, span",
    [
        ("Order 112-4839201-5573920 never came", "order_number", "112-4839201-5573920"),
        ("蝦皮訂單231104QWERT9KZ", "order_number", "231104QWERT9KZ"),
        ("order #100234 please", "order_number", "100234"),
        ("UPS 1Z999AA10123456784", "tracking_number", "1Z999AA10123456784"),
        ("tracking number: YT7463829104738", "tracking_number", "YT7463829104738"),
        ("call me 13812345678", "phone", "13812345678"),
        ("whatsapp +65 9123 4567", "phone", "+65 9123 4567"),
        ("email a.b@example.com", "email", "a.b@example.com"),
        ("11月3号下的单", "date", "11月3号"),
        ("ordered on 2024/10/05", "date", "2024/10/05"),
        ("bought it last Friday", "date", "last Friday"),
    ],
)
def test_entity_kinds(text, kind, span):
    assert (kind, span) in types(text)


def test_offsets_point_into_the_text():
    text = "my email is x@y.com ok"
    (ent,) = extract_entities(text)
    assert text[ent.start : ent.end] == ent.text


def test_order_keyword_without_digits_is_not_an_order_number():
    assert not [e for e in extract_entities("order number pending") if e.type == "order_number"]


def test_mask_pii_masks_email_phone_card_but_keeps_order_numbers():
    text = "卡号4111 1111 1111 1111，手机+86 138 1234 5678，邮箱li@qq.com，订单3812764590213345678"
    masked = mask_pii(text)
    assert "[CARD]" in masked and "[PHONE]" in masked and "[EMAIL]" in masked
    assert "4111" not in masked and "li@qq.com" not in masked
    assert "3812764590213345678" in masked


def test_mask_pii_rejects_unknown_types():
    with pytest.raises(ValueError, match="cannot mask"):
        mask_pii("x", types=("address",))


@pytest.mark.parametrize(
    "text",
    ["I confirm 3 items", "inform 5 friends", "the sharp 5 knife", "买了2块蛋糕", "declined 3 times", "maybe 2 days"],
)
def test_words_and_measure_words_are_not_amounts_or_dates(text):
    assert [e for e in extract_entities(text) if e.type in ("amount", "date")] == []


def test_phone_with_country_code_is_a_phone_and_order_numbers_are_not_cards():
    assert mask_pii("手机号8613912345678") == "手机号[PHONE]"
    assert mask_pii("订单号4111111111111111") == "订单号4111111111111111"
    assert mask_pii("卡号4111111111111111") == "卡号[CARD]"
    assert [(e.type, e.value["amount"]) for e in extract_entities("一共50块")] == [("amount", 50.0)]


def test_mask_pii_masks_full_width_digits_and_email_in_place():
    text = "电话１３８１２３４５６７８ 邮箱 ａｂｃ＠ｑｑ．ｃｏｍ，订单号：１２３４５６７８９０１２"
    masked = mask_pii(text)
    assert masked == "电话[PHONE] 邮箱 [EMAIL]，订单号：１２３４５６７８９０１２"


def test_result_entity_offsets_point_into_the_normalized_text():
    import triage

    r = triage.load().triage("   麻烦查下訂單號：１２３４５６７８９０１２，電話 0912-345-678")
    assert {e.type for e in r.entities} >= {"order_number", "phone"}
    for e in r.entities:
        assert r.normalized[e.start : e.end] == e.text
