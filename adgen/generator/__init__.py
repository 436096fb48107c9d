"""The generator: prompts from a brief, seeded batched sampling, cleaning, guardrails,
resampling until N variants are accepted, and storing them with their model version."""

from __future__ import annotations

from adgen.generator.campaign import generate_for_campaign
from adgen.generator.candidates import Candidate, GenerationResult, LoopConfig, generate_variants
from adgen.generator.sampling import SamplingParams, sample_texts

__all__ = [
    "Candidate",
    "GenerationResult",
    "LoopConfig",
    "SamplingParams",
    "generate_for_campaign",
    "generate_variants",
    "sample_texts",
]
