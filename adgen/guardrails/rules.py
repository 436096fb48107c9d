"""The guardrails, one pure function each; a failing one returns a Finding with its reason code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adgen.brief import Brief
from adgen.guardrails.config import GuardrailConfig
from adgen.guardrails.diversity import most_similar
from adgen.guardrails.leak import instruction_leaks
from adgen.guardrails.names import invented_names
from adgen.guardrails.text import cjk_share, length_in, matcher, normalize

EMPTY = "empty"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
BRAND_MISSING = "brand_missing"
FORBIDDEN_WORD = "forbidden_word"
ABSOLUTE_CLAIM = "absolute_claim"
WRONG_LANGUAGE = "wrong_language"
MALFORMED = "malformed"
NEAR_DUPLICATE = "near_duplicate"
INVENTED_NAME = "invented_name"
INSTRUCTION_LEAK = "instruction_leak"

REASONS = (
    EMPTY,
    TOO_SHORT,
    TOO_LONG,
    BRAND_MISSING,
    FORBIDDEN_WORD,
    ABSOLUTE_CLAIM,
    WRONG_LANGUAGE,
    MALFORMED,
    NEAR_DUPLICATE,
    INVENTED_NAME,
    INSTRUCTION_LEAK,
)


@dataclass(frozen=True)
class Finding:
    """A guardrail that failed: its reason code and what it found (JSON-ready)."""

    reason: str
    detail: Any = None


def check_length(text: str, brief: Brief, config: GuardrailConfig) -> Finding | None:
    """``empty``, ``too_short`` (< ``min_chars`` letters/digits) or ``too_long`` (over the
    brief's limit, in characters or words as the brief says)."""
    solid = sum(1 for ch in text if ch.isalnum())
    if not normalize(text):
        return Finding(EMPTY)
    if solid < config.min_chars:
        return Finding(TOO_SHORT, {"letters": solid, "min": config.min_chars})
    unit = brief.length_unit or "chars"
    length = length_in(text, unit)
    if brief.max_length is not None and length > brief.max_length:
        return Finding(TOO_LONG, {"length": length, "max": brief.max_length, "unit": unit})
    return None


def check_brand(text: str, brief: Brief, config: GuardrailConfig) -> Finding | None:
    """``brand_missing`` when the brief requires the brand name and the text lacks it."""
    if brief.require_brand and not matcher([brief.brand]).find(text):
        return Finding(BRAND_MISSING, {"brand": brief.brand})
    return None


def check_forbidden(text: str, brief: Brief, config: GuardrailConfig) -> Finding | None:
    """``forbidden_word`` when the text uses one of the brand's forbidden words."""
    found = matcher(brief.forbidden_words).find(text) if brief.forbidden_words else []
    return Finding(FORBIDDEN_WORD, found) if found else None


def check_compliance(text: str, brief: Brief, config: GuardrailConfig) -> Finding | None:
    """``absolute_claim`` for terms advertising law forbids (superlatives, guarantees, cures).

    Chinese 最 is refused everywhere except inside the neutral time words 最近, 最后, 最初
    and 最终 (and 第一 except in ordinals such as 第一次); see ``adgen/data/compliance_zh.json``.
    """
    found = config.compliance.matcher.find(text)
    return Finding(ABSOLUTE_CLAIM, found) if found else None


def check_language(text: str, brief: Brief, config: GuardrailConfig) -> Finding | None:
    """``wrong_language`` when the script does not match the brief's locale."""
    share = round(cjk_share(text), 3)
    if brief.locale == "zh" and share < config.min_cjk_share_zh:
        return Finding(WRONG_LANGUAGE, {"cjk_share": share, "min": config.min_cjk_share_zh})
    if brief.locale == "en" and share > config.max_cjk_share_en:
        return Finding(WRONG_LANGUAGE, {"cjk_share": share, "max": config.max_cjk_share_en})
    return None


def check_malformed(text: str, brief: Brief, config: GuardrailConfig) -> Finding | None:
    """``malformed``: undecodable bytes (U+FFFD), control characters or line breaks."""
    bad = sorted({f"U+{ord(ch):04X}" for ch in text if ch == "\ufffd" or _is_control(ch)})
    return Finding(MALFORMED, bad) if bad else None


def _is_control(ch: str) -> bool:
    return ch != " " and (ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 or ch in "\u2028\u2029")


def check_invented_name(text: str, brief: Brief, config: GuardrailConfig) -> Finding | None:
    """``invented_name``: an English text names something the brief does not (a product,
    brand or place the model made up), unless ``config.invented_names`` is off."""
    if not config.invented_names or brief.locale != "en":
        return None
    found = invented_names(text, brief)
    return Finding(INVENTED_NAME, found) if found else None


def check_instruction_leak(text: str, brief: Brief, config: GuardrailConfig) -> Finding | None:
    """``instruction_leak``: the text carries the prompt's or an instruction's words
    ("60+ characters max", "Headline:", "广告文案")."""
    found = instruction_leaks(text)
    return Finding(INSTRUCTION_LEAK, found) if found else None


def check_near_duplicate(
    text: str, existing: Sequence[str], config: GuardrailConfig
) -> Finding | None:
    """``near_duplicate`` when ``text`` is at least ``diversity_threshold`` similar to one of
    ``existing`` (the campaign's variants and those accepted earlier in the batch)."""
    closest = most_similar(text, existing)
    if closest is not None and closest[1] >= config.diversity_threshold:
        detail = {"similar_to": closest[0], "similarity": round(closest[1], 3)}
        return Finding(NEAR_DUPLICATE, detail)
    return None


#: The guardrails that look at one text and the brief, in the order they are reported.
TEXT_RULES = (
    check_length,
    check_malformed,
    check_language,
    check_brand,
    check_forbidden,
    check_compliance,
    check_instruction_leak,
    check_invented_name,
)
