"""Email replies cut down to the customer's new words (retrieval.quoted) and how triage uses it."""

from datetime import datetime, timezone

import pytest

import triage
from retrieval.quoted import strip_quoted
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
        (GMAIL, "Hi, I returned the blender last Monday (return label RT-55120) but still no refund. "
                "When will it be processed?"),
        (GMAIL_WRAPPED, "can you change the size on my order to a M instead of L? it hasn't shipped yet"),
        (OUTLOOK, "Hello,\n\nThe invoice you sent has the wrong company name. It should be Harbour Lights "
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
    kept, removed = strip_quoted(text)
    assert kept == reply
    assert removed == len(text) - len(reply) > 0


def test_inline_quotes_are_dropped_and_answers_kept():
    text = normalize("> Which colour did you order?\nThe grey one.\n> And the size?\nXL, order 88120.")
    assert strip_quoted(text) == ("The grey one.\nXL, order 88120.", len(text) - len("The grey one.\nXL, order 88120."))


@pytest.mark.parametrize(
    "text",
    [
        "where is my parcel >_<",
        "Need a quote for bulk order\n> 50 pcs, do you give a discount?",
        "On Monday I ordered 2 lamps\nthe tracking hasn't moved since",
        "From: my phone, sorry for typos\nthe zip on my order is wrong",
        "谢谢",
        "Thanks,\nAnna",  # a closing alone is the whole message: kept
        "> quoted line one\n> quoted line two",  # all quote: nothing would be left
    ],
)
def test_leaves_messages_without_history_alone(text):
    assert strip_quoted(normalize(text)) == (normalize(text), 0)


def test_a_forward_is_kept_whole():
    text = normalize(
        "see below, this order was charged twice\n\n---------- Forwarded message ---------\n"
        "From: Shop <noreply@shop.example>\nDate: Fri, Nov 20, 2026\nSubject: Payment received\n\nAmount: $59.90"
    )
    assert strip_quoted(text) == (text, 0)


def test_prepare_strips_only_when_asked():
    assert prepare(GMAIL).quoted_chars == 0 and "wrote:" in prepare(GMAIL).normalized
    doc = prepare(GMAIL, strip_quoted=True)
    assert "wrote:" not in doc.normalized and doc.quoted_chars > 0
    assert doc.original == GMAIL


def test_triage_reads_the_reply_not_the_quoted_answer():
    # The quoted agent answer is about delivery times; the customer's reply asks for a refund.
    t = triage.load()
    result = t.triage(GMAIL)
    assert result.intent.label == "refund"
    assert result.quoted_chars > 0 and result.text == GMAIL
    assert result.to_dict()["quoted_chars"] == result.quoted_chars
    kept = triage.Triage(strip_quoted=False).triage(GMAIL)
    assert kept.quoted_chars == 0
    at = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
    batch = t.triage_batch([GMAIL, QQ_MAIL], received_at=at)
    assert [r.to_dict() for r in batch] == [t.triage(x, received_at=at).to_dict() for x in (GMAIL, QQ_MAIL)]
    assert batch[1].intent.label == "quality_issue"
