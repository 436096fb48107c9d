"""Every status and kind adgen stores, spelled once (the database's CHECK constraints too).

Members are ``StrEnum``: they compare equal to, and are stored as, their plain strings.
"""

from __future__ import annotations

from enum import StrEnum


class CampaignStatus(StrEnum):
    """Whether a campaign is served."""

    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class VersionStatus(StrEnum):
    """Where a model version stands in its lineage."""

    CANDIDATE = "candidate"
    ACTIVE = "active"
    RETIRED = "retired"
    ROLLED_BACK = "rolled_back"


class VariantStatus(StrEnum):
    """Whether a variant is served."""

    ACTIVE = "active"
    PAUSED = "paused"
    REJECTED = "rejected"


class CountStatus(StrEnum):
    """Whether a stored event is in ``arm_stats``."""

    COUNTED = "counted"
    #: its impression already has a counted event of this type
    REPEAT = "repeat"
    #: waiting for its impression
    HELD = "held"
    #: the impression never came within the grace period: dead-lettered, never counted
    ORPHAN = "orphan"


class RunStatus(StrEnum):
    """How a training run ended (or that it is still running)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class RewardModelStatus(StrEnum):
    """Whether a trained reward model scores texts."""

    ACTIVE = "active"
    RETIRED = "retired"
    REJECTED = "rejected"


class Decision(StrEnum):
    """What one evaluation of a candidate version decided (the gate's or an operator's)."""

    CONTINUE = "continue"
    PROMOTE = "promote"
    ROLLBACK = "rollback"


class BudgetRule(StrEnum):
    """What the gate does with a candidate still undecided at ``gate_max_impressions``."""

    KEEP_INCUMBENT = "keep_incumbent"
    """Roll it back: it was not shown better, and the next cycle trains from the incumbent."""
    LOWER_LOSS = "lower_loss"
    """Take the choice with the smaller expected loss (the one the posterior means favour):
    for a budget squeezed to a short experiment, such as the demo's one round."""


class Decider(StrEnum):
    """Who decided: the promotion gate or an operator."""

    GATE = "gate"
    OPERATOR = "operator"


class Trainer(StrEnum):
    """The training loss: offline preference (DPO, KTO) or on-policy (GRPO, RLOO)."""

    DPO = "dpo"
    KTO = "kto"
    GRPO = "grpo"
    RLOO = "rloo"

    @property
    def is_preference(self) -> bool:
        """True for the offline preference trainers (DPO, KTO)."""
        return self in (Trainer.DPO, Trainer.KTO)
