"""Summaries of model versions for people (CLI table, API): status, lineage, evidence, figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, computed_field
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from adgen.db.models import ArmStats, Campaign, ModelVersion, Variant
from adgen.vocabulary import VariantStatus


class VersionSummary(BaseModel):
    """One model version with its served evidence (all time) and training figures; the
    API's response model too."""

    model_config = ConfigDict(frozen=True)

    id: int
    status: str
    base_model: str
    parent_id: int | None
    created_at: datetime
    promoted_at: datetime | None
    adapter: str | None
    variants: int
    active_variants: int
    impressions: int
    successes: int
    heldout_accuracy: float | None
    margin_gain: float | None
    metrics: dict[str, Any]
    hyperparams: dict[str, Any]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate(self) -> float | None:
        """Successes per impression of the version's variants (None before any)."""
        return self.successes / self.impressions if self.impressions else None


def version_summaries(session: Session, base_model: str | None = None) -> list[VersionSummary]:
    """Every version (of one lineage when given), newest first."""
    success = case((Campaign.reward == "click", ArmStats.clicks), else_=ArmStats.conversions)
    evidence = (
        select(
            Variant.model_version_id.label("version_id"),
            func.count(Variant.id).label("variants"),
            func.count(Variant.id).filter(Variant.status == VariantStatus.ACTIVE).label("active"),
            func.coalesce(func.sum(ArmStats.impressions), 0).label("impressions"),
            func.coalesce(func.sum(success), 0).label("successes"),
        )
        .join(Campaign, Campaign.id == Variant.campaign_id)
        .outerjoin(ArmStats, ArmStats.variant_id == Variant.id)
        .where(Variant.model_version_id.is_not(None))
        .group_by(Variant.model_version_id)
        .subquery()
    )
    stmt = (
        select(ModelVersion, evidence)
        .outerjoin(evidence, evidence.c.version_id == ModelVersion.id)
        .order_by(ModelVersion.id.desc())
    )
    if base_model is not None:
        stmt = stmt.where(ModelVersion.base_model == base_model)
    out: list[VersionSummary] = []
    for row in session.execute(stmt).all():
        v: ModelVersion = row[0]
        metrics = dict(v.metrics or {})
        before, after = metrics.get("heldout_margin_before"), metrics.get("heldout_margin_after")
        out.append(
            VersionSummary(
                id=v.id,
                status=v.status,
                base_model=v.base_model,
                parent_id=v.parent_id,
                created_at=v.created_at,
                promoted_at=v.promoted_at,
                adapter=f"sha256:{v.adapter_sha256}" if v.adapter_sha256 else v.adapter_path,
                variants=int(row.variants or 0),
                active_variants=int(row.active or 0),
                impressions=int(row.impressions or 0),
                successes=int(row.successes or 0),
                heldout_accuracy=metrics.get("heldout_accuracy_after"),
                margin_gain=(after - before) if before is not None and after is not None else None,
                metrics=metrics,
                hyperparams=dict(v.hyperparams or {}),
            )
        )
    return out
