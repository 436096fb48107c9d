"""Prompts built from a brief, as chat messages with our own system prompt (pure).

The system prompt is always given: SmolLM2's chat template otherwise inserts its default
("You are a helpful AI assistant named SmolLM…"), which invites chatty answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from adgen.brief import Brief

_CHANNEL_EN = {
    "headline": "ad headline",
    "description": "short ad description",
    "social": "social media post",
}
_CHANNEL_ZH = {"headline": "广告标题", "description": "简短的广告描述", "social": "社交媒体帖子"}


@dataclass(frozen=True)
class Prompt:
    """The system prompt and the user message for one brief."""

    system: str
    user: str

    def messages(self) -> list[dict[str, str]]:
        """Chat messages for ``tokenizer.apply_chat_template``."""
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user},
        ]


def build_prompt(brief: Brief) -> Prompt:
    """The prompt asking for one piece of copy for ``brief`` in its locale and channel."""
    return _zh(brief) if brief.locale == "zh" else _en(brief)


def _en(brief: Brief) -> Prompt:
    kind = _CHANNEL_EN[brief.channel]
    unit = "words" if brief.length_unit == "words" else "characters"
    system = (
        f"You are an expert advertising copywriter. You write one {kind} in English and "
        "reply with that text only: no quotes, no labels, no explanations."
    )
    lines = [f"Product: {brief.product}"]
    if brief.benefits:
        lines.append("Key benefits: " + "; ".join(brief.benefits))
    brand = f"Brand: {brief.brand}"
    lines.append(f"{brand} (voice: {brief.brand_voice})" if brief.brand_voice else brand)
    lines.append(f"Audience: {brief.audience}")
    instruction = f"Write one {kind} of at most {brief.max_length} {unit}."
    if brief.require_brand:
        instruction += f" Include the brand name {brief.brand}."
    return Prompt(system, "\n".join([*lines, instruction]))


def _zh(brief: Brief) -> Prompt:
    kind = _CHANNEL_ZH[brief.channel]
    system = f"你是一名资深广告文案。你只用中文写一条{kind}，只回复文案本身，不加引号、标签或解释。"
    lines = [f"产品：{brief.product}"]
    if brief.benefits:
        lines.append("主要卖点：" + "；".join(brief.benefits))
    brand = f"品牌：{brief.brand}"
    lines.append(f"{brand}（语气：{brief.brand_voice}）" if brief.brand_voice else brand)
    lines.append(f"目标人群：{brief.audience}")
    instruction = f"请写一条不超过{brief.max_length}个字的{kind}。"
    if brief.require_brand:
        instruction += f"文案中要出现品牌名“{brief.brand}”。"
    return Prompt(system, "\n".join([*lines, instruction]))
