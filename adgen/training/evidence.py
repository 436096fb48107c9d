"""Reading the evidence a training run needs (the caller owns the transaction).

A campaign belongs to the lineage of its locale's base model. Successes are clicks or
conversions, per the campaign's reward; a click counted before its impression arrived
never makes successes exceed trials. The gate's comparison of a version with the incumbent
lives in :mod:`adgen.model.comparison`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adgen.db.campaigns import brief_of
from adgen.db.models import LOCALES, ArmStats, Campaign, Event, Variant
from adgen.errors import ModelError
from adgen.generator.prompts import build_prompt
from adgen.model.versions import lineage_of
from adgen.settings import Settings
from adgen.stats import successes_within
from adgen.training.pairs import ArmOutcome, CampaignEvidence
from adgen.vocabulary import CampaignStatus, VariantStatus

logger = logging.getLogger(__name__)


def lineage_campaigns(
    session: Session, settings: Settings, base_name: str, *, active_only: bool = False
) -> list[Campaign]:
    """Campaigns whose locale's base model is ``base_name``, oldest first."""
    locales = [loc for loc, name in _locale_lineages(settings).items() if name == base_name]
    stmt = select(Campaign).where(Campaign.locale.in_(locales)).order_by(Campaign.id)
    if active_only:
        stmt = stmt.where(Campaign.status == CampaignStatus.ACTIVE)
    return list(session.scalars(stmt))


def lineages(session: Session, settings: Settings) -> list[str]:
    """The base models of the locales that active campaigns use, among ``train_locales``."""
    active = Campaign.status == CampaignStatus.ACTIVE
    locales = session.scalars(select(Campaign.locale).where(active).distinct())
    names = _locale_lineages(settings)
    return sorted({names[loc] for loc in locales if loc in names and loc in settings.train_locales})


def _locale_lineages(settings: Settings) -> dict[str, str]:
    """Each locale's lineage; a locale whose base model cannot be found is left out."""
    out: dict[str, str] = {}
    for locale in LOCALES:
        try:
            out[locale] = lineage_of(settings, locale)
        except ModelError as exc:
            logger.warning("campaigns in %s are not trained: %s", locale, exc)
    return out


def campaign_evidence(session: Session, campaigns: Sequence[Campaign]) -> list[CampaignEvidence]:
    """Each campaign's chat prompt and its non-rejected variants' outcomes (from arm_stats)."""
    by_id = {c.id: c for c in campaigns}
    rows = session.execute(
        select(
            Variant.campaign_id,
            Variant.id,
            Variant.text,
            ArmStats.impressions,
            ArmStats.clicks,
            ArmStats.conversions,
        )
        .join(ArmStats, ArmStats.variant_id == Variant.id)
        .where(Variant.campaign_id.in_(list(by_id)), Variant.status != VariantStatus.REJECTED)
        .order_by(Variant.campaign_id, Variant.id)
    ).all()
    arms: dict[int, list[ArmOutcome]] = {cid: [] for cid in by_id}
    for cid, vid, text, impressions, clicks, conversions in rows:
        successes = clicks if by_id[cid].reward == "click" else conversions
        hits = successes_within(successes, impressions)
        arms[cid].append(ArmOutcome(vid, text, hits, impressions))
    return [
        CampaignEvidence(cid, build_prompt(brief_of(by_id[cid])).messages(), tuple(arms[cid]))
        for cid in by_id
    ]


def evidence_window(
    session: Session, campaign_ids: Sequence[int]
) -> tuple[datetime | None, datetime | None]:
    """First and last ``received_time`` of the events of these campaigns (None when none)."""
    if not campaign_ids:
        return None, None
    first, last = session.execute(
        select(func.min(Event.received_time), func.max(Event.received_time)).where(
            Event.campaign_id.in_(list(campaign_ids))
        )
    ).one()
    return first, last
