"""Greetings and thanks around a message: how much they move intent and sentiment.

    python benchmarks/bench_pleasantries.py [--seed 11]

Real customers wrap their requests in pleasantries ("Hi there, hope you're well.", "Dear
Customer Service,", "亲，在吗？", "哈囉～", "唔該晒", "Thanks in advance!", "麻烦尽快回复，谢谢！").
The words say nothing about what the customer wants, so they should not change the triage.
Each message of the held-out split is sent three more times: after an opener, before a closer,
and between both, drawn at random per message from the lists below for its script (the English
lists for en and mixed, simplified Chinese for zh-Hans, Taiwan and Hong Kong usage for zh-Hant).
The shipped default triages every variant with pleasantry removal on (the library's default)
and off (strip_boilerplate=False).

The phrase lists were written independently of the library's removal rules, without looking at
them, so that the benchmark measures those rules instead of echoing them. They hold pleasantries
only: no word that hints at an intent, no complaint, no praise of a product or of the service.
"""

import argparse
import random

from common import ROOT, print_table

import triage
from triage.data import iter_records

OPENERS_EN = [
    "Hello,\n\n", "Hi there, hope you're doing well. ", "Good afternoon,\n", "To whom it may concern,\n\n",
    "hey guys ", "Hi Amy, ", "Dear Customer Service,\n\n", "Dear Sir/Madam,\n", "Hi team,\n\n", "Hello! ",
    "hi ", "Good morning! ", "Hey there 👋 ", "Hi, hope you're well. ", "Dear Support Team,\n\n", "HELLO ",
    "Hi Shopee team, ", "Hello Amazon Support,\n\n", "Good evening, ", "Hey, ", "Hiya! ", "Hi Mark,\n\n",
    "hello? anyone there? ", "Hi, good day! ", "Dear Ms. Tan,\n\n", "Greetings,\n\n", "Hi again, ",
    "Morning! ", "Hi there 😊\n", "Hello support team, hope you are having a great day!\n\n", "Hi Priya,\n\n",
    "yo ", "Hello hello, ", "Good day Sir, ", "Hi Customer Care,\n", "Dear Lazada team,\n\n",
]
CLOSERS_EN = [
    " Thanks!", "\n\nThanks in advance,\nMarco", " thx", "\n\nKind regards,\nJ. Lee",
    " Appreciate your help 🙏", "\n\nLooking forward to hearing from you.", " ty!!", " Thank you.",
    "\n\nBest,\nSarah", "\n\nRegards,\nAhmad", " Thanks so much!", " Thank you in advance.",
    "\n\nMany thanks,\nOlivia", " cheers", "\n\nCheers,\nTom", "\n\nSincerely,\nDavid Wong",
    " Have a nice day!", " tks", " Thanks a lot 😊", "\n\nThank you and have a great weekend.",
    "\n\nBest regards,\nNur Aisyah", " Much appreciated.", " thank u", " Thanks guys!",
    "\n\nWarm regards,\nKenji", " Thanks for your help.", " Many thanks in advance!",
    "\n\nThanks & regards,\nRahul", " TIA", "\n\nAll the best,\nEmma", " Have a good one!",
    "\n\nThank you,\nMrs. Garcia", " 🙏", " Thanks, have a great day!",
]
OPENERS_ZH = [
    "亲，", "亲亲在吗？", "您好，", "你好客服，", "在吗在吗 ", "客服小姐姐你好～", "哈喽，", "老板在吗，",
    "在吗？", "你好，", "您好！", "亲在吗？", "hello，", "客服你好，", "客服在吗？", "亲～", "你好呀，",
    "掌柜的在吗？", "小哥哥你好，", "早上好，", "下午好，", "晚上好，", "尊敬的客服：\n", "你好，打扰一下，",
    "亲爱的客服，", "嗨，", "您好，打扰了，", "在不在？", "哈喽哈喽～", "客服小哥哥在吗，", "店家你好，",
    "宝，在吗？", "您好客服，", "亲，您好！", "您好：\n",
]
CLOSERS_ZH = [
    "谢谢", "，谢谢亲～", "\n麻烦尽快回复，谢谢！", "，辛苦了", "，多谢！", "🙏🙏", "，谢谢！", "。谢谢。",
    "，麻烦了", "，谢谢啦", "，感谢", "，谢谢客服", "～谢谢", "，辛苦啦～", "，麻烦您了，谢谢！",
    "，感谢感谢", "，谢啦", "，万分感谢！", "\n谢谢！", "，拜托了🙏", "，先谢谢了", " 谢谢亲", "，有劳了",
    "，辛苦亲了", "，谢谢您", "，谢了", "，感激不尽", "，多谢多谢", "。祝好！", "\n\n此致\n敬礼", "，谢谢哈",
    "，谢谢😊", "，等回复，谢谢",
]
OPENERS_HANT = [
    "您好，", "哈囉～", "唔該，", "你好呀，", "你好，", "您好！", "哈囉，", "客服您好，", "安安，", "嗨，",
    "Hello，", "你好，打擾一下，", "不好意思打擾了，", "小編你好，", "哈囉你好～", "你好呀～", "Hi 你好，",
    "早安，", "午安，", "客服你好，", "唔該你，", "你好，唔好意思，", "喂，你好，", "Hello 你好，",
    "親愛的客服，", "您好，冒昧打擾，",
]
CLOSERS_HANT = [
    "謝謝", "唔該晒！", "感恩🙏", "，麻煩了，謝謝", "，謝謝！", "，感謝～", "，謝謝你", "，唔該", "，多謝！",
    "，辛苦了", "，謝謝您", "，感謝感謝", "，麻煩你了", "～謝謝", "，唔該晒🙏", "，多謝晒", "，先謝謝了",
    "，感恩", "\n謝謝！", "，拜託了🙏", "，謝謝哦", "，thx", "，勞煩晒", "，辛苦你了", "，謝啦～",
]
PHRASES = {"en": (OPENERS_EN, CLOSERS_EN), "mixed": (OPENERS_EN, CLOSERS_EN),
           "zh-Hans": (OPENERS_ZH, CLOSERS_ZH), "zh-Hant": (OPENERS_HANT, CLOSERS_HANT)}


def _close(text: str, closer: str) -> str:
    """Text and closer, without a comma straight after the message's own final punctuation."""
    ends_sentence = text.endswith(("。", "！", "？", "!", "?", "."))
    return text + (closer[1:] if closer.startswith("，") and ends_sentence else closer)


def build_variants(rows: list[dict], seed: int = 11) -> dict[str, list[str]]:
    """The plain messages and the three wrapped versions; one opener and one closer drawn per message."""
    rng = random.Random(seed)
    variants = {"plain": [], "opener": [], "closer": [], "both": []}
    for row in rows:
        openers, closers = PHRASES[row["lang"]]
        opener, closer, text = rng.choice(openers), rng.choice(closers), row["text"]
        closed = _close(text, closer)
        for name, wrapped in zip(variants, (text, opener + text, closed, opener + closed)):
            variants[name].append(wrapped)
    return variants


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=11, help="picks the opener and closer of each message")
    seed = parser.parse_args().seed
    rows = [r for _, r in iter_records(ROOT / "data" / "eval" / "heldout.jsonl")]
    variants = build_variants(rows, seed)
    default, off = triage.load(), triage.Triage(strip_boilerplate=False)
    on = {name: default.triage_batch(texts) for name, texts in variants.items()}
    kept = {name: off.triage_batch(texts) for name, texts in variants.items()}

    def accuracy(results, head: str, which: list[int]) -> float:
        return sum(rows[k][head] == getattr(results[k], head).label for k in which) / len(which)

    everyone = list(range(len(rows)))
    print_table(
        f"held-out split wrapped in pleasantries ({len(rows)} messages, seed {seed})",
        ["variant", "intent, removal on (default)", "intent, removal off", "sentiment, removal on",
         "sentiment, removal off", "intent unchanged vs plain (on)"],
        [[name, accuracy(on[name], "intent", everyone), accuracy(kept[name], "intent", everyone),
          accuracy(on[name], "sentiment", everyone), accuracy(kept[name], "sentiment", everyone),
          sum(a.intent.label == b.intent.label for a, b in zip(on[name], on["plain"])) / len(rows)]
         for name in variants],
    )
    scripts = {lang: [k for k, r in enumerate(rows) if r["lang"] == lang] for lang in PHRASES}
    print_table(
        "intent accuracy per script, opener + message + closer",
        ["script", "messages", "plain (on)", "both, removal on", "both, removal off"],
        [[lang, len(which), accuracy(on["plain"], "intent", which), accuracy(on["both"], "intent", which),
          accuracy(kept["both"], "intent", which)] for lang, which in scripts.items()],
    )
