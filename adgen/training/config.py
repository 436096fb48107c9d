"""The training configuration of one run: which trainer, LoRA shape, optimiser figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from adgen.settings import Settings

TrainerKind = Literal["dpo", "kto", "grpo", "rloo"]
TRAINER_KINDS: tuple[str, ...] = ("dpo", "kto", "grpo", "rloo")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one preference (DPO/KTO) or on-policy (GRPO/RLOO) run.

    Defaults suit a CPU: fp32, no gradient checkpointing, a learning rate that moves a LoRA
    adapter in tens of steps (TRL's default 1e-6 does nothing in that budget).
    """

    trainer: TrainerKind = field(
        default="dpo", metadata={"help": "dpo (default), kto, grpo or rloo."}
    )
    steps: int = field(default=20, metadata={"help": "Optimizer steps (max_steps)."})
    batch_size: int = field(
        default=4,
        metadata={"help": "Examples per step; for grpo/rloo, completions per step."},
    )
    learning_rate: float = field(default=5e-4, metadata={"help": "AdamW learning rate."})
    beta: float = field(default=0.1, metadata={"help": "DPO/KTO β (strength of the reference)."})
    sft_weight: float = field(
        default=0.0,
        metadata={
            "help": "DPO: weight of an added NLL loss on the chosen texts (RPO); keeps the "
            "policy writing texts like the ones it is taught to prefer. 0 = plain DPO."
        },
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank of a new adapter."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha of a new adapter."})
    lora_targets: tuple[str, ...] = field(
        default=("q_proj", "v_proj"), metadata={"help": "Module names a new adapter wraps."}
    )
    max_length: int = field(default=384, metadata={"help": "Prompt + completion tokens."})
    num_generations: int = field(
        default=4, metadata={"help": "grpo/rloo: completions per prompt (divides batch_size)."}
    )
    max_completion_length: int = field(
        default=32, metadata={"help": "grpo/rloo: new tokens per completion."}
    )
    seed: int = field(default=0, metadata={"help": "Seeds LoRA init, data order, sampling."})

    def __post_init__(self) -> None:
        if self.trainer not in TRAINER_KINDS:
            raise ValueError(f"trainer must be one of {TRAINER_KINDS}, got {self.trainer!r}")
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
        if self.trainer in ("grpo", "rloo"):
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
        """The configuration the settings describe, with keyword overrides."""
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
        return self.trainer in ("dpo", "kto")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready hyper-parameters, as recorded on runs and versions."""
        d = asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        return d
