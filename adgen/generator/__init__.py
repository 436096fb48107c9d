"""The generator: prompts from a brief, seeded batched sampling, cleaning, guardrails,
resampling until N variants are accepted, and storing them with their model version."""

from __future__ import annotations

from adgen.generator.campaign import (
    GenerationJob,
    generate_and_store,
    generate_for_campaign,
    plan_generation,
    run_generation,
    store_generation,
)
from adgen.generator.candidates import Candidate, GenerationResult, LoopConfig, generate_variants
from adgen.generator.sampling import SamplingParams, sample_texts

__all__ = [
    "Candidate",
    "GenerationJob",
    "GenerationResult",
    "LoopConfig",
    "SamplingParams",
    "generate_and_store",
    "generate_for_campaign",
    "generate_variants",
    "plan_generation",
    "run_generation",
    "sample_texts",
    "store_generation",
]
