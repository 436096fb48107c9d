"""Preference pairs among fresh samples of the current version, ranked by the reward model."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from adgen.brief import Brief
from adgen.generator.prompts import build_prompt
from adgen.generator.sampling import SamplingParams, sample_texts
from adgen.guardrails import GuardrailConfig, check
from adgen.training.pairs import PreferencePair, ranked_pairs

logger = logging.getLogger(__name__)


def sampled_pairs(
    model: Any,
    tokenizer: Any,
    campaigns: Sequence[tuple[int, Brief]],
    reward_model: Any,
    guard: GuardrailConfig,
    n: int,
    k: int,
    seed: int,
    params: SamplingParams,
    *,
    progress: bool = False,
) -> list[PreferencePair]:
    """Per campaign, ``n`` samples from ``model`` ranked by the reward model; the ``k`` best
    passing ones over the ``k`` worst passing and the ``k`` worst failing (``ranked_pairs``)."""
    pairs: list[PreferencePair] = []
    for campaign_id, brief in tqdm(
        campaigns, desc="reward-model pairs", unit="campaign", disable=not progress
    ):
        texts = sample_texts(model, tokenizer, brief, n, seed + campaign_id, params)
        scores = [float(s) for s in reward_model.score(texts, [brief] * len(texts))]
        passed = [check(t, brief, [], guard).passed for t in texts]
        pairs.extend(
            ranked_pairs(campaign_id, build_prompt(brief).messages(), texts, scores, passed, k)
        )
    logger.info("%d reward-model pairs from %d campaigns", len(pairs), len(campaigns))
    return pairs
