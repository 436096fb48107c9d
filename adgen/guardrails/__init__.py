"""Guardrails for generated ad text: pure checks, each with its own reason code.

``check(text, brief, existing, config)`` runs them all; ``batch_metrics(texts)`` reports a
batch's diversity; ``config_from_settings(settings)`` builds the configuration in force.
"""

from __future__ import annotations

from adgen.guardrails.check import GuardrailReport, check
from adgen.guardrails.config import ComplianceTerms, GuardrailConfig
from adgen.guardrails.diversity import DiversityMetrics, batch_metrics, similarity
from adgen.guardrails.rules import REASONS
from adgen.guardrails.terms import builtin_terms, config_from_settings

__all__ = [
    "REASONS",
    "ComplianceTerms",
    "DiversityMetrics",
    "GuardrailConfig",
    "GuardrailReport",
    "batch_metrics",
    "builtin_terms",
    "check",
    "config_from_settings",
    "similarity",
]
