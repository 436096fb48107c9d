"""The generation loop: sample, clean, check, resample until N are accepted (no database)."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from adgen.brief import Brief
from adgen.generator.cleaning import candidate_text, settled
from adgen.generator.filters import generation_reasons
from adgen.generator.prompts import build_prompt
from adgen.generator.sampling import SamplingParams, sample_raw
from adgen.guardrails import (
    DiversityMetrics,
    GuardrailConfig,
    GuardrailReport,
    batch_metrics,
    check,
)
from adgen.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopConfig:
    """How hard the loop tries: attempts, and how many candidates each one samples."""

    max_attempts: int = 4
    oversample: float = 2.0
    """Each attempt samples this many candidates per variant still missing."""
    max_batch: int = 32

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts={self.max_attempts} must be at least 1")
        if self.oversample < 1:
            raise ValueError(f"oversample={self.oversample} must be at least 1.0")
        if self.max_batch < 1:
            raise ValueError(f"max_batch={self.max_batch} must be at least 1")

    @classmethod
    def from_settings(cls, settings: Settings) -> LoopConfig:
        """``ADGEN_GEN_MAX_ATTEMPTS``, ``_OVERSAMPLE`` and ``_MAX_BATCH``."""
        return cls(settings.gen_max_attempts, settings.gen_oversample, settings.gen_max_batch)

    def batch_size(self, missing: int) -> int:
        """Candidates to sample when ``missing`` variants are still needed."""
        return max(1, min(self.max_batch, math.ceil(missing * self.oversample)))


@dataclass(frozen=True)
class Candidate:
    """One cleaned candidate, its guardrail report and the attempt that sampled it."""

    text: str
    report: GuardrailReport
    attempt: int
    seed: int

    def stored_report(self) -> dict[str, Any]:
        """The report as stored with the variant, with what reproduces the sample."""
        return {**self.report.as_dict(), "generation": {"seed": self.seed, "attempt": self.attempt}}


@dataclass
class GenerationResult:
    """What a generation run produced and rejected, and why."""

    seed: int
    accepted: list[Candidate] = field(default_factory=list)
    rejected: list[Candidate] = field(default_factory=list)
    attempts: int = 0
    model_version_id: int | None = None
    variant_ids: list[int] = field(default_factory=list)

    @property
    def candidates(self) -> int:
        """Candidates checked (accepted + rejected)."""
        return len(self.accepted) + len(self.rejected)

    @property
    def rejections(self) -> dict[str, int]:
        """Rejected candidates per reason code (a candidate counts under each of its reasons)."""
        counts = Counter(r for c in self.rejected for r in c.report.reasons)
        return dict(counts.most_common())

    @property
    def acceptance_rate(self) -> float:
        """Share of checked candidates that were accepted."""
        return len(self.accepted) / self.candidates if self.candidates else 0.0

    @property
    def diversity(self) -> DiversityMetrics:
        """distinct-1/2 and mean pairwise similarity of the accepted texts."""
        return batch_metrics([c.text for c in self.accepted])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the HTTP response body and logs)."""
        return {
            "model_version_id": self.model_version_id,
            "seed": self.seed,
            "attempts": self.attempts,
            "candidates": self.candidates,
            "accepted": len(self.accepted),
            "rejected": len(self.rejected),
            "acceptance_rate": round(self.acceptance_rate, 4),
            "rejections": self.rejections,
            "diversity": self.diversity.as_dict(),
            "variant_ids": list(self.variant_ids),
        }


def attempt_seed(seed: int, attempt: int) -> int:
    """The torch seed of one attempt, derived so that runs with nearby seeds do not overlap."""
    return int(np.random.SeedSequence([seed, attempt]).generate_state(1, dtype=np.uint64)[0] >> 1)


def generate_variants(
    model: Any,
    tokenizer: Any,
    brief: Brief,
    n: int,
    *,
    seed: int,
    guardrails: GuardrailConfig,
    params: SamplingParams,
    loop: LoopConfig,
    existing: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
) -> GenerationResult:
    """Sample until ``n`` candidates pass every guardrail and the generator's own filters
    (``prompt_echo``, ``off_brief``), or ``loop.max_attempts`` are spent.

    Each accepted text joins the texts later candidates must not near-duplicate;
    ``progress`` is called with the number accepted so far after each attempt.
    """
    if n < 1:
        raise ValueError(f"n={n} must be at least 1")
    prompt = build_prompt(brief)
    stop_when = partial(settled, brief=brief)
    result = GenerationResult(seed=seed)
    seen = list(existing)
    while len(result.accepted) < n and result.attempts < loop.max_attempts:
        sub_seed = attempt_seed(seed, result.attempts)
        size = loop.batch_size(n - len(result.accepted))
        batch = sample_raw(model, tokenizer, prompt, size, sub_seed, params, stop_when)
        for raw, finished in batch:
            if len(result.accepted) >= n:
                break
            text = candidate_text(raw, finished, brief)
            report = check(text, brief, seen, guardrails)
            own = generation_reasons(text, brief) if text else []
            if own:
                report = replace(report, passed=False, reasons=[*own, *report.reasons])
            candidate = Candidate(text, report, result.attempts, sub_seed)
            (result.accepted if report.passed else result.rejected).append(candidate)
            if report.passed:
                seen.append(text)
        result.attempts += 1
        logger.debug(
            "attempt %d: %d accepted, %d rejected so far",
            result.attempts,
            len(result.accepted),
            len(result.rejected),
        )
        if progress is not None:
            progress(len(result.accepted))
    return result
