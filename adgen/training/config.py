"""The training configuration of one run: which trainer, LoRA shape, optimiser figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from adgen.settings import Settings
from adgen.vocabulary import Trainer


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one preference (DPO/KTO) or on-policy (GRPO/RLOO) run.

    Built from :class:`Settings` (:meth:`from_settings`), which hold every default and its
    description; the dataclass has none of its own, so the two cannot drift apart.
    """

    trainer: Trainer
    steps: int
    batch_size: int
    learning_rate: float
    beta: float
    sft_weight: float
    lora_r: int
    lora_alpha: int
    lora_targets: tuple[str, ...]
    max_length: int
    num_generations: int
    max_completion_length: int
    seed: int

    def __post_init__(self) -> None:
        if self.trainer not in tuple(Trainer):
            raise ValueError(
                f"trainer must be one of {[str(t) for t in Trainer]}, got {self.trainer!r}"
            )
        object.__setattr__(self, "trainer", Trainer(self.trainer))  # a plain string too
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.batch_size < 2:
            raise ValueError(
                f"batch_size must be >= 2 (KTO needs it and DPO learns little from one pair), "
                f"got {self.batch_size}"
            )
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if self.sft_weight < 0:
            raise ValueError(f"sft_weight must be >= 0, got {self.sft_weight}")
        if self.lora_r < 1 or self.lora_alpha < 1:
            raise ValueError(
                f"lora_r and lora_alpha must be >= 1, got {self.lora_r}, {self.lora_alpha}"
            )
        if not self.lora_targets:
            raise ValueError("lora_targets is empty: name the modules to adapt, e.g. q_proj,v_proj")
        if self.max_length < 16:
            raise ValueError(f"max_length must be >= 16 tokens, got {self.max_length}")
        if not self.is_preference:
            if self.num_generations < 2 or self.batch_size % self.num_generations:
                raise ValueError(
                    f"{self.trainer}: batch_size ({self.batch_size}) counts completions and "
                    f"must be a multiple of num_generations ({self.num_generations}, at least 2)"
                )
            if self.max_completion_length < 4:
                raise ValueError(
                    f"max_completion_length must be >= 4, got {self.max_completion_length}"
                )

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TrainConfig:
        """The configuration the settings describe, with keyword overrides (validated here)."""
        values: dict[str, Any] = {
            "trainer": settings.trainer,
            "steps": settings.train_steps,
            "batch_size": settings.train_batch_size,
            "learning_rate": settings.learning_rate,
            "beta": settings.dpo_beta,
            "sft_weight": settings.dpo_sft_weight,
            "lora_r": settings.lora_r,
            "lora_alpha": settings.lora_alpha,
            "lora_targets": tuple(settings.lora_targets),
            "max_length": settings.max_length,
            "num_generations": settings.rl_num_generations,
            "max_completion_length": settings.rl_max_completion_length,
            "seed": settings.train_seed,
        }
        values.update(overrides)
        return cls(**values)

    @property
    def is_preference(self) -> bool:
        """True for the offline preference trainers (DPO, KTO)."""
        return self.trainer.is_preference

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready hyper-parameters, as recorded on runs and versions."""
        d = asdict(self)
        d["trainer"] = str(self.trainer)
        d["lora_targets"] = list(self.lora_targets)
        return d
