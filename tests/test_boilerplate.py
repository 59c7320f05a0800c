"""Messages cut down to the customer's request (retrieval.boilerplate) and how triage uses it."""

from datetime import datetime, timezone

import pytest

import triage
from retrieval.boilerplate import strip_boilerplate
from retrieval.text import normalize, prepare

GMAIL = """Hi, I returned the blender last Monday (return label RT-55120) but still no refund. When will it be processed?

On Fri, Nov 20, 2026 at 3:12 PM Shop Support <help@shop.example> wrote:

> Hello, our standard delivery takes 3-5 working days.
> Express orders placed before 4pm ship the same day.
"""

GMAIL_WRAPPED = """can you change the size on my order to a M instead of L? it hasn't shipped yet

Thanks
Dana

On Fri, Nov 20, 2026 at 3:12 PM Customer Care Team <
care@shop.example> wrote:

> Thank you for your order!
"""

OUTLOOK = """Hello,

The invoice you sent has the wrong company name. It should be Harbour Lights Trading Pte Ltd, please reissue.

Best regards,
Sam Patel
Procurement

________________________________
From: Shop Support <help@shop.example>
Sent: Friday, November 20, 2026 3:12 PM
To: Sam Patel <sam.p@mail.example>
Subject: RE: Invoice for order 7781

Please find your invoice attached.
"""

QQ_MAIL = """收到的杯子碎了两个，照片附上，怎么处理？

------------------ 原始邮件 ------------------
发件人: "客服中心"<service@shop.example>
发送时间: 2026年11月20日(星期五) 下午3:12
收件人: "我"<12345678@qq.com>
主题: 回复：物流查询

您好，您的包裹已由顺丰发出，预计2-3天送达。
"""

APPLE_MAIL_ZH = """发票抬头写错了，麻烦重开一张

发自我的iPhone

在 2026年11月20日，15:12，客服小美 <service@shop.example> 写道：

> 亲，您的订单已经发货啦
"""

APPLE_MAIL_HANT = """請問退款什麼時候會到帳？

從我的 iPhone 傳送

於 2026年11月20日 下午3:12，客服中心 <service@shop.example> 寫道：

> 您好，退貨已收到。
"""

HELPDESK = """I still can't log in, the reset link says expired every time.

##- Please type your reply above this line -##

Your request (48213) has been updated. To add additional comments, reply to this email.
"""

SIGNATURE = """Do you ship to Sabah? How many days?

-- 
Aisyah
+60 12-345 6789

Sent from my iPhone
"""


@pytest.mark.parametrize(
    ("email", "reply"),
    [
        (GMAIL, "I returned the blender last Monday (return label RT-55120) but still no refund. "
                "When will it be processed?"),
        (GMAIL_WRAPPED, "can you change the size on my order to a M instead of L? it hasn't shipped yet"),
        (OUTLOOK, "The invoice you sent has the wrong company name. It should be Harbour Lights "
                  "Trading Pte Ltd, please reissue."),
        (QQ_MAIL, "收到的杯子碎了两个,照片附上,怎么处理?"),
        (APPLE_MAIL_ZH, "发票抬头写错了,麻烦重开一张"),
        (APPLE_MAIL_HANT, "請問退款什麼時候會到帳?"),
        (HELPDESK, "I still can't log in, the reset link says expired every time."),
        (SIGNATURE, "Do you ship to Sabah? How many days?"),
    ],
    ids=["gmail", "gmail-wrapped", "outlook", "qq-mail", "apple-mail-zh", "apple-mail-hant", "helpdesk", "signature"],
)
def test_keeps_only_the_new_reply(email, reply):
    text = normalize(email)
    kept, removed = strip_boilerplate(text)
    assert kept == reply
    assert removed == len(text) - len(reply) > 0


def test_inline_quotes_are_dropped_and_answers_kept():
    text = normalize("> Which colour did you order?\nThe grey one.\n> And the size?\nXL, order 88120.")
    assert strip_boilerplate(text) == ("The grey one.\nXL, order 88120.", len(text) - len("The grey one.\nXL, order 88120."))


@pytest.mark.parametrize(
    ("message", "core"),
    [
        ("Hi there, hope you're doing well! My parcel from last week still says in transit.",
         "My parcel from last week still says in transit."),
        ("Dear Customer Service,\n\nplease cancel order 204-88131 before it ships.",
         "please cancel order 204-88131 before it ships."),
        ("Hello Ms. Rahman,\nthe coupon code SAVE15 gives an error at checkout.", "the coupon code SAVE15 gives an error at checkout."),
        ("Hello?? anyone there? need to change my delivery address", "need to change my delivery address"),
        ("hey guys can i pay with paypal", "can i pay with paypal"),
        ("亲，在吗？我的快递三天没动了", "我的快递三天没动了"),
        ("哈喽哈喽~ 这款有白色的吗", "这款有白色的吗"),
        ("老板，发票能开公司抬头吗？麻烦了", "发票能开公司抬头吗?"),
        ("請問退款什麼時候會到？謝謝", "請問退款什麼時候會到?"),
        ("Can you resend the invoice to my work email? Thanks in advance!", "Can you resend the invoice to my work email?"),
        ("Where is my order 88213? Looking forward to your reply.", "Where is my order 88213?"),
    ],
)
def test_greetings_and_thanks_around_a_request_are_cut(message, core):
    text = normalize(message)
    assert strip_boilerplate(text) == (core, len(text) - len(core))


@pytest.mark.parametrize(
    ("message", "core"),
    [
        ("Hi I need my money back for order 3321", "I need my money back for order 3321"),  # "I" is not a name
        ("hi i want refund, order 3321", "i want refund, order 3321"),  # lower case is never a name
        ("客服电话多少", "客服电话多少"),  # 客服 is what they ask for, not a form of address
        ("Thank you so much, the courier was lovely and the shoes fit perfectly",
         "Thank you so much, the courier was lovely and the shoes fit perfectly"),  # the thanks is the message
        ("Hiking boots in size 42?", "Hiking boots in size 42?"),
        ("the kettle I got is faulty", "the kettle I got is faulty"),  # "ty" ends a word here, not a thank-you
        ("The parcel arrived today, thank you so much!", "The parcel arrived today, thank you so much!"),  # praise
        ("收到了，质量很好，谢谢！", "收到了,质量很好,谢谢!"),
    ],
)
def test_words_that_carry_the_request_are_kept(message, core):
    assert strip_boilerplate(normalize(message))[0] == core


@pytest.mark.parametrize(
    "message",
    ["Hi,\n\nThanks in advance!", "亲，在吗？\n谢谢亲", "Dear Customer Service,\n\nThank you.", "哈囉～謝謝你們喔",
     "hello!! thx"],
)
def test_a_message_of_only_greeting_and_thanks_is_kept_whole(message):
    text = normalize(message)
    assert strip_boilerplate(text) == (text, 0)


def test_a_thanks_only_reply_loses_its_thread_but_keeps_the_thanks():
    text = normalize("Thanks, got it!\n\nOn Tue, Nov 24, 2026 at 9:02 AM Support <help@shop.com> wrote:\n"
                     "> Your refund of $35.90 was sent today.\n> It takes 3-5 working days.")
    assert strip_boilerplate(text) == ("Thanks, got it!", len(text) - len("Thanks, got it!"))


@pytest.mark.parametrize(
    "text",
    [
        "where is my parcel >_<",
        "Need a quote for bulk order\n> 50 pcs, do you give a discount?",
        "On Monday I ordered 2 lamps\nthe tracking hasn't moved since",
        "From: my phone, sorry for typos\nthe zip on my order is wrong",
        "谢谢",
        "在吗",
        "Hi there!",
        "Thanks,\nAnna",  # a closing alone is the whole message: kept
        "> quoted line one\n> quoted line two",  # all quote: nothing would be left
    ],
)
def test_leaves_messages_without_history_alone(text):
    assert strip_boilerplate(normalize(text)) == (normalize(text), 0)


def test_a_forward_is_kept_whole():
    text = normalize(
        "see below, this order was charged twice\n\n---------- Forwarded message ---------\n"
        "From: Shop <noreply@shop.example>\nDate: Fri, Nov 20, 2026\nSubject: Payment received\n\nAmount: $59.90"
    )
    assert strip_boilerplate(text) == (text, 0)


def test_prepare_strips_only_when_asked():
    assert prepare(GMAIL).boilerplate_chars == 0 and "wrote:" in prepare(GMAIL).normalized
    doc = prepare(GMAIL, strip_boilerplate=True)
    assert "wrote:" not in doc.normalized and doc.boilerplate_chars > 0
    assert doc.original == GMAIL


def test_triage_reads_the_reply_not_the_quoted_answer():
    # The quoted agent answer is about delivery times; the customer's reply asks for a refund.
    t = triage.load()
    result = t.triage(GMAIL)
    assert result.intent.label == "refund"
    assert result.boilerplate_chars > 0 and result.text == GMAIL
    assert result.to_dict()["boilerplate_chars"] == result.boilerplate_chars
    kept = triage.Triage(strip_boilerplate=False).triage(GMAIL)
    assert kept.boilerplate_chars == 0
    at = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
    batch = t.triage_batch([GMAIL, QQ_MAIL], received_at=at)
    assert [r.to_dict() for r in batch] == [t.triage(x, received_at=at).to_dict() for x in (GMAIL, QQ_MAIL)]
    assert batch[1].intent.label == "quality_issue"


def test_a_bare_chinese_name_above_the_quoted_thread_is_a_signature():
    thread = "\n\n发件人: 客服中心 <service@shop.example>\n发送时间: 2026年11月24日 9:02\n主题: 回复: 退款\n\n您好，退款已处理"
    assert strip_boilerplate(normalize("退款什么时候到账？\n\n歐陽志明" + thread))[0] == "退款什么时候到账?"
    assert strip_boilerplate(normalize("退款什么时候到账？\n\n明白" + thread))[0] == "退款什么时候到账?\n\n明白"  # no surname
    assert strip_boilerplate(normalize("退款什么时候到账？\n\n王磊"))[0] == "退款什么时候到账?\n\n王磊"  # no thread below
