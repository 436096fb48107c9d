"""Offline preference updates with TRL: DPO on pairs, KTO on binary examples (LoRA).

``model`` is the ``PeftModel`` from ``policy.trainable_policy``; it is passed without a
``peft_config``, so TRL trains its ``default`` adapter against a frozen copy of it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from adgen.errors import InsufficientEvidence
from adgen.training.config import TrainConfig
from adgen.training.pairs import BinaryExample, PreferencePair, dpo_rows, kto_rows
from adgen.training.shared_prompt import shared_prompt_forward
from adgen.training.trl_run import TrainStats, common_args, run_trainer
from adgen.vocabulary import Trainer

logger = logging.getLogger(__name__)

#: DPO runs each pair's prompt once (``shared_prompt``); ``bench/train.py`` turns it off
#: for its reference figure.
SHARE_PROMPTS = True


def train_dpo(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[PreferencePair],
    config: TrainConfig,
    *,
    use_cpu: bool = True,
    progress: bool = False,
) -> TrainStats:
    """``config.steps`` DPO steps on ``pairs``."""
    if not pairs:
        raise InsufficientEvidence("DPO needs at least one preference pair")
    logger.info("DPO: %d pairs, %d steps of %d", len(pairs), config.steps, config.batch_size)
    return _run_offline(Trainer.DPO, model, tokenizer, dpo_rows(pairs), config, use_cpu, progress)


def train_kto(
    model: Any,
    tokenizer: Any,
    examples: Sequence[BinaryExample],
    config: TrainConfig,
    *,
    use_cpu: bool = True,
    progress: bool = False,
) -> TrainStats:
    """``config.steps`` KTO steps on ``examples`` (both labels must be present)."""
    desirable = sum(e.desirable for e in examples)
    if desirable == 0 or desirable == len(examples):
        raise InsufficientEvidence(
            f"KTO needs desirable and undesirable examples; got {desirable} desirable "
            f"of {len(examples)}"
        )
    if len(examples) < config.batch_size:
        raise InsufficientEvidence(
            f"KTO needs at least batch_size ({config.batch_size}) examples, got {len(examples)}"
        )
    logger.info(
        "KTO: %d examples (%d desirable), %d steps of %d",
        len(examples),
        desirable,
        config.steps,
        config.batch_size,
    )
    rows = kto_rows(examples, config.seed)
    return _run_offline(Trainer.KTO, model, tokenizer, rows, config, use_cpu, progress)


def _run_offline(
    trainer: Trainer,
    model: Any,
    tokenizer: Any,
    rows: Sequence[dict[str, Any]],
    config: TrainConfig,
    use_cpu: bool,
    progress: bool,
) -> TrainStats:
    """One TRL DPO or KTO run on conversational ``rows``."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

    classes = {Trainer.DPO: (DPOConfig, DPOTrainer), Trainer.KTO: (KTOConfig, KTOTrainer)}
    args_cls, trainer_cls = classes[trainer]
    dataset = Dataset.from_list(list(rows))

    extra: dict[str, Any] = {}
    if trainer is Trainer.DPO and config.sft_weight > 0:  # RPO: DPO's loss + weight × NLL(chosen)
        extra = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, config.sft_weight]}

    def build(output_dir: str, callbacks: list[Any]) -> Any:
        args = args_cls(
            **common_args(config, output_dir, use_cpu=use_cpu, progress=progress),
            beta=config.beta,
            max_length=config.max_length,
            precompute_ref_log_probs=False,
            **extra,
        )
        return trainer_cls(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=callbacks,
        )

    share = trainer is Trainer.DPO and SHARE_PROMPTS
    with shared_prompt_forward(model) if share else nullcontext():
        return run_trainer(build)
