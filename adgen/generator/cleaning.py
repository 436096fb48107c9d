"""Turning a raw completion into one candidate line of ad copy (pure).

Steps: drop preambles ("Sure!", "Here's a headline:"), list numbering, bullets, markdown
bold and labels ("Headline:", "标题：", "Product:"); pick the first line with text left that
is not itself a label (ending with a colon); take the text inside wrapping quotes; when the
model was cut off mid-sentence, cut the fragment at the last sentence end, else at the last
word boundary; collapse whitespace. ``fit_sentences`` then keeps the leading sentences that
fit the channel's limit. Emojis and hashtags are kept: they are part of copy. ``settled``
says when more tokens can no longer change the candidate.
"""

from __future__ import annotations

import re
from typing import Literal

from adgen.brief import Brief
from adgen.guardrails.text import length_in

_LABELS = (
    "headline|title|tagline|slogan|ad|ad copy|ad headline|copy|description|short description|"
    "social post|social media post|post|caption|product|brand|audience|key benefits|benefits|"
    "标题|广告标题|广告语|广告|文案|描述|帖子|口号|产品|品牌|目标人群|主要卖点"
)
_LABEL = re.compile(rf"^(?:{_LABELS})\s*\d*\s*[:：]\s*", re.IGNORECASE)
_NUMBERING = re.compile(r"^(?:\d{1,2}[.)]\s+|\d{1,2}、\s*|[-*•·]\s+|#{1,6}\s+)")
_PREAMBLE = re.compile(
    r"^(?:(?:sure|certainly|of course|absolutely|okay|ok)\s*[!,.]\s*"
    r"|here(?:'s| is| are)\b[^:：]*[:：]\s*)",
    re.IGNORECASE,
)
_MARKDOWN = re.compile(r"\*\*|__")
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "「": "」", "『": "』", "«": "»", "《": "》"}
_SENTENCE_END = re.compile(r"[。！？…]|[.!?](?=[\s\"'”’」』)]|$)")
_TRAILING_JUNK = " \t,;:-–—、，；："


def clean(raw: str, finished: bool = True) -> str:
    """The candidate in ``raw``; ``finished`` is False when generation hit the token limit.

    Returns "" when nothing usable is left (the guardrails then reject it as ``empty``).
    """
    lines = raw.replace("\r", "\n").split("\n")
    for index, line in enumerate(lines):
        text = _strip_decorations(line)
        if not text or text.endswith((":", "：")):
            continue
        is_last = all(not rest.strip() for rest in lines[index + 1 :])
        truncated = not finished and is_last
        text = _strip_decorations(_unquote(text, truncated))
        if truncated:
            text = _cut_fragment(text)
        return " ".join(text.split()).strip(_TRAILING_JUNK)
    return ""


def _strip_decorations(line: str) -> str:
    text = _MARKDOWN.sub("", line).strip().rstrip("\ufffd").strip()
    previous = None
    while text != previous:
        previous = text
        for pattern in (_PREAMBLE, _NUMBERING, _LABEL):
            text = pattern.sub("", text).strip()
    return text


def _unquote(text: str, truncated: bool) -> str:
    close = _QUOTES.get(text[0])
    if close is None:
        return text
    end = text.find(close, 1)
    if end > 1:
        return text[1:end].strip()
    return text[1:].strip() if truncated or end == -1 else text


def _cut_fragment(text: str) -> str:
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if ends and ends[-1] >= len(text) // 2:
        return text[: ends[-1]]
    if " " in text:
        return text.rsplit(" ", 1)[0]
    return text


def fit_sentences(text: str, max_length: int, unit: Literal["chars", "words"]) -> str:
    """``text`` if it fits, else its longest run of whole leading sentences that fits (a
    headline may be the first sentence of a longer line); unchanged when none does."""
    if length_in(text, unit) <= max_length:
        return text
    fitting = [
        text[: m.end()]
        for m in _SENTENCE_END.finditer(text)
        if length_in(text[: m.end()], unit) <= max_length
    ]
    return fitting[-1].strip() if fitting else text


def settled(raw: str, brief: Brief) -> bool:
    """True once no continuation of the unfinished completion ``raw`` changes its candidate,
    so that sampling can stop the row: the line ``clean`` picks is followed by a line with
    text, or it is over the brief's limit even cut as a fragment (``fit_sentences`` then
    keeps leading sentences already written, or nothing fits whatever comes next).
    """
    lines = raw.replace("\r", "\n").split("\n")
    for index, line in enumerate(lines):
        text = _strip_decorations(line)
        if not text or text.endswith((":", "：")):
            continue
        if any(rest.strip() for rest in lines[index + 1 :]):
            return True
        break
    if not brief.max_length:
        return False
    return length_in(clean(raw, finished=False), brief.length_unit or "chars") > brief.max_length


def candidate_text(raw: str, finished: bool, brief: Brief) -> str:
    """A raw completion as the candidate the guardrails judge: cleaned, then fitted to the
    brief's length limit at a sentence end where possible."""
    limit, unit = brief.max_length or 0, brief.length_unit or "chars"
    return fit_sentences(clean(raw, finished), limit, unit)
