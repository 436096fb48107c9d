"""``check``: every guardrail on one candidate, collected into a GuardrailReport."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from adgen.brief import Brief
from adgen.guardrails.config import GuardrailConfig
from adgen.guardrails.rules import EMPTY, TEXT_RULES, check_near_duplicate
from adgen.guardrails.text import cjk_share, length_in


@dataclass
class GuardrailReport:
    """The outcome of the guardrails for one text: passed, the reason codes and details."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    length: int = 0
    unit: str = "chars"
    cjk_share: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in ``variants.guardrail_report``."""
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "details": dict(self.details),
            "length": self.length,
            "unit": self.unit,
            "cjk_share": round(self.cjk_share, 3),
        }


def check(
    text: str, brief: Brief, existing: Sequence[str], config: GuardrailConfig
) -> GuardrailReport:
    """Run every guardrail on ``text``; ``existing`` are the texts it must not duplicate.

    All failing guardrails are reported, not only the first; an empty text reports only
    ``empty``.
    """
    unit = brief.length_unit or "chars"
    findings = [f for rule in TEXT_RULES if (f := rule(text, brief, config)) is not None]
    if not any(f.reason == EMPTY for f in findings):
        duplicate = check_near_duplicate(text, existing, config)
        if duplicate is not None:
            findings.append(duplicate)
    else:
        findings = [f for f in findings if f.reason == EMPTY]
    return GuardrailReport(
        passed=not findings,
        reasons=[f.reason for f in findings],
        details={f.reason: f.detail for f in findings if f.detail is not None},
        length=length_in(text, unit),
        unit=unit,
        cjk_share=cjk_share(text),
    )
