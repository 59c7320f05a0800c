"""Named urgency signals and the urgency decision.

The urgency head predicts a level; the signals below are evidence a support lead can read
("mentions 12315", "third time asking"). A signal can only raise the level, never lower it,
and every one that fired is listed in ``urgency.reasons``. Patterns run on normalised,
simplified, lower-cased text, so one pattern covers simplified and traditional Chinese.

Because a signal overrides the model, a word counts only in the context that makes it
evidence: 12345 near "投诉"/"call" (not as an order number), "court" as in "take you to
court", a burn that happened to someone, "urgent" not negated, a wedding with a date.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .entities import extract_entities
from .results import UrgencyReason, UrgencyResult
from .taxonomy import DEFAULT_RESPONSE_TARGETS, URGENCY_LEVELS, urgency_rank


@dataclass(frozen=True)
class UrgencySignal:
    """A named pattern and the lowest level a message showing it gets.

    `veto(text, match)`, when set, rejects a match whose context shows it is no evidence
    (a negated "not urgent"); a later match in the same text can still fire the signal.
    `gate`, when set, is a fast pattern that any match contains (a hotline number, an
    occasion): texts without it skip `pattern`, whose context alternatives are slow to scan.
    """

    name: str
    level: str
    pattern: re.Pattern
    veto: Callable[[str, re.Match], bool] | None = None
    gate: re.Pattern | None = None

    def find(self, text: str) -> str | None:
        if self.gate is not None and self.gate.search(text) is None:
            return None
        pos = 0
        while (match := self.pattern.search(text, pos)) is not None:
            if self.veto is None or not self.veto(text, match):
                return match.group(0)
            pos = match.start() + 1  # a vetoed match may hide a real one that overlaps it
        return None


def _signal(
    name: str, level: str, *alternatives: str, veto: Callable[[str, re.Match], bool] | None = None,
    gate: str | None = None,
) -> UrgencySignal:
    # ASCII mode: Chinese characters are not word characters, so English word boundaries also
    # hold inside code-switched text such as "同银行讲chargeback".
    flags = re.IGNORECASE | re.ASCII
    return UrgencySignal(name, level, re.compile("|".join(alternatives), flags), veto,
                         re.compile(gate, flags) if gate else None)


# Text between a cue and the word it qualifies: same sentence, no digits.
_GAP = r"[^\d.!?;。！？；\n]"

# Government complaint hotlines (consumer 12315, citizen 12345, quality 12365, food and drug 12331,
# price 12358), only as a whole number: not inside a longer run such as a phone "98450 12345".
_HOTLINE_NUMBERS = "12315|12345|12365|12331|12358"
_HOTLINE = rf"(?<![\w-])(?<!\d )(?:{_HOTLINE_NUMBERS})(?![\w-]|[ -]\d)"
_HOTLINE_BEFORE = (
    r"投诉|举报|反映|申诉|打|拨|报|找|去|向|告|\b(?:call|ring|phone|dial|report|complain|contact|lodge|file|escalate)\w*"
)
_HOTLINE_AFTER = r"投诉|举报|反映|申诉|登记|\b(?:complain|report)"

# Someone hurt, for "burned my hand", "hurt my son".
_PERSON = (
    r"(?:me|him|her|(?:my|his|her|our|their|the) (?:[\w']+ )?(?:hands?|fingers?|thumbs?|palms?|arms?|legs?"
    r"|feet|foot|skin|face|mouth|tongue|lips?|eyes?|neck|son|daughter|kids?|child(?:ren)?|baby|wife|husband))"
)
_ELECTRICAL = r"plug|socket|outlet|cable|cord|wire|wiring|charger|adapter|battery|power strip|extension lead"

# Occasions a deadline hangs on, and the dates and times that make them one.
_OCCASION_EN = r"\b(?:wedding|birthday|flight(?! of stairs)|party)\b"
_OCCASION_ZH = r"(?:婚礼|出国|航班|(?:坐|搭|上)飞机|考试|开学|生日|派对)"
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_WHEN = (
    r"今天|今日|今晚|明天|明日|听日|明早|明晚|后天|后日|这周[一二三四五六日天末]?|下周[一二三四五六日天末]?|周[一二三四五六日天末]"
    r"|星期[一二三四五六日天]|礼拜[一二三四五六日天]|\d+号|\d+月\d+|\d+天后|\d+点|月底"
    r"|\b(?:today|tonight|tomorrow|tmrw?|(?:this|next) (?:week(?:end)?|(?:mon|tues|wednes|thurs|fri|satur|sun)day)"
    r"|(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?)(?:day)?|sunday|in (?:\d+|a few|two|three) days"
    rf"|\d{{1,2}}(?:st|nd|rd|th)|\d{{1,2}}(?:st|nd|rd|th)? (?:of )?{_MONTH}|{_MONTH}\.? \d{{1,2}}"
    r"|at \d{1,2}(?::\d\d)? ?(?:[ap]m)?|\d{1,2}(?::\d\d)? ?[ap]m)(?![\w%])"
)
_OCCASION = rf"(?:{_OCCASION_EN}|{_OCCASION_ZH})"

# Right before a match: a negation ("not that urgent", "不是很急") or a "会不会" question.
_NEGATION = re.compile(
    r"(?:\b(?:not|no|non|nothing|never)|n['’]t|不|没|冇|未|无|别)"
    r"(?:\s*(?:so|that|too|very|really|super|particularly|at all|an?|any|是|很|太|那么|特别|算|怎么|用|必))*[\s-]*$",
    re.ASCII,
)
_QUESTION = re.compile(rf"会不会{_GAP}{{0,8}}$")


def _negated(text: str, match: re.Match) -> bool:
    """Negated ("not urgent", "no emergency", "不着急", "没扣钱"): the word is there, the event is not."""
    return _NEGATION.search(text, max(0, match.start() - 20), match.start()) is not None


def _hypothetical(text: str, match: re.Match) -> bool:
    """Asked about a product before buying ("会不会鼓包"): nothing has happened."""
    return _QUESTION.search(text, max(0, match.start() - 12), match.start()) is not None


def _order_or_amount(text: str, match: re.Match) -> bool:
    """Part of an order number or a price ("order 12345", "#12345", "12345元"), not a hotline."""
    return any(
        e.type in ("order_number", "tracking_number", "amount") and e.start < match.end() and match.start() < e.end
        for e in extract_entities(text)
    )


DEFAULT_SIGNALS: tuple[UrgencySignal, ...] = (
    _signal(
        "safety_hazard", "critical",
        r"爆炸|(?:电池|充电宝|手机|机器|电源|锅|灯|插头|插座)炸了|起火|着火|冒烟|自燃|烧焦"
        # A burn someone got ("烫到手", "被烫伤"), not a product that is hot ("烫手") or prevents one ("防烫伤", "烫伤膏").
        r"|(?<!防)[烧烫]伤(?![膏药贴喷])|烫(?:到(?=了|[手脚腿嘴脸皮我他她人]|孩子|宝宝|小孩|[,.!?，。！？\s]|$)|红|破|[出起].{0,2}泡)|被烫(?!坏)"
        r"|触电|漏电|电到|鼓包|受伤|流血|划伤|割伤|中毒|过敏|送医(?![生师护])|医院|住院|急诊|窒息|误吞|吞了|呕吐|上吐下泻|拉肚子|发烧|伤到"
        r"|怀孕|孕妇|孕期|摔倒|跌倒|跌亲|摔伤|救命|呼吸困难|氧气|制氧机|呼吸机|膨胀(?![金价])",
        r"\b(?:fire(?! ?(?:tv|stick|tablet|hd|kindle))|caught fire|on fire|explod\w*"
        # Burns need a victim or a burning device: not "burn cream", "burn-in", "bulb burnt out".
        rf"|(?:got|gets|getting|was|were) (?:badly |severely )?(?:burn(?:ed|t)|scalded)|(?:burn(?:ed|t|s)?|scald(?:ed|s)?|hurt) {_PERSON}"
        r"|burns? (?:on|to) (?:my|his|her|their|the)|(?:burning|burnt) smell|smell(?:s|ed|ing)? (?:of |like )?(?:burning|burnt)"
        r"|(?:started|starts|began) (?:burning|smoking|sparking)"
        rf"|(?:{_ELECTRICAL})s? (?:has |had |have |was |is |got )?melted|melt(?:ed|ing)? (?:the |my |a )?(?:[\w-]+ )?(?:{_ELECTRICAL})"
        r"|smok(?:e|ing) came|electric(?:al)? shock|shocked me|swell\w*|swollen|injur\w*|(?:got|was|were|is|am|are|been|my \w+ (?:is|was)) hurt"
        r"|bleed\w*|hospital\w*|emergency room|allergic"
        r"|food poisoning|poison\w*|chok\w*|(?:a|skin|got|itchy|red) rash(?:es)?|vomit\w*|sparks?|pregnan\w*"
        r"|oxygen|can'?t breathe|life[- ]threatening|medical emergency)\b",
        veto=_hypothetical,
    ),
    _signal(
        "legal_threat", "critical",
        rf"(?:{_HOTLINE_BEFORE}){_GAP}{{0,10}}{_HOTLINE}|{_HOTLINE}{_GAP}{{0,10}}(?:{_HOTLINE_AFTER})",
        veto=_order_or_amount, gate=_HOTLINE_NUMBERS,
    ),
    _signal(
        "legal_threat", "critical",
        r"消协|消费者协会|消保|消基会|消委会|消费者委员会|工商局|工商部门|告到工商|找工商|市场监[管督]|律师|起诉|法院|打官司|诉讼"
        r"|报警|警察|(?:找|报|去)公安|法律途径|仲裁",
        r"\b(?:lawyer|attorney|solicitor|sue|suing|lawsuit|legal action|police|small claims"
        r"|(?:take|taking|took|drag|dragging|go|going|see you) (?:\w+ ){0,2}(?:to|in) court|court (?:case|action|claim|order|summons)"
        r"|consumer (?:protection|council|tribunal|rights|court|forum)|(?:county|district|high|civil) court|ftc|bbb|trading standards|ombudsman|regulator)\b",
    ),
    _signal(
        "fraud", "critical",
        r"盗刷|被盗|盗号|诈骗|骗子|被骗|未授权|没有授权|不是我本?人?(?:买|下单|下的|操作|付|支付)|陌生(?:的)?(?:扣款|订单|登录|设备)"
        r"|莫名其?妙?(?:地|的)?(?:被)?扣|不(?:认识|明)的?(?:扣款|交易|消费|付款)|账号被(?:盗|黑|人登)|被人(?:登录|盗用|冒用)|冒充|钓鱼",
        r"\b(?:fraud\w*|scam\w*|(?:card|account|password|identity|details|wallet|credit card) (?:was |were |got |has been |is )?stolen"
        r"|stole my (?:card|account|password|identity|details)|unauthori[sz]ed|hack(?:ed|er|ing)?|phishing|identity theft"
        r"|did(?:n't| not) (?:make|authori[sz]e|place|buy|order) (?:this|these|that|it|any)"
        r"|someone (?:else )?(?:logged|used|placed|accessed|bought)|not made by me"
        r"|unrecogni[sz]ed (?:payment|charge|transaction|debit)s?"
        r"|(?:payment|charge|transaction|debit)s?\b[^.?!]{0,60}\b(?:i |we )?(?:don'?t|dont|do not|didn'?t|didnt|did not) recogni[sz]e"
        r"|(?:don'?t|dont|do not) recogni[sz]e (?:th(?:is|ese|at|ose) |the |a |an |two |any )?(?:\w+ )?(?:payment|charge|transaction|debit)s?)\b",
    ),
    _signal(
        "chargeback", "critical",
        r"拒付|信用卡争议|银行争议|发起争议|申请争议|拒绝付款|找银行",
        r"\b(?:charge ?back|dispute (?:the |this |it )?(?:charge|transaction|payment)"
        r"|(?:call|contact|tell) my (?:bank|card issuer|credit card company)|reverse the charge)\b",
    ),
    _signal(
        "public_exposure", "high",
        r"微博|小红书|抖音|曝光|黑猫|媒体|记者|朋友圈|网上说|发到网上|差评|公众号|知乎",
        r"\b(?:twitter|tweet\w*|facebook|instagram|tiktok|reddit|trustpilot|social media|post (?:this|it|about)"
        r"|review(?:s)? everywhere|1[- ]star|one[- ]star|journalist|(?:go|going|talk|talking|tell|contact) to the (?:news|press|media)"
        r"|news ?paper|the press|expose|go public|viral)\b",
    ),
    _signal(
        "repeated_contact", "high",
        r"第[二三四五六七八九十几\d]+次|又一次|多次|好几次|\d+次了|几次了|(?:说|问|打)了(?:好几|好多|多少|几|\d+)[遍次]"
        r"|一直没人|没人(?:回|理|管)|没有人(?:回|理|管)|还是没(?:人)?(?:回|解决)|再问一[次遍]|催了",
        r"\b(?:(?:second|third|fourth|fifth|\d+(?:st|nd|rd|th)) (?:time|email|message|request)"
        r"|again and again|multiple times|several times|many times|(?:\d+|three|four|five) times"
        r"|keep (?:asking|calling|emailing|chasing)|still no (?:reply|response|answer|update)"
        r"|no ?one (?:has )?(?:replied|responded|answered|gets back)|nobody (?:has )?(?:replied|responded|answered)"
        r"|already (?:asked|contacted|emailed|called|messaged|wrote|written)|follow(?:ing)? up again)\b",
    ),
    _signal(
        "deadline", "high",
        r"急用|急需|着急|很急|特别急|加急|紧急|赶时间|来不及|赶飞机|明天(?:就|要|必须|一定|之前|前)"
        r"|今天(?:就(?:要|得|需要)|必须|一定|之内|内)|\d+点(?:前|之前)|最晚",
        r"\b(?:urgent\w*|asap|a\.s\.a\.p|(?:by|before) (?:tomorrow|today|tonight|monday|tuesday|wednesday|thursday|friday"
        r"|saturday|sunday)|deadline|need (?:it|this|them) (?:by|tonight|today|tomorrow)|running out of time|emergency"
        r"|(?:ends?|ending|expires?|expiring) (?:tonight|today|tomorrow|at midnight))\b",
        veto=_negated,
    ),
    _signal(
        "deadline", "high",
        # An occasion ("wedding guest", "生日券") is a deadline only with a date or tied by before/by.
        rf"{_OCCASION}{_GAP}{{0,50}}?(?:{_WHEN})|(?:{_WHEN}){_GAP}{{0,50}}?{_OCCASION}|{_OCCASION_ZH}(?:之?前|当天|那天)"
        rf"|\b(?:before|by|in time for) (?:the |my |our |his |her |their )?(?:[\w']+ )?{_OCCASION_EN}",
        veto=_negated, gate=_OCCASION,
    ),
    _signal(
        "money_lost", "high",
        r"扣了?两次|扣款两次|重复扣|多扣|扣了?钱|钱(?:被)?扣|钱没了|钱不见|没(?:有)?退(?:款|钱)|未退款|退款(?:还)?没(?:有)?(?:到|收到)"
        r"|钱(?:还)?没(?:有)?(?:到|退)|付了钱|付款成功.{0,6}没有?订单|白付",
        r"\b(?:charged (?:me )?twice|double[- ]charged|charged (?:me )?(?:but|and) no order|overcharged"
        r"|money (?:is )?(?:gone|taken|deducted|missing)|(?:haven't|have not|never|still not) (?:got|gotten|received) (?:my |the )?(?:refund|money)"
        r"|lost (?:my )?money|where is my (?:refund|money)|paid but)\b",
        veto=_negated,
    ),
)


def find_signals(text: str, signals: tuple[UrgencySignal, ...] = DEFAULT_SIGNALS) -> list[UrgencyReason]:
    """Every signal present in `text` (normalised, simplified), with the words that showed it;
    a name given to several signals (one per kind of evidence) is reported once."""
    lowered = text.lower()
    found: dict[str, UrgencyReason] = {}
    for signal in signals:
        if signal.name not in found and (evidence := signal.find(lowered)) is not None:
            found[signal.name] = UrgencyReason(signal.name, signal.level, evidence)
    return list(found.values())


def decide_urgency(
    model_level: str,
    model_confidence: float,
    text: str,
    *,
    received_at: datetime | None = None,
    response_targets: dict[str, timedelta] | None = None,
    signals: tuple[UrgencySignal, ...] = DEFAULT_SIGNALS,
) -> UrgencyResult:
    """Combine the model's level with the named signals and attach the response deadline.

    Parameters
    ----------
    model_level : str
        The urgency head's prediction.
    model_confidence : float
        Its calibrated probability, in [0, 1].
    text : str
        Normalised, simplified message text.
    received_at : datetime, optional
        When the message arrived; naive datetimes are taken as UTC. Default: now.
    response_targets : dict, optional
        First-response target per level; missing levels use
        :data:`triage.taxonomy.DEFAULT_RESPONSE_TARGETS`.
    """
    targets = {**DEFAULT_RESPONSE_TARGETS, **(response_targets or {})}
    reasons = find_signals(text, signals)
    level = min([model_level, *(r.level for r in reasons)], key=urgency_rank)
    model_reason = UrgencyReason("model", model_level, f"classifier confidence {model_confidence:.2f}")
    received = received_at or datetime.now(timezone.utc)
    if received.tzinfo is None:
        received = received.replace(tzinfo=timezone.utc)
    return UrgencyResult(
        level=level,
        model_level=model_level,
        confidence=model_confidence,
        reasons=(*reasons, model_reason),
        due=received + targets[level],
    )


__all__ = ["DEFAULT_SIGNALS", "URGENCY_LEVELS", "UrgencySignal", "decide_urgency", "find_signals"]
