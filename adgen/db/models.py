"""SQLAlchemy 2.0 typed models of every table (the schema itself changes only via Alembic)."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from adgen.vocabulary import (
    CampaignStatus,
    CountStatus,
    Decider,
    Decision,
    RewardModelStatus,
    RunStatus,
    Trainer,
    VariantStatus,
    VersionStatus,
)

# BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements).
BigId = BigInteger().with_variant(Integer(), "sqlite")

LOCALES = ("en", "zh")
CHANNELS = ("headline", "description", "social")
REWARDS = ("click", "conversion")
CAMPAIGN_STATUSES = tuple(CampaignStatus)
VERSION_STATUSES = tuple(VersionStatus)
VARIANT_STATUSES = tuple(VariantStatus)
EVENT_TYPES = ("impression", "click", "conversion")
#: Whether a stored event is in ``arm_stats``: ``counted``; ``repeat`` (its impression already
#: has a counted event of this type); ``held`` (waiting for its impression); ``orphan`` (the
#: impression never came within the grace period: dead-lettered, never counted).
COUNT_STATUSES = tuple(CountStatus)
RUN_STATUSES = tuple(RunStatus)
TRAINERS = tuple(Trainer)
REWARD_MODEL_STATUSES = tuple(RewardModelStatus)
GATE_DECISIONS = tuple(Decision)
DECIDERS = tuple(Decider)
ARTIFACT_FORMATS = ("tar", "file")


def _in(column: str, values: tuple[str, ...]) -> str:  # StrEnum members format as values
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


def _now() -> Any:
    return func.now()


class Base(DeclarativeBase):
    """Declarative base of adgen's tables."""


class Campaign(Base):
    """A brief: what is advertised, to whom, in which locale and channel."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(_in("locale", LOCALES), name="ck_campaigns_locale"),
        CheckConstraint(_in("channel", CHANNELS), name="ck_campaigns_channel"),
        CheckConstraint(_in("reward", REWARDS), name="ck_campaigns_reward"),
        CheckConstraint(_in("status", CAMPAIGN_STATUSES), name="ck_campaigns_status"),
        CheckConstraint("max_length > 0", name="ck_campaigns_max_length"),
        CheckConstraint("length_unit IN ('chars', 'words')", name="ck_campaigns_length_unit"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    product: Mapped[str] = mapped_column(Text)
    benefits: Mapped[list[str]] = mapped_column(JSON, default=list)
    brand: Mapped[str] = mapped_column(String(200))
    brand_voice: Mapped[str | None] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(Text)
    locale: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(32), default="headline")
    max_length: Mapped[int] = mapped_column(Integer)
    length_unit: Mapped[str] = mapped_column(String(8), default="chars")
    require_brand: Mapped[bool] = mapped_column(Boolean, default=False)
    forbidden_words: Mapped[list[str]] = mapped_column(JSON, default=list)
    reward: Mapped[str] = mapped_column(String(16), default="click")
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    # traffic controls of this campaign; NULL means the setting of the same name
    traffic_floor: Mapped[float | None] = mapped_column(Float)
    traffic_cap: Mapped[float | None] = mapped_column(Float)
    min_exploration: Mapped[float | None] = mapped_column(Float)
    # contextual allocation: request-context attributes to allocate on (None = not
    # contextual) and the most cells kept (None = the setting)
    context_attributes: Mapped[list[str] | None] = mapped_column(JSON)
    max_cells: Mapped[int | None] = mapped_column(Integer)

    variants: Mapped[list[Variant]] = relationship(back_populates="campaign")


class Artifact(Base):
    """Bytes stored once under their sha256: a version's adapter, a reward model."""

    __tablename__ = "artifacts"
    __table_args__ = (
        CheckConstraint(_in("format", ARTIFACT_FORMATS), name="ck_artifacts_format"),
        CheckConstraint("size >= 0", name="ck_artifacts_size"),
    )

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(8))
    size: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[builtins.bytes | None] = mapped_column(LargeBinary)
    """The stored bytes; NULL when they live in an S3-compatible store (ADGEN_ARTIFACT_STORE)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class ModelVersion(Base):
    """A generator version: a base model plus an optional LoRA adapter, in a lineage."""

    __tablename__ = "model_versions"
    __table_args__ = (
        CheckConstraint(_in("status", VERSION_STATUSES), name="ck_model_versions_status"),
        Index("ix_model_versions_base_status", "base_model", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base_model: Mapped[str] = mapped_column(String(300))
    adapter_path: Mapped[str | None] = mapped_column(Text)
    """A LoRA folder on disk (records made before artifacts; relative to ``models_dir``)."""
    adapter_sha256: Mapped[str | None] = mapped_column(ForeignKey("artifacts.sha256"))
    """The adapter's artifact (a tar of its folder); any host can fetch it."""
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    status: Mapped[str] = mapped_column(String(16), default=VersionStatus.CANDIDATE.value)
    data_window_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    data_window_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hyperparams: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    parent: Mapped[ModelVersion | None] = relationship(remote_side=[id])


class Variant(Base):
    """One ad text competing in a campaign."""

    __tablename__ = "variants"
    __table_args__ = (
        CheckConstraint(_in("status", VARIANT_STATUSES), name="ck_variants_status"),
        CheckConstraint("source IN ('generated', 'manual')", name="ck_variants_source"),
        Index("ix_variants_campaign_status", "campaign_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=VariantStatus.ACTIVE.value)
    source: Mapped[str] = mapped_column(String(16), default="generated")
    guardrail_report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reward_score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    rollout_of: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    """Set on the serving version's texts written in the same cycle as a candidate's
    rollout: that candidate. The gate compares the candidate with these."""

    campaign: Mapped[Campaign] = relationship(back_populates="variants")
    model_version: Mapped[ModelVersion | None] = relationship(foreign_keys=[model_version_id])


class Event(Base):
    """Append-only impression / click / conversion; ``event_id`` is the idempotency key.

    One impression has at most one ``counted`` event of each type (partial unique index).
    """

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint(_in("type", EVENT_TYPES), name="ck_events_type"),
        CheckConstraint(_in("count_status", COUNT_STATUSES), name="ck_events_count_status"),
        Index(
            "uq_events_counted", "impression_id", "type", unique=True,
            postgresql_where=text("count_status = 'counted'"),
            sqlite_where=text("count_status = 'counted'"),
        ),
        Index(
            "ix_events_held", "received_time",
            postgresql_where=text("count_status = 'held'"),
            sqlite_where=text("count_status = 'held'"),
        ),
        CheckConstraint(
            "propensity IS NULL OR (propensity > 0 AND propensity <= 1)",
            name="ck_events_propensity",
        ),
        Index("ix_events_variant", "variant_id"),
        Index("ix_events_campaign_time", "campaign_id", "event_time"),
        Index("ix_events_impression", "impression_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    impression_id: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"))
    propensity: Mapped[float | None] = mapped_column(Float)
    value: Mapped[float | None] = mapped_column(Float)
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    kafka_partition: Mapped[int | None] = mapped_column(Integer)
    kafka_offset: Mapped[int | None] = mapped_column(BigInteger)
    #: the allocation snapshot an impression was served under (``allocation_snapshots.id``)
    snapshot_id: Mapped[int | None] = mapped_column(BigInteger)
    count_status: Mapped[str] = mapped_column(String(16), server_default="counted")
    #: the cell an impression counted for (None or '' = the campaign level)
    cell: Mapped[str | None] = mapped_column(String(200))


class ArmStats(Base):
    """Per-variant totals, changed only in the transaction that stores new events."""

    __tablename__ = "arm_stats"
    __table_args__ = (
        CheckConstraint("impressions >= 0", name="ck_arm_stats_impressions"),
        CheckConstraint("clicks >= 0", name="ck_arm_stats_clicks"),
        CheckConstraint("conversions >= 0", name="ck_arm_stats_conversions"),
        Index("ix_arm_stats_campaign", "campaign_id"),
    )

    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    impressions: Mapped[int] = mapped_column(BigInteger, default=0)
    clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    conversions: Mapped[int] = mapped_column(BigInteger, default=0)
    conversion_value: Mapped[float] = mapped_column(Float, default=0.0)
    # exact 95% Beta interval of the CTR, stored with the counts for the analyst views
    ctr_ci95_low: Mapped[float] = mapped_column(Float, default=0.025, server_default="0.025")
    ctr_ci95_high: Mapped[float] = mapped_column(Float, default=0.975, server_default="0.975")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class HistoricalExperiment(Base):
    """A past A/B test imported from a file; kept apart from live traffic."""

    __tablename__ = "historical_experiments"
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_hist_exp_source_ext"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(300))
    external_id: Mapped[str] = mapped_column(String(200))
    started_week: Mapped[int | None] = mapped_column(Integer)
    locale: Mapped[str] = mapped_column(String(8), default="en")
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    arms: Mapped[list[HistoricalArm]] = relationship(back_populates="experiment")


class HistoricalArm(Base):
    """One arm (text, optional group such as the image) of a past test, with its totals."""

    __tablename__ = "historical_arms"
    __table_args__ = (
        UniqueConstraint("experiment_id", "arm_key", name="uq_hist_arms_key"),
        CheckConstraint("impressions >= 0", name="ck_hist_arms_impressions"),
        CheckConstraint("clicks >= 0 AND clicks <= impressions", name="ck_hist_arms_clicks"),
        CheckConstraint("conversions IS NULL OR conversions >= 0", name="ck_hist_arms_conv"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("historical_experiments.id"))
    arm_key: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    group_key: Mapped[str | None] = mapped_column(String(200))
    impressions: Mapped[int] = mapped_column(BigInteger)
    clicks: Mapped[int] = mapped_column(BigInteger)
    conversions: Mapped[int | None] = mapped_column(BigInteger)

    experiment: Mapped[HistoricalExperiment] = relationship(back_populates="arms")


class RewardModelRecord(Base):
    """A trained reward model: where its artefact is, on what data, how good it is."""

    __tablename__ = "reward_models"
    __table_args__ = (
        CheckConstraint(_in("status", REWARD_MODEL_STATUSES), name="ck_reward_models_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    artifact_sha256: Mapped[str | None] = mapped_column(ForeignKey("artifacts.sha256"))
    """The model's artifact (a tar of its folder); ``path`` is where it was written."""
    status: Mapped[str] = mapped_column(String(16), default=RewardModelStatus.ACTIVE.value)
    source: Mapped[str] = mapped_column(String(16), default="live")
    n_train: Mapped[int] = mapped_column(Integer, default=0)
    data_window_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    data_window_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class TrainingRun(Base):
    """One scheduled or manual training cycle, whatever its outcome."""

    __tablename__ = "training_runs"
    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), name="ck_training_runs_status"),
        CheckConstraint(_in("trainer", TRAINERS), name="ck_training_runs_trainer"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trainer: Mapped[str] = mapped_column(String(16), default=Trainer.DPO.value)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING.value)
    base_model: Mapped[str] = mapped_column(String(300))
    parent_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    candidate_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    reward_model_id: Mapped[int | None] = mapped_column(ForeignKey("reward_models.id"))
    data_window_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    data_window_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hyperparams: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_s: Mapped[float | None] = mapped_column(Float)


class GateDecision(Base):
    """A promotion-gate (or operator) decision on a candidate version, with its figures."""

    __tablename__ = "gate_decisions"
    __table_args__ = (
        CheckConstraint(_in("decision", GATE_DECISIONS), name="ck_gate_decisions_decision"),
        CheckConstraint(_in("decided_by", DECIDERS), name="ck_gate_decisions_by"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    candidate_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    incumbent_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    decision: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[str] = mapped_column(String(16), default="gate")
    prob_better: Mapped[float | None] = mapped_column(Float)
    candidate_impressions: Mapped[int] = mapped_column(BigInteger, default=0)
    candidate_successes: Mapped[int] = mapped_column(BigInteger, default=0)
    incumbent_impressions: Mapped[int] = mapped_column(BigInteger, default=0)
    incumbent_successes: Mapped[int] = mapped_column(BigInteger, default=0)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class DeadLetter(Base):
    """A message that could not be ingested, kept with the reason and where it came from."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        UniqueConstraint("topic", "kafka_partition", "kafka_offset", name="uq_dead_letters_pos"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(200))
    kafka_partition: Mapped[int] = mapped_column(Integer)
    kafka_offset: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[bytes | None] = mapped_column(LargeBinary)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class AuditEntry(Base):
    """One operator action: who, what, when, and the state before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_target", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AllocationSnapshot(Base):
    """The probabilities a campaign's arms were served with (after controls) from
    ``created_at`` until the next snapshot; impressions carry its id."""

    __tablename__ = "allocation_snapshots"
    __table_args__ = (Index("ix_allocation_snapshots_campaign", "campaign_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    cell: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    variant_ids: Mapped[list[int]] = mapped_column(JSON)
    probabilities: Mapped[list[float]] = mapped_column(JSON)


class CellStats(Base):
    """Per-(variant, cell) totals of contextual campaigns, beside ``arm_stats`` and written
    in the same transaction; clicks and conversions count for their impression's cell."""

    __tablename__ = "cell_stats"
    __table_args__ = (Index("ix_cell_stats_campaign", "campaign_id", "cell"),)

    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"), primary_key=True)
    cell: Mapped[str] = mapped_column(String(200), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    impressions: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    clicks: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    conversions: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    conversion_value: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
