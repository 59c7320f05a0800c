"""Named urgency signals and the urgency decision.

The urgency head predicts a level; the signals below are evidence a support lead can read
("mentions 12315", "third time asking"). A signal can only raise the level, never lower it,
and every one that fired is listed in ``urgency.reasons``. Patterns run on normalised,
simplified, lower-cased text, so one pattern covers simplified and traditional Chinese.

Because a signal overrides the model, a word counts only in the context that makes it
evidence: 12345 near "投诉"/"call" (not as an order number), "court" as in "take you to
court", a burn that happened to someone, "urgent" not negated, a wedding with a date, a count
of contacts rather than of retries ("third time asking", not "tried 6 times to log in"), 骗子 or
"scam" with money taken or someone posing as the shop (not "骗子商家，质量这么差"), a social
network with posting ("发小红书曝光", not "Facebook login" or "黑猫宅急便").
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


# The sentence around a match: up to `before` characters back and `after` on, not past a full stop.
_SENTENCE_END = re.compile(r"[.!?;。！？；\n]")


def _sentence(text: str, match: re.Match, before: int, after: int) -> str:
    head = _SENTENCE_END.split(text[max(0, match.start() - before):match.start()])[-1]
    tail = _SENTENCE_END.split(text[match.end():match.end() + after], maxsplit=1)[0]
    return head + match.group(0) + tail


# A count of the customer's own attempts at something they do themselves: retrying ("tried 6 times",
# "试了好几次", "刷新了好几次", "clicked unsubscribe 3 times"), locking themselves out ("输错太多次",
# "too many times"), buying again ("回购好几次"), or a limit asked about ("how many times can I").
# Not when "you"/"they" did it ("you've changed the delivery date 3 times").
_RETRY = re.compile(
    r"(?<!\byou )(?<!\byou've )(?<!\byou’ve )(?<!\byou have )(?<!\bthey )(?<!\bthey've )"
    r"\b(?:tr(?:y|ied|ying)|retr(?:y|ied|ying)|attempt\w*|press(?:ed|ing)?|click(?:ed|ing)?|tap(?:ped|ping)?"
    r"|hit|reset(?:ting)?|re-?enter(?:ed|ing)?|enter(?:ed|ing)?|typ(?:e|ed|ing)|refresh(?:ed|ing)?"
    r"|reload(?:ed|ing)?|restart(?:ed|ing)?|reboot(?:ed|ing)?|reinstall(?:ed|ing)?|resen[dt]|re-?sent"
    r"|check(?:ed|ing)?|chang(?:e|ed|ing)|updat(?:e|ed|ing)|fill(?:ed|ing)?|done|did|drag(?:ged|ging)?"
    r"|order(?:ed|ing)|bought|purchased|unsubscrib\w*|repl(?:y|ied) stop"
    r"|request(?:ed|ing)? (?:it|another|a new (?:code|link|otp|one))|too many|how many|no matter)\b"
    r"|试|刷新|刷了|刷咗|点了|点咗|点击|按了|按咗|输入|输错|重启|重装|重置|扫码|买(?:了|过|咗)"
    r"|买(?=好几|好多|多次|几次)|回购|退订|改了|改咗",
    re.ASCII,
)
# Words for what failed rather than for trying again ("登不上", "payment failed"): they make "好几次" or
# "4 times" a count of attempts, but not "第三次" or "third time", which more often count reports.
_RETRY_WEAK = re.compile(
    r"\b(?:log(?:ged|ging)? ?(?:in|on)|login|sign(?:ed|ing)? ?(?:in|up)"
    r"|(?:payment|card|transaction|otp|code|login|password)s? (?:\w+ )?"
    r"(?:fail(?:ed|s|ing)?|declined|rejected))\b"
    r"|登录|登入|登陆|登不|登唔|注册|密码错",
    re.ASCII,
)
# ... unless the same sentence says it was support they tried ("tried calling 4 times", "点了转人工好几次").
_CONTACT = re.compile(
    r"\b(?:ask(?:ed|ing|s)?|contact(?:ed|ing)?|call(?:ed|ing|s)?|phon(?:ed|ing)|rang|ring(?:ing)?"
    r"|e-?mail(?:ed|ing)|messag(?:ed|ing)|wr(?:ote|ite|iting|itten)|chat(?:ted|ting)?|told|tell(?:ing)?"
    r"|report(?:ed|ing)?|complain(?:ed|ing)?|chas(?:e|ed|ing)|follow(?:ed|ing)? up|check(?:ed|ing)? in"
    r"|reach(?:ed|ing)? (?:out|you|support|someone|a human|an agent)|spoke|spoken|talk(?:ed|ing)? to"
    r"|transferred|support|customer service|agents?|human|representative|hotline|live chat|refund"
    r"|(?:an?|any|no|get|getting|got) (?:answer|reply|response))\b"
    r"|问(?!题)|联系|联络|找你|找客服|揾|打电话|打来|打过来|打给|致电|来电|客服|人工|留言|私讯|私信"
    r"|传讯息|发讯息|发消息|反映|反馈|投诉|申诉|申请|催|说了|讲了|退款",
    re.ASCII,
)
# The counts among the repeated-contact matches ("third time", "第三次", "4 times", "好几次"); the rest
# ("催了", "3rd email", "no one replied") say contact by themselves.
_COUNT = re.compile(r"第.+次|又一次|多次|好几次|\d+次了|几次了|.+ times?|again and again", re.ASCII)
_ORDINAL = re.compile(r"第.+次|.+ time", re.ASCII)


def _retry_not_contact(text: str, match: re.Match) -> bool:
    """A count of the customer's own retries ("tried 6 times", "试了好几次"), not of contacts with support."""
    count = match.group(0)
    if _COUNT.fullmatch(count) is None:
        return False
    sentence = _sentence(text, match, 40, 40)
    retried = _RETRY.search(sentence) is not None or (
        _ORDINAL.fullmatch(count) is None and _RETRY_WEAK.search(sentence) is not None
    )
    return retried and _CONTACT.search(sentence) is None


# Around "骗子", "被骗" or "scam", what makes it fraud rather than an insult ("骗子商家", "what a scam"):
# money taken or paid for nothing, a call, text or link from someone posing as the shop, a hacked account.
_FRAUD_CONTEXT = re.compile(
    r"诈骗|冒充|假冒|自称|钓鱼|盗(?!版)|黑客|被黑|短信|(?:点了?|点开|发来|发给我)[^.!?。]{0,4}链接|扫码"
    r"|(?:要|把|报|给了?|告诉[^.!?。]{0,3})验证码|验证码(?:给|报|告诉)|转账|转帐|汇款|打款|卷款|跑路"
    r"|转(?:了|过去|给[^.!?。]{0,4})?[\d一二两三四五六七八九十百千万]+(?:块|元|万)"
    r"|(?:收|拿|骗|卷|吞)(?:了|走)?(?:我|我们)?的?(?:钱|款|货款|定金|订金)"
    r"|骗(?!子)(?:了|走)?(?:我|我们)?[^\s,.!?。]{0,3}(?:钱|块|元|万|\d)|钱(?:被)?(?:骗|转走|拿走|卷走|没了)"
    r"|不退钱|钱不退|定金|订金|保证金|押金|未授权|没有?授权|不是我(?:本人)?(?:买|下|付|操作)"
    r"|(?:付|交)了?[^\s,.!?。]{0,2}(?:钱|款)[^.!?。]{0,8}?(?:不|没有?)(?:发货|发|给|退|到)"
    r"|(?:骗子|诈骗)(?:电话|短信)|(?:接到|收到|打来)[^.!?。]{0,8}(?:电话|短信|链接)"
    r"|打了?电话(?:给|来|过来)|给我打电话|来电|电话(?:里|中)?(?:说|让|要|叫)"
    r"|\b(?:(?:took|taken|kept|keeping|stole|steal|stolen) (?:my|our|the|all|his|her) (?:\w+ )?"
    r"(?:money|payment|cash|deposit|savings)|hack(?:ed|er|ers|ing)?|hijack\w*|phish\w*|pretend\w*"
    r"|impersonat\w*|posing as|claim(?:ing|ed|s)? to be"
    r"|fake (?:tracking|site|website|store|shop|e-?mail|page|link|number|account|seller|call|text|sms)"
    r"|sms|text message|phone call|card (?:number|details)|bank details|cvv|gift ?cards?"
    r"|(?:got|received|had|getting) (?:a |an )?(?:\w+ )?(?:call|text|message|e-?mail)s?"
    r"|(?:called|texted|messaged|emailed|rang) me"
    r"|(?:ask\w*|send|sent|give|gave|enter\w*|share|shared|typed) (?:for |them |him |her )?"
    r"(?:my |your |the |a )?(?:password|otp|pin|verification code)"
    r"|wire transfer|bank transfer|transferred (?:the |my )?(?:money|\$|£|rm|\d)|deposit|unauthori[sz]ed"
    r"|did(?:n'?t| not) (?:order|authori[sz]e|make|buy|place)|(?:went|gone) silent"
    r"|(?:seller|store|shop|site|website|they|company) (?:has |have )?(?:vanished|disappeared)"
    r"|(?:lost|out of|scammed (?:me )?(?:out )?of) (?:\$|£|€|rm ?|s\$)?\d+"
    r"|(?:paid|charged|payment)\b[^.!?]{0,60}?\b(?:never (?:arrived|came|shipped|got|received|delivered|sent)"
    r"|nothing (?:arrived|came|was (?:sent|shipped|delivered))|no (?:item|order|parcel|package|product)))\b",
    re.ASCII,
)
_INSULT = re.compile(r"骗子|被骗|scam\w*", re.ASCII)


def _insult_not_fraud(text: str, match: re.Match) -> bool:
    """"骗子", "被骗", "scam" as an insult ("骗子商家", "what a scam"): nothing nearby says that money or a
    login was taken, or that someone posed as the shop."""
    return (
        _INSULT.fullmatch(match.group(0)) is not None
        and _FRAUD_CONTEXT.search(text, max(0, match.start() - 300), match.end() + 300) is None
    )


# Social networks and review sites. Named, they are evidence only with posting ("发小红书", "去黑猫投诉",
# "post the whole thread on Facebook"), not as a login ("Facebook login", "微博账号登录"), a contact channel
# ("Instagram DM"), an advert or a collaboration offer ("saw your ad on TikTok", "小红书种草合作"), or 黑猫
# the Taiwanese courier (黑猫宅急便).
_PLATFORM_ZH = r"微博|小红书|抖音|朋友圈|公众号|知乎|黑猫|社交媒体"
_PLATFORM_EN = r"twitter|facebook|instagram|tiktok|reddit|trustpilot|social media"
_PLATFORM = re.compile(rf"{_PLATFORM_ZH}|{_PLATFORM_EN}")
# Right after the name, even near a posting word: a login, an account, a channel, a shop, an advert or a
# courier ("微博账号登录", "Facebook login", "Instagram DM", "TikTok shop", "黑猫宅急便").
_PLATFORM_USE = re.compile(
    r"账号|帐号|账户|帐户|登录|登入|登陆|授权|绑定|扫码|私信|私讯|客服|小店|店铺|直播间|下单|同步|粉丝|博主"
    r"|达人|种草|广告|宅急便|单号|集赞|抽奖|返现"
    r"| ?(?:log ?in|login|logon|sign[- ]?(?:in|on|up)|account|acct|ads?\b|advert|dms?\b|messenger"
    r"|shop|store|live)",
    re.ASCII,
)
# Right before the name: "log in with", "order via".
_PLATFORM_VIA = re.compile(r"\b(?:with|via|using|through) $", re.ASCII)
# Posting before the name, in the same clause ("发小红书", "截图发到微博", "post the whole thread on", "make a").
_POSTED_BEFORE = re.compile(
    r"(?:发(?![现生货票送出件单错])|晒|挂|吐槽)[^\d,.!?;。！？；\n]{0,6}$"
    r"|\b(?:post(?:ed|ing|s)?|shar(?:e|ing) (?:this|it|my|the|everything|all|screenshots?)|blast(?:ing)?"
    r"|expos(?:e|ing)|shame|tag(?:ging)?|warn(?:ing)? (?:everyone|others|people)"
    r"|tell(?:ing)? (?:everyone|every ?body|people|the world)|spread(?:ing)? the word"
    r"|put(?:ting)? (?:this|it|you|them|that|the whole|everything|all)|rais(?:e|ing) (?:this|it)|rant(?:ing)?"
    r"|vent(?:ing)?|leav(?:e|ing) (?:a |an )?(?:\w+ )?(?:reviews?|ratings?)"
    r"|writ(?:e|ing) (?:a |an )?(?:\w+ )?(?:reviews?|posts?|threads?)|writ(?:e|ing) about"
    r"|complain(?:ing)? about (?:this|you|it)|call(?:ing)? (?:you|them|this) out|see you on)\b"
    r"[^.!?;\n]{0,50}$"
    r"|\bmak(?:e|ing) an? (?:\w+ )?$",
    re.ASCII,
)
# Or posting after it ("小红书避雷", "黑猫投诉", "social media上post", "Twitter is going to hear about this").
_POSTED_AFTER = re.compile(
    r"[^,.!?;。！？；\n]{0,8}?(?:曝光|投诉|发帖|发文|发布|发视频|发笔记|避雷|吐槽|挂|让大家|评评理|说说|告诉大家"
    r"|上热搜|维权|post)|[^.!?;\n]{0,20}?\b(?:will|is going to|gonna|are going to) (?:hear|know|see)\b",
    re.ASCII,
)


def _platform_not_posted(text: str, match: re.Match) -> bool:
    """A social network named as a login, a channel or an advert, with nothing said about posting there."""
    start, end = match.span()
    name = match.group(0)
    if name == "媒体" and text.endswith("社交", 0, start):  # 社交媒体, social media
        start, name = start - 2, "社交媒体"
    if _PLATFORM.fullmatch(name) is None:  # "曝光", "1-star", "tell the media": exposure by themselves
        return False
    if _PLATFORM_USE.match(text, end) or _PLATFORM_VIA.search(text, max(0, start - 8), start):
        return True
    posted = _POSTED_BEFORE.search(text, max(0, start - 60), start) or _POSTED_AFTER.match(text, end)
    return posted is None


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
        r"|consumer (?:protection|council|tribunal|rights|court|forum)|tribunal|(?:county|district|high|civil) court|ftc|bbb|trading standards|ombudsman|regulator)\b",
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
        veto=_insult_not_fraud,
    ),
    _signal(
        "chargeback", "critical",
        r"拒付|信用卡争议|银行争议|发起争议|申请争议|拒绝付款|找银行",
        r"\b(?:charge ?back|dispute (?:the |this |it )?(?:charge|transaction|payment)"
        r"|(?:call|contact|tell) my (?:bank|card issuer|credit card company)|reverse the charge)\b",
    ),
    _signal(
        # A social network only with posting there ("发小红书", "post it on Facebook"), not as a login.
        "public_exposure", "high",
        r"微博|小红书|抖音|曝光|黑猫|媒体|记者|朋友圈|网上说|发到网上|差评|公众号|知乎",
        r"\b(?:twitter|tweet(?:s|ed|ing)?(?! (?:at |to )?(?:you|u|your|@))"
        r"|facebook|instagram|tiktok|reddit|trustpilot|social media"
        r"|post (?:this|it|about)|review(?:s)? everywhere|1[- ]star|one[- ]star|journalist"
        r"|(?:go|going|talk|talking|tell|contact) to the (?:news|press|media)|tell(?:ing)? the media"
        r"|news ?paper|the press|expose|go public|viral)\b",
        veto=_platform_not_posted,
    ),
    _signal(
        # A count ("third time", "第三次", "4 times") only when it counts contacts, not one's own retries.
        "repeated_contact", "high",
        r"第[二三四五六七八九十几\d]+次|又一次|多次|好几次|\d+次了|几次了|(?:说|问|打)了(?:好几|好多|多少|几|\d+)[遍次]"
        r"|一直没人|没人(?:回|理|管)|没有人(?:回|理|管)|还是没(?:人)?(?:回|解决)|再问一[次遍]|催了",
        r"\b(?:(?:second|third|fourth|fifth|\d+(?:st|nd|rd|th)) (?:time|email|message|request)"
        r"|again and again|multiple times|several times|many times|(?:\d+|three|four|five) times"
        r"|keep (?:asking|calling|emailing|chasing)|still no (?:reply|response|answer|update)"
        r"|no ?one (?:has )?(?:replied|responded|answered|gets back)|nobody (?:has )?(?:replied|responded|answered)"
        r"|already (?:asked|contacted|emailed|called|messaged|wrote|written)|follow(?:ing)? up again)\b",
        veto=_retry_not_contact,
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
