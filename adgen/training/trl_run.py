"""Running one TRL trainer in-process: CPU-safe arguments, step timing, logged metrics."""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adgen.training.config import TrainConfig

logger = logging.getLogger(__name__)

#: Logged TRL keys worth keeping, under the names our records use.
LOGGED_METRICS = {
    "loss": "loss",
    "rewards/margins": "reward_margin",
    "rewards/accuracies": "reward_accuracy",
    "reward": "reward",
    "kl": "kl",
}


@dataclass
class TrainStats:
    """What a TRL run reports: steps, seconds per step, loss and reward figures."""

    steps: int
    step_s: float
    seconds: float
    train_loss: float | None
    logged: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Flat, JSON-ready figures."""
        return {
            "steps": self.steps,
            "step_s": round(self.step_s, 4),
            "train_seconds": round(self.seconds, 2),
            "train_loss": self.train_loss,
            **self.logged,
        }


def common_args(
    config: TrainConfig, output_dir: str, *, use_cpu: bool, progress: bool
) -> dict[str, Any]:
    """TrainingArguments shared by every trainer, with the CPU pitfalls overridden.

    TRL defaults to bf16, gradient checkpointing and lr 1e-6; here fp32 on CPU, no
    checkpointing, the configured learning rate, no reports, no checkpoints on disk.
    """
    return {
        "output_dir": output_dir,
        "max_steps": config.steps,
        "per_device_train_batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "bf16": not use_cpu,
        "gradient_checkpointing": False,
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 1,
        "seed": config.seed,
        "data_seed": config.seed,
        "use_cpu": use_cpu,
        "dataloader_num_workers": 0,
        "disable_tqdm": not progress,
    }


#: Score only the completion tokens in TRL's fused LM head (``compact_fused_lm_head``);
#: ``bench/train.py`` turns it off for its reference figure.
SCORE_COMPLETIONS_ONLY = True


def compact_fused_lm_head(enabled: bool) -> bool:
    """Have TRL's fused LM head score only the completion tokens on every device (or, with
    ``enabled`` False, only where TRL itself does: Triton devices).

    DPO and KTO get per-token log-probabilities from a fused LM head (``add_fused_lm_head``)
    that, off Triton devices, projects *every* position, prompt included, through the
    49,152-word vocabulary (so that tile shapes stay fixed for compilers that recompile on
    a new shape). On CPU nothing recompiles, and adgen's prompts are most of each row
    (about 130 of 150 tokens), so that head was a third of a DPO step. Scoring only the
    labelled positions gives the same log-probabilities (same loss, same margins) and made
    a DPO step about 1.3x faster here (``bench/train.py``: ``dpo_step_s`` against
    ``dpo_all_positions_step_s``); the kernel still takes its CPU path. Returns False,
    changing nothing, when this TRL has no such switch.
    """
    try:
        import trl.trainer.utils as trl_utils
        from trl.kernels.chunked_logprob import _use_triton
    except ImportError:
        return False
    if not hasattr(trl_utils, "_use_triton"):
        logger.warning("this TRL's fused LM head has no compaction switch: it scores prompts too")
        return False
    if enabled:
        trl_utils._use_triton = lambda device: device.type == "cpu" or _use_triton(device)
    else:
        trl_utils._use_triton = _use_triton
    return True


def run_trainer(build: Callable[[str, list[Any]], Any]) -> TrainStats:
    """Build a trainer with ``build(output_dir, callbacks)``, train it, and report."""
    from transformers import PrinterCallback, TrainerCallback

    compact_fused_lm_head(SCORE_COMPLETIONS_ONLY)
    durations: list[float] = []

    class _StepTimer(TrainerCallback):  # type: ignore[misc]
        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._t = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            durations.append(time.perf_counter() - self._t)

    with tempfile.TemporaryDirectory(prefix="adgen-trl-") as tmp:
        trainer = build(tmp, [_StepTimer()])
        trainer.remove_callback(PrinterCallback)  # logs go to the run record, not stdout
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
        history = list(trainer.state.log_history)
    # The first step carries one-off set-up costs; the median of the rest is the step time.
    steady = durations[1:] or durations
    return TrainStats(
        steps=len(durations),
        step_s=statistics.median(steady) if steady else 0.0,
        seconds=seconds,
        train_loss=float(result.training_loss) if result.training_loss is not None else None,
        logged=_summarise(history),
    )


def _summarise(history: list[dict[str, Any]]) -> dict[str, float]:
    """First and final (mean of the last three logs) value of each kept metric."""
    out: dict[str, float] = {}
    for key, name in LOGGED_METRICS.items():
        values = [float(h[key]) for h in history if key in h]
        if not values:
            continue
        tail = values[-3:]
        out[f"{name}_first"] = round(values[0], 4)
        out[f"{name}_final"] = round(sum(tail) / len(tail), 4)
    return out
