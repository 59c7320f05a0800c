"""Email replies that quote the thread: intent accuracy with and without cutting the quote.

    python benchmarks/bench_email.py

Each message of the held-out split becomes the new text of an email reply that quotes an
agent's earlier answer about something else (an answer of another intent from the shipped
knowledge base), in the layout of a common mail client: Gmail, Outlook, Apple Mail, QQ Mail, a
helpdesk's "reply above this line" mail, with signatures and "Sent from my iPhone" footers.
The default then triages the plain messages, the emails as they are, and the emails with the
quoted part cut (the library's default). It also counts how often the cut email reads exactly
as the plain message does (both with their greetings and thanks cut).
"""

import random

from common import ROOT, print_table

import triage
from retrieval.text import prepare
from triage.data import iter_records


def _quote(answer: str) -> str:
    return "\n".join(f"> {line}" for line in answer.split("\n"))


# (name, layout). Each layout gets the customer's words and the agent's quoted answer.
ENGLISH_LAYOUTS = [
    ("Gmail", lambda reply, answer: f"{reply}\n\nOn Fri, Nov 20, 2026 at 3:12 PM Shop Support "
              f"<help@shop.example> wrote:\n\n{_quote(answer)}\n"),
    ("Gmail, header wrapped", lambda reply, answer: f"{reply}\n\nThanks\nDana\n\nOn Fri, Nov 20, 2026 at 3:12 PM "
              f"Customer Care Team <\ncare@shop.example> wrote:\n\n{_quote(answer)}\n>\n> Kind regards,\n> Leo\n"),
    ("Outlook", lambda reply, answer: f"{reply}\n\nBest regards,\nSam Patel\n\n________________________________\n"
              f"From: Shop Support <help@shop.example>\nSent: Friday, November 20, 2026 3:12 PM\n"
              f"To: Sam Patel <sam.p@mail.example>\nSubject: RE: Your order\n\n{answer}\n"),
    ("iPhone, signature", lambda reply, answer: f"{reply}\n\n-- \nChris Ng\n+1 415 555 0134\n\nSent from my iPhone\n\n"
              f"> On Nov 20, 2026, at 15:12, Shop Support <help@shop.example> wrote:\n>\n{_quote(answer)}\n"),
    ("helpdesk marker", lambda reply, answer: f"{reply}\n\n##- Please type your reply above this line -##\n\n"
              f"Your request (48213) has been updated.\n\nLeo (Shop Support)\n{answer}\n"),
]
CHINESE_LAYOUTS = [
    ("QQ Mail", lambda reply, answer: f"{reply}\n\n------------------ 原始邮件 ------------------\n"
              f"发件人: \"客服中心\"<service@shop.example>\n发送时间: 2026年11月20日(星期五) 下午3:12\n"
              f"收件人: \"我\"<12345678@qq.com>\n主题: 回复：订单咨询\n\n{answer}\n"),
    ("Apple Mail", lambda reply, answer: f"{reply}\n\n发自我的iPhone\n\n"
              f"在 2026年11月20日，15:12，客服小美 <service@shop.example> 写道：\n\n{_quote(answer)}\n"),
    ("Outlook", lambda reply, answer: f"{reply}\n\n王磊\n\n发件人: 客服中心 <service@shop.example>\n"
              f"发送时间: 2026年11月20日 15:12\n收件人: 王磊 <wanglei@mail.example>\n主题: 答复: 订单咨询\n\n{answer}\n"),
    ("helpdesk marker", lambda reply, answer: f"{reply}\n\n##- 请在此行上方回复 -##\n\n您的工单 (48213) 已更新。\n\n{answer}\n"),
]
TRADITIONAL_LAYOUTS = [
    ("Apple Mail", lambda reply, answer: f"{reply}\n\n從我的 iPhone 傳送\n\n"
              f"於 2026年11月20日 下午3:12，客服中心 <service@shop.example> 寫道：\n\n{_quote(answer)}\n"),
    ("Outlook", lambda reply, answer: f"{reply}\n\n寄件者: 客服中心 <service@shop.example>\n"
              f"寄件日期: 2026年11月20日 下午 03:12\n收件者: 陳小姐\n主旨: 回覆: 訂單查詢\n\n{answer}\n"),
]


def build_emails(rows: list[dict], answers: list[dict], seed: int = 7) -> list[tuple[str, str]]:
    """(layout name, email) per held-out row, quoting an answer of another intent."""
    rng = random.Random(seed)
    emails = []
    for i, row in enumerate(rows):
        script = row["lang"] if row["lang"] in ("zh-Hans", "zh-Hant") else "en"
        layouts = {"zh-Hant": TRADITIONAL_LAYOUTS, "zh-Hans": CHINESE_LAYOUTS, "en": ENGLISH_LAYOUTS}[script]
        name, layout = layouts[i % len(layouts)]
        lang = "en" if script == "en" else "zh"
        answer = rng.choice([a for a in answers if a["intent"] != row["intent"] and a.get("lang", lang) == lang])
        quoted = answer.get(f"answer_{lang}") or answer["answer"]
        emails.append((f"{name} ({script})", layout(row["text"], quoted)))
    return emails


if __name__ == "__main__":
    rows = [r for _, r in iter_records(ROOT / "data" / "eval" / "heldout.jsonl")]
    answers = [r for path in sorted((ROOT / "data" / "kb").glob("*.jsonl")) for _, r in iter_records(path)]
    emails = build_emails(rows, answers)
    gold = [r["intent"] for r in rows]
    kept, cut = triage.Triage(strip_boilerplate=False), triage.Triage()

    def accuracy(results, which):
        return sum(gold[k] == results[k].intent.label for k in which) / len(which)

    plain = cut.triage_batch([r["text"] for r in rows])
    as_is = kept.triage_batch([e for _, e in emails])
    stripped = cut.triage_batch([e for _, e in emails])
    exact = {k for k, (r, (_, e)) in enumerate(zip(rows, emails))
             if prepare(e, strip_boilerplate=True).normalized == prepare(r["text"], strip_boilerplate=True).normalized}
    groups = {"all": set(range(len(rows)))}
    for name in dict.fromkeys(n for n, _ in emails):
        groups[f"  {name}"] = {k for k, (n, _) in enumerate(emails) if n == name}
    print_table(
        f"intent accuracy on {len(rows)} held-out messages sent as email replies",
        ["layout", "messages", "plain message", "email, thread kept", "email, thread cut (default)",
         "customer's words recovered exactly"],
        [[name, len(which), accuracy(plain, which), accuracy(as_is, which), accuracy(stripped, which),
          len(which & exact) / len(which)] for name, which in groups.items()],
    )
