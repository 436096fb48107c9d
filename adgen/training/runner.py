"""One adapter update: held-out margins before, the configured trainer, margins after, save.

``fit`` dispatches on ``config.trainer`` (DPO by default; KTO; GRPO/RLOO when a reward
function is given) and reports the figures recorded on the run and the version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adgen.errors import InsufficientEvidence
from adgen.training.config import TrainConfig
from adgen.training.logprobs import pair_margins
from adgen.training.online import RewardFn, train_online
from adgen.training.pairs import BinaryExample, Messages, PreferencePair
from adgen.training.policy import save_adapter
from adgen.training.preference import train_dpo, train_kto
from adgen.training.trl_run import TrainStats
from adgen.vocabulary import Trainer


@dataclass
class TrainingData:
    """What one run trains and evaluates on."""

    pairs: list[PreferencePair] = field(default_factory=list)
    """Training pairs: live evidence and reward-model-ranked samples (DPO)."""
    examples: list[BinaryExample] = field(default_factory=list)
    """Binary examples (KTO)."""
    heldout: list[PreferencePair] = field(default_factory=list)
    """Pairs among held-out variants, never trained on."""
    prompts: list[Messages] = field(default_factory=list)
    """One prompt per active campaign (GRPO/RLOO)."""

    def counts(self) -> dict[str, int]:
        """How many examples of each kind."""
        return {
            "pairs_live": sum(p.source == "live" for p in self.pairs),
            "pairs_reward_model": sum(p.source == "reward_model" for p in self.pairs),
            "kto_examples": len(self.examples),
            "kto_desirable": sum(e.desirable for e in self.examples),
            "heldout_pairs": len(self.heldout),
        }


def fit(
    policy: Any,
    tokenizer: Any,
    data: TrainingData,
    config: TrainConfig,
    out_dir: Path,
    *,
    reward_fn: RewardFn | None = None,
    use_cpu: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Train ``policy``'s adapter on ``data``, save it to ``out_dir``; return the metrics."""
    metrics: dict[str, Any] = dict(data.counts())
    start = time.perf_counter()
    before = pair_margins(policy, tokenizer, data.heldout, max_length=config.max_length)
    stats = _train(policy, tokenizer, data, config, reward_fn, use_cpu, progress)
    after = pair_margins(policy, tokenizer, data.heldout, max_length=config.max_length)
    metrics.update(stats.as_dict())
    metrics.update(_heldout("before", before))
    metrics.update(_heldout("after", after))
    metrics["adapter_mb"] = round(save_adapter(policy, out_dir), 3)
    metrics["fit_seconds"] = round(time.perf_counter() - start, 2)
    return metrics


def _train(
    policy: Any,
    tokenizer: Any,
    data: TrainingData,
    config: TrainConfig,
    reward_fn: RewardFn | None,
    use_cpu: bool,
    progress: bool,
) -> TrainStats:
    if config.trainer is Trainer.DPO:
        return train_dpo(policy, tokenizer, data.pairs, config, use_cpu=use_cpu, progress=progress)
    if config.trainer is Trainer.KTO:
        return train_kto(
            policy, tokenizer, data.examples, config, use_cpu=use_cpu, progress=progress
        )
    if reward_fn is None:
        raise InsufficientEvidence(
            f"{config.trainer} needs a reward model to score completions, and none is active yet"
        )
    return train_online(
        policy, tokenizer, data.prompts, reward_fn, config, use_cpu=use_cpu, progress=progress
    )


def _heldout(when: str, margins: np.ndarray) -> dict[str, float | None]:
    """Mean held-out margin and pair accuracy (share of margins > 0)."""
    if margins.size == 0:
        return {f"heldout_margin_{when}": None, f"heldout_accuracy_{when}": None}
    return {
        f"heldout_margin_{when}": round(float(margins.mean()), 4),
        f"heldout_accuracy_{when}": round(float((margins > 0).mean()), 4),
    }
