"""The ``instruction_leak`` guardrail's phrases: our prompt's own words, and the words of
instructions in general, written into the ad instead of obeyed (pure).

This is the one home of the prompt's instruction wording as a check: the phrases of
``adgen/generator/prompts.py`` (its system prompt, the labels of the brief's lines and the
closing instruction, for every channel and locale; ``tests/test_guardrails.py`` checks that
each clause of a real prompt is caught), plus generic ones a small model writes ("60+
characters max", "Headline:", "call to action"). The generator's ``prompt_echo`` filter only
catches copies of the brief's own words.

Each phrase is a regular expression on the NFKC-normalised, case-folded text (full-width
"：" is ":" there); English ones are bounded by non-letters. They are narrow on purpose:
"no labels" alone could sell a T-shirt, "Write your story" and "max 2 per order" are fine,
labels such as "Product:" or "产品：" count only at the start of a clause (not in "New
product:" or "新产品：").
"""

from __future__ import annotations

import re

from adgen.guardrails.text import normalize

#: The start of the text or of a clause (labels count only there: "New product:" is copy).
_START = r"(?:^|(?<=[.!?;(])|(?<=[.!?;] ))"
_KIND = r"(?:ad|headline|description|post|tagline|slogan|copy|caption)"
_UNIT = r"(?:characters|chars|words)"

#: English: the prompt's wording (system prompt, labels, instruction), then generic words.
PHRASES_EN = (
    r"copywrit\w*",
    r"ad headline",
    r"(?:short )?ad description",
    r"social media post",
    r"reply with (?:that|the) text",
    r"that text only",
    r"no quotes,? no labels",
    r"no labels,? no explanations",
    r"quotes, labels or explanations",
    _START + r"(?:product|key benefits|brand|voice|audience):",
    rf"write (?:one|an?|the) {_KIND}",
    rf"(?:of )?at most \d+ {_UNIT}",
    r"include the brand name",
    r"\d+\s*\+?\s*(?:characters|chars)",
    rf"{_UNIT} max(?:imum)?",
    r"character (?:limit|count)",
    r"word (?:limit|count)",
    rf"\d+ {_UNIT} or (?:less|fewer)",
    r"ad copy",
    r"(?:headline|description|tagline|slogan|title|caption|cta|copy|variant):",
    r"(?:ad |copy |headline )?variant (?:\d+|[a-c]|#)",
    r"call to action",
    r"target audience",
    r"brand voice",
    r"(?:the|this) brief",
    r"brief:",
    r"as an ai",
    rf"here(?: is|'s) (?:a|an|the|your|one) (?:\w+ )?{_KIND}",
)

#: Chinese: the zh prompt's wording, then generic words.
_CLAUSE = r"(?:^|(?<=[\s。，！？；、(]))"
PHRASES_ZH = (
    r"广告文案",
    r"文案本身",
    r"只用中文",
    r"不加引号",
    r"标签或解释",
    _CLAUSE + r"产品:",
    r"主要卖点",
    _CLAUSE + r"品牌:",
    r"语气:",
    r"目标人群",
    r"请写一条",
    r"不超过\d+个字",
    r"\d+个?字以内",
    r"品牌名",
    r"广告标题",
    r"广告描述",
    r"社交媒体帖子",
    _CLAUSE + r"(?:文案|标题):",
    r"字数",
)

_PATTERNS = tuple(
    (p, re.compile(rf"(?<![a-z]){p}(?![a-z])")) for p in PHRASES_EN
) + tuple((p, re.compile(p)) for p in PHRASES_ZH)


def instruction_leaks(text: str) -> list[str]:
    """The instruction phrases found in ``text``, as written there (case-folded), in order."""
    folded = normalize(text).casefold()
    return [m.group(0) for _, pattern in _PATTERNS if (m := pattern.search(folded))]
