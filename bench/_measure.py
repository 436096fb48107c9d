"""What the closed-loop and candidate benchmarks measure a version by: its samples on a set of
briefs, the share that passes the guardrails and the hidden true CTR of those, and lifts
averaged over seeds with a 95% interval."""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from adgen.audience import Audience
from adgen.brief import Brief
from adgen.generator import SamplingParams, sample_texts
from adgen.guardrails import GuardrailConfig, check
from adgen.reward.model import RewardModel
from adgen.settings import Settings


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """The command line both benchmarks start from: ``--audience``, ``--seeds`` and
    ``--torch-threads``, with ``doc`` (the script's docstring) as its description."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--audience", type=Path, default=None, help="audience JSON (default: shipped)"
    )
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="CPU threads for torch (ADGEN_TORCH_THREADS; 1 on a machine others load)",
    )
    return parser


@dataclass
class Samples:
    """A version's samples per brief: the texts that passed the guardrails, of ``n`` each."""

    accepted: list[list[str]]
    n: int

    @property
    def acceptance(self) -> float:
        """Share of the sampled texts that passed the guardrails."""
        return sum(map(len, self.accepted)) / (self.n * len(self.accepted))


def sample_model(
    model: Any,
    tokenizer: Any,
    briefs: Sequence[Brief],
    n: int,
    seed: int,
    settings: Settings,
    guard: GuardrailConfig,
) -> Samples:
    """``n`` texts of ``model`` per brief (seed ``seed + i`` for brief i), kept when they
    pass the guardrails."""
    params = SamplingParams.from_settings(settings)
    accepted = []
    for i, brief in enumerate(briefs):
        texts = sample_texts(model, tokenizer, brief, n, seed + i, params)
        accepted.append([t for t in texts if t and check(t, brief, [], guard).passed])
    return Samples(accepted, n)


def mean_of(values: Sequence[float]) -> float:
    """The mean, NaN for no values."""
    return float(np.mean(values)) if values else math.nan


def true_ctr(
    audience: Audience,
    samples: Samples,
    briefs: Sequence[Brief],
    settings: Settings,
    reward_model: RewardModel | None = None,
) -> float:
    """Mean over briefs of the true CTR of the accepted samples, or with ``reward_model`` of
    the best-scored share of them a rollout keeps (``rollout_variants`` of
    ``rollout_best_of``). NaN when no brief has an accepted sample."""
    values = []
    for texts, brief in zip(samples.accepted, briefs, strict=True):
        if reward_model is not None and texts:
            keep = max(1, len(texts) * settings.rollout_variants // settings.rollout_best_of)
            texts = [texts[j] for j in reward_model.rank(texts, brief)[:keep]]
        if texts:
            values.append(mean_of([audience.true_ctr(t, brief.brand, brief.locale) for t in texts]))
    return mean_of(values)


def over(x: float, ref: float) -> float:
    """``x`` as a lift over ``ref`` (NaN when ``ref`` is not positive)."""
    return x / ref - 1 if ref > 0 else math.nan


def mean_ci(values: Sequence[float]) -> tuple[float | None, list[float] | None]:
    """Mean and 95% t-interval over seeds (no interval from one seed); NaNs left out."""
    xs = [v for v in values if not math.isnan(v)]
    if not xs:
        return None, None
    mean = statistics.fmean(xs)
    if len(xs) < 2:
        return mean, None
    half = float(sps.t.ppf(0.975, len(xs) - 1)) * statistics.stdev(xs) / math.sqrt(len(xs))
    return mean, [mean - half, mean + half]


def finite(value: Any) -> Any:
    """``value`` with every NaN float, however nested, replaced by None (valid JSON)."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
