"""Repository functions for campaigns and variants (the caller owns the transaction)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adgen.brief import Brief
from adgen.db.models import ArmStats, Campaign, Variant
from adgen.errors import NotFoundError
from adgen.vocabulary import CampaignStatus


def create_campaign(session: Session, brief: Brief) -> Campaign:
    """Insert a campaign from a validated brief and return it (flushed, with its id)."""
    campaign = Campaign(**brief.model_dump())
    session.add(campaign)
    session.flush()
    return campaign


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    """The campaign with ``campaign_id``, or NotFoundError."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFoundError(f"campaign {campaign_id} does not exist")
    return campaign


def list_campaigns(
    session: Session, *, status: str | None = None, limit: int = 100, offset: int = 0
) -> list[Campaign]:
    """Campaigns in id order, optionally of one ``status``, ``limit`` from ``offset``."""
    stmt = select(Campaign).order_by(Campaign.id).limit(limit).offset(offset)
    if status is not None:
        stmt = stmt.where(Campaign.status == status)
    return list(session.scalars(stmt))


def brief_of(campaign: Campaign) -> Brief:
    """The brief a stored campaign was created from."""
    fields = Brief.model_fields.keys()
    return Brief.model_validate({f: getattr(campaign, f) for f in fields})


def add_variants(
    session: Session,
    campaign_id: int,
    texts: Iterable[str],
    *,
    model_version_id: int | None = None,
    source: str = "manual",
    status: str = CampaignStatus.ACTIVE,
    reports: Sequence[dict[str, Any]] | None = None,
    scores: Sequence[float | None] | None = None,
) -> list[Variant]:
    """Insert variants of a campaign, each with an empty ``arm_stats`` row."""
    get_campaign(session, campaign_id)
    texts = list(texts)
    variants = [
        Variant(
            campaign_id=campaign_id,
            model_version_id=model_version_id,
            text=text,
            source=source,
            status=status,
            guardrail_report=(reports[i] if reports else {}),
            reward_score=(scores[i] if scores else None),
        )
        for i, text in enumerate(texts)
    ]
    session.add_all(variants)
    session.flush()
    session.add_all(
        ArmStats(variant_id=v.id, campaign_id=campaign_id, impressions=0, clicks=0, conversions=0)
        for v in variants
    )
    session.flush()
    return variants


def list_variants(
    session: Session, campaign_id: int, statuses: Sequence[str] | None = None
) -> list[tuple[Variant, ArmStats | None]]:
    """A campaign's variants with their stats, oldest first."""
    stmt = (
        select(Variant, ArmStats)
        .outerjoin(ArmStats, ArmStats.variant_id == Variant.id)
        .where(Variant.campaign_id == campaign_id)
        .order_by(Variant.id)
    )
    if statuses:
        stmt = stmt.where(Variant.status.in_(statuses))
    return [(v, s) for v, s in session.execute(stmt).all()]
