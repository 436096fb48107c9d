"""Campaigns and their variants: create (admin), read with statistics, add by hand (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from adgen.api.deps import AdminDep, AllocatorDep, SessionDep, SettingsDep
from adgen.api.schemas import (
    MAX_ID,
    CampaignCreate,
    CampaignDetail,
    CampaignPublic,
    VariantPublic,
    VariantsCreate,
)
from adgen.db.campaigns import add_variants, brief_of, create_campaign, get_campaign, list_variants
from adgen.errors import ValidationError
from adgen.guardrails import check, config_from_settings
from adgen.vocabulary import VariantStatus

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])

CampaignId = Annotated[int, Path(ge=1, le=MAX_ID, description="campaign id")]


@router.post("", status_code=201, dependencies=[AdminDep])
def create(body: CampaignCreate, session: SessionDep, allocator: AllocatorDep) -> CampaignPublic:
    """Create a campaign from a brief (admin)."""
    campaign = create_campaign(session, body)
    session.flush()
    session.refresh(campaign)
    allocator.wake()
    return CampaignPublic.model_validate(campaign)


@router.get("/{campaign_id}")
def show(campaign_id: CampaignId, session: SessionDep) -> CampaignDetail:
    """A campaign with its variants, counts, CTR, posterior mean and 95% credible interval."""
    campaign = get_campaign(session, campaign_id)
    return CampaignDetail.of(campaign, list_variants(session, campaign_id))


@router.get("/{campaign_id}/variants")
def variants(
    campaign_id: CampaignId,
    session: SessionDep,
    status: Annotated[VariantStatus | None, Query(description="only this status")] = None,
) -> list[VariantPublic]:
    """A campaign's variants with counts, CTR, posterior mean and 95% credible interval."""
    campaign = get_campaign(session, campaign_id)
    rows = list_variants(session, campaign_id, [status] if status else None)
    return [VariantPublic.of(v, s, campaign.reward) for v, s in rows]


@router.post("/{campaign_id}/variants", status_code=201, dependencies=[AdminDep])
def add(
    campaign_id: CampaignId,
    body: VariantsCreate,
    session: SessionDep,
    settings: SettingsDep,
    allocator: AllocatorDep,
) -> list[VariantPublic]:
    """Add hand-written variants (admin); all pass the guardrails or none is stored."""
    campaign = get_campaign(session, campaign_id)
    brief = brief_of(campaign)
    config = config_from_settings(settings)
    served = [VariantStatus.ACTIVE, VariantStatus.PAUSED]
    existing = [v.text for v, _ in list_variants(session, campaign_id, served)]
    reports, failures = [], []
    for i, text in enumerate(body.texts):
        report = check(text, brief, existing, config)
        if not report.passed:
            failures.append(f"texts[{i}] {text!r}: {', '.join(report.reasons)}")
        reports.append(report.as_dict())
        existing.append(text)
    if failures:
        raise ValidationError("guardrails refused; nothing was stored: " + "; ".join(failures))
    stored = add_variants(session, campaign_id, body.texts, source="manual", reports=reports)
    allocator.wake()
    return [VariantPublic.of(v, None, campaign.reward) for v in stored]
