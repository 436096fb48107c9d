"""DPO with an NLL term on the chosen texts (RPO) keeps the policy writing them: plain DPO
only widens the margin and lets the chosen texts' likelihood sink with the rejected ones,
which in the closed loop left most samples failing the guardrails."""

from __future__ import annotations

import numpy as np
import pytest
import seed_evidence as seed

from adgen.generator.prompts import build_prompt
from adgen.settings import Settings
from adgen.training.config import TrainConfig
from adgen.training.logprobs import completion_logprobs
from adgen.training.pairs import PreferencePair
from adgen.training.policy import TrainingModels, trainable_policy
from adgen.training.preference import train_dpo

pytestmark = pytest.mark.slow  # loads the real model and trains

BASE = "smollm2-135m-instruct"


def _chosen_logprob_after(models: TrainingModels, pairs: list[PreferencePair],
                          sft_weight: float) -> tuple[float, dict[str, float]]:
    """Mean log-prob of the chosen texts after 6 DPO steps with this NLL weight."""
    base, tokenizer = models.get(BASE)
    config = TrainConfig.from_settings(
        Settings(), steps=6, batch_size=4, learning_rate=1e-3, max_length=96,
        sft_weight=sft_weight, lora_targets=("q_proj", "v_proj"),
    )
    with trainable_policy(base, None, config) as policy:
        stats = train_dpo(policy, tokenizer, pairs, config)
        logp = completion_logprobs(policy, tokenizer, [p.prompt for p in pairs],
                                   [p.chosen for p in pairs], max_length=96)
    return float(np.mean(logp)), stats.logged


def test_the_nll_term_keeps_the_chosen_texts_likely() -> None:
    prompt = build_prompt(seed.BRIEF).messages()
    pairs = [
        PreferencePair(1, prompt, w, loser, "live", 0.99)
        for w, loser in zip(seed.WINNERS, seed.LOSERS, strict=False)
    ]
    models = TrainingModels(Settings())
    plain, plain_logged = _chosen_logprob_after(models, pairs, 0.0)
    rpo, rpo_logged = _chosen_logprob_after(models, pairs, 1.0)
    assert rpo > plain + 1.0  # summed over a headline's tokens
    # both still learn the preference
    assert plain_logged["reward_margin_final"] > 0 and rpo_logged["reward_margin_final"] > 0


def test_a_negative_nll_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="sft_weight"):
        TrainConfig.from_settings(Settings(), sft_weight=-0.5)
