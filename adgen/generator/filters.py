"""The generator's own filters, on top of the guardrails (pure).

They reject what a small model writes instead of an ad, and apply to generated text only
(a marketer's hand-written variant may well be evocative without a word of the brief):

* ``prompt_echo``: the text is copied from the brief's lines of our prompt (the product, the
  benefits, the audience...). Copies of our instructions ("No quotes, no labels, no
  explanations.") are the guardrail ``instruction_leak``, the one home of the prompt's
  instruction wording (``adgen/guardrails/leak.py``), which also catches them inside copy;
* ``off_brief``: the text shares no content word (Chinese: no character bigram) with the
  brief's brand, product, benefits or audience, e.g. "Please provide your next request".
  Loose on purpose (4-letter prefixes), so paraphrases pass.
"""

from __future__ import annotations

from adgen.brief import Brief
from adgen.guardrails.text import normalize, topic_keys

PROMPT_ECHO = "prompt_echo"
OFF_BRIEF = "off_brief"
_MIN_ECHO_CHARS = 6


def is_prompt_echo(text: str, brief: Brief) -> bool:
    """True when ``text`` (6+ characters) is a substring of one of the brief's lines in the
    prompt: its product, benefits, brand (and voice) or audience."""
    norm = normalize(text).casefold()
    if len(norm) < _MIN_ECHO_CHARS:
        return False
    lines = (brief.product, "; ".join(brief.benefits), brief.brand, brief.brand_voice or "",
             brief.audience)
    return any(norm in normalize(line).casefold() for line in lines)


def is_off_brief(text: str, brief: Brief) -> bool:
    """True when ``text`` shares no topic key with the brief's brand, product, benefits or
    audience."""
    brief_keys = topic_keys(" ".join([brief.brand, brief.product, *brief.benefits, brief.audience]))
    return not topic_keys(text) & brief_keys


def generation_reasons(text: str, brief: Brief) -> list[str]:
    """The reason codes of the generator's filters that ``text`` fails."""
    reasons = [PROMPT_ECHO] if is_prompt_echo(text, brief) else []
    if is_off_brief(text, brief):
        reasons.append(OFF_BRIEF)
    return reasons
