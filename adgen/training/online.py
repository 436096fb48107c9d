"""On-policy updates with TRL: GRPO or RLOO on the same LoRA set-up (an option, not the default).

The reward of a completion is the reward model's score for its text and the campaign's
brief, minus ``GUARDRAIL_PENALTY`` when the text fails the guardrails. On a CPU a step
costs seconds and tens of steps do not move the reward much (see docs/model-notes.md); DPO/KTO on
live evidence is the workhorse, this is for GPUs and long runs. The KL coefficient is
TRL's default (β = 0: no reference pass); the parent's adapter is the starting point.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from adgen.brief import Brief
from adgen.guardrails import GuardrailConfig, check
from adgen.training.config import TrainConfig
from adgen.training.pairs import Messages
from adgen.training.trl_run import TrainStats, common_args, run_trainer
from adgen.vocabulary import Trainer

logger = logging.getLogger(__name__)

#: Subtracted from the reward of a completion that fails the guardrails.
GUARDRAIL_PENALTY = 1.0

RewardFn = Callable[..., list[float]]


def guarded_reward(reward_model: Any, briefs: Sequence[Brief], guard: GuardrailConfig) -> RewardFn:
    """A TRL reward function: reward-model score minus the guardrail penalty.

    The dataset's ``campaign_index`` column tells which brief each completion answers.
    """

    def reward(
        prompts: list[Any], completions: list[Any], campaign_index: list[int], **_: Any
    ) -> list[float]:
        texts = [_text(c) for c in completions]
        batch_briefs = [briefs[i] for i in campaign_index]
        scores = reward_model.score(texts, batch_briefs)
        return [
            float(score) - (0.0 if check(text, brief, [], guard).passed else GUARDRAIL_PENALTY)
            for text, brief, score in zip(texts, batch_briefs, scores, strict=True)
        ]

    return reward


def train_online(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    reward_fn: RewardFn,
    config: TrainConfig,
    *,
    use_cpu: bool = True,
    progress: bool = False,
) -> TrainStats:
    """``config.steps`` GRPO or RLOO steps over ``prompts`` (one per campaign)."""
    from datasets import Dataset

    if not prompts:
        raise ValueError("on-policy training needs at least one prompt")
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    classes: dict[Trainer, tuple[Any, Any]] = {
        Trainer.GRPO: (GRPOConfig, GRPOTrainer),
        Trainer.RLOO: (RLOOConfig, RLOOTrainer),
    }
    if config.trainer not in classes:
        raise ValueError(f"train_online runs grpo or rloo, not {config.trainer!r}")
    args_class, trainer_class = classes[config.trainer]
    dataset = Dataset.from_list([{"prompt": p, "campaign_index": i} for i, p in enumerate(prompts)])

    def build(output_dir: str, callbacks: list[Any]) -> Any:
        args = args_class(
            **common_args(config, output_dir, use_cpu=use_cpu, progress=progress),
            num_generations=config.num_generations,
            max_completion_length=config.max_completion_length,
        )
        return trainer_class(
            model=model,
            reward_funcs=reward_fn,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=callbacks,
        )

    logger.info(
        "%s: %d prompts, %d steps of %d completions",
        config.trainer.upper(),
        len(prompts),
        config.steps,
        config.batch_size,
    )
    return run_trainer(build)


def _text(completion: Any) -> str:
    if isinstance(completion, list):  # conversational: [{"role": "assistant", "content": ...}]
        return str(completion[-1]["content"]).strip()
    return str(completion).strip()
