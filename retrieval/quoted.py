"""Cut an email reply down to what the customer wrote this time.

A reply to a support email usually carries the whole thread below it: a header such as "On Tue,
Nov 24, 2026 at 9:02 AM Support <help@shop.com> wrote:" or "------ 原始邮件 ------", the agent's
last answer, lines quoted with ">", a signature and "Sent from my iPhone". Left in, the agent's
own words decide the intent (an answer about delivery times makes a refund question look like a
delivery question). Helpdesks cut these before routing; :func:`strip_quoted` does the same for
the clients that Chinese and English customers use (Gmail, Outlook, Apple Mail, QQ Mail,
NetEase, Foxmail) and for the "reply above this line" markers that helpdesks put in their mails.

It works on normalised text (NFKC, one line per line, each stripped) and never returns an empty
reply: a message that is all quote is kept whole, and so is a forward (what it forwards is the
point of the message).
"""

from __future__ import annotations

import re

# A line that starts the quoted part: everything from it to the end is history.
_HEADER_LINE_RES = (
    # ----- Original Message ----- / ------------------ 原始邮件 ------------------
    re.compile(r"^-{2,}\s*(original message|原始邮件|原始郵件)\s*-{2,}$", re.I),
    # Helpdesk mails: "##- Please type your reply above this line -##", "请在此行上方回复"
    re.compile(r"(reply above this line|write above this line|请在此行(以上|上方)回复|請在此行(以上|上方)回覆)", re.I),
    # Apple Mail / Gmail in Chinese: "在 2026年11月24日 09:02，客服 <help@shop.com> 写道:"
    re.compile(r"^(在|于|於).{0,100}\d.{0,100}(写道|寫道)\s*:?$"),
    # Gmail / Apple Mail in English, on one line; the date makes it a header, not a sentence
    re.compile(r"^on .{0,100}\d.{0,100}\bwrote:$", re.I),
)
# Gmail wraps a long "On ... wrote:" header over two or three lines.
_WRAPPED_HEADER_START_RE = re.compile(r"^on .{0,100}\d", re.I)
_WRAPPED_HEADER_END_RE = re.compile(r"\bwrote:$", re.I)
# A forward's marker: what follows is the substance of the message, so nothing is cut.
_FORWARD_RE = re.compile(r"^(-{2,}\s*(forwarded message|转发邮件|轉寄郵件)\s*-{2,}|begin forwarded message:)$", re.I)
# Outlook / Foxmail / QQ Mail header block: a From line and, within the next four, a Sent/To line.
_FROM_RE = re.compile(r"^\*?(from|发件人|寄件者)\*?\s*:\s*\S", re.I)
_FROM_FOLLOWER_RE = re.compile(r"^\*?(sent|date|to|subject|发送时间|日期|收件人|主题|寄件日期|收件者|主旨)\*?\s*:", re.I)
_QUOTE_LINE_RE = re.compile(r"^>(\s|>|$)")
_RULE_RE = re.compile(r"^[-_=*~]{3,}$")  # Outlook's "________" above its header block
# A closing formula; what follows it (at most two short lines) is a name and title.
_CLOSING_RE = re.compile(
    r"^((best|kind|warm|warmest)\s+(regards|wishes)|regards|thanks?( you)?( so much| in advance)?|many thanks|cheers|"
    r"sincerely|yours (truly|sincerely)|best|br|谢谢|謝謝|多谢|多謝|此致|祝好|顺祝商祺|順頌商祺)\s*[,.!，。！~]*$",
    re.I,
)
# A footer that a mail app adds, alone on the last line.
_FOOTER_RE = re.compile(
    r"^(sent from my \S.{0,40}|get outlook for \S.{0,30}|sent from (mail|outlook|yahoo mail) for \S.{0,30}|"
    r"发自我的\s?\S{1,20}|从我的\s?\S{1,20}\s?发送|從我的\s?\S{1,20}\s?傳送|发自\S{0,10}邮箱\S{0,10})$",
    re.I,
)


def strip_quoted(text: str) -> tuple[str, int]:
    """The customer's new words in an email reply, and how many characters were cut.

    Parameters
    ----------
    text : str
        A normalised message (see :func:`retrieval.text.normalize`).

    Returns
    -------
    reply : str
        `text` without the quoted history, ">" lines, a "--" signature, a mail app's footer and
        a closing such as "Best regards,\nSam"; `text` itself when nothing is recognised or
        nothing would be left.
    removed : int
        ``len(text) - len(reply)``, in characters; 0 when `text` is returned unchanged.
    """
    if "\n" not in text:
        return text, 0  # chat messages and one-line mails: nothing to cut, and this is the hot path
    lines = text.split("\n")
    lines = lines[: _history_start(lines)]
    if "--" in lines:  # RFC 3676 signature separator ("-- ", stripped by normalisation)
        lines = lines[: lines.index("--")]
    quoted = [line for line in lines if _QUOTE_LINE_RE.match(line)]
    if len(quoted) >= 2:  # one ">" line is more likely "> 50 pcs" or ">_<" than a quote
        lines = [line for line in lines if not _QUOTE_LINE_RE.match(line)]
    _drop_tail(lines, lambda line: not line or _RULE_RE.match(line))
    if lines and _FOOTER_RE.match(lines[-1]):
        lines.pop()
    _drop_tail(lines, lambda line: not line)
    _drop_closing(lines)
    reply = "\n".join(lines).strip()
    if not reply:
        return text, 0
    return reply, len(text) - len(reply)


def _drop_tail(lines: list[str], drop) -> None:
    while lines and drop(lines[-1]):
        lines.pop()


def _drop_closing(lines: list[str]) -> None:
    """Cut "Best regards,\nSam Patel" / "谢谢\n王磊" from the end, never the whole message."""
    for back in (1, 2, 3):
        i = len(lines) - back
        if i < 1:
            return
        if _CLOSING_RE.match(lines[i]) and all(len(line) <= 40 for line in lines[i + 1 :]):
            del lines[i:]
            _drop_tail(lines, lambda line: not line)
            return


def _history_start(lines: list[str]) -> int:
    """Index of the first line of quoted history, or ``len(lines)`` when there is none (or
    when a forward comes first)."""
    for i, line in enumerate(lines):
        if _FORWARD_RE.match(line):
            return len(lines)
        if i == 0:
            continue  # history from the first line on would leave nothing to triage
        if any(pattern.search(line) for pattern in _HEADER_LINE_RES):
            return i
        if _WRAPPED_HEADER_START_RE.match(line) and any(
            _WRAPPED_HEADER_END_RE.search(nxt) for nxt in lines[i + 1 : i + 3]
        ):
            return i
        if _FROM_RE.match(line) and any(_FROM_FOLLOWER_RE.match(nxt) for nxt in lines[i + 1 : i + 5]):
            return i
    return len(lines)
