"""Campaigns and their variants: create (admin), list, read with statistics and the SRM check,
add variants by hand (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from adgen.api.deps import AdminDep, AllocatorDep, SessionDep, SettingsDep
from adgen.api.schemas import (
    MAX_ID,
    CampaignCreate,
    CampaignDetail,
    CampaignPublic,
    SrmArmPublic,
    SrmPublic,
    VariantPublic,
    VariantsCreate,
    error_responses,
)
from adgen.db.campaigns import (
    add_variants,
    brief_of,
    create_campaign,
    get_campaign,
    list_campaigns,
    list_variants,
)
from adgen.errors import ValidationError
from adgen.guardrails import check, config_from_settings
from adgen.operations import effective_controls
from adgen.srm import campaign_srm
from adgen.vocabulary import CampaignStatus, VariantStatus

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


@router.get("", responses=error_responses(422, 503))
def list_(
    session: SessionDep,
    status: Annotated[CampaignStatus | None, Query(description="only this status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description="skip this many (by id)")] = 0,
) -> list[CampaignPublic]:
    """Campaigns in id order, filtered by status, one page at a time."""
    rows = list_campaigns(session, status=status, limit=limit, offset=offset)
    return [CampaignPublic.model_validate(c) for c in rows]


@router.get("/{campaign_id}", responses=error_responses(404, 422, 503))
def show(campaign_id: CampaignId, session: SessionDep, settings: SettingsDep) -> CampaignDetail:
    """A campaign with its traffic controls and its variants: counts, CTR, conversion rate,
    posterior mean, 95% credible interval and probability of being best."""
    campaign = get_campaign(session, campaign_id)
    return CampaignDetail.of(
        campaign, list_variants(session, campaign_id), effective_controls(campaign, settings)
    )


@router.get("/{campaign_id}/srm", responses=error_responses(404, 422, 503))
def srm(campaign_id: CampaignId, session: SessionDep) -> SrmPublic:
    """Sample-ratio mismatch: observed impressions per arm against those the served
    probabilities lead to expect; flagged at p < 0.001 once every arm expects >= 5."""
    result = campaign_srm(session, campaign_id)
    return SrmPublic(
        campaign_id=campaign_id,
        chi2=result.chi2,
        df=result.df,
        p_value=result.p_value,
        ready=result.ready,
        flagged=result.flagged,
        arms=[SrmArmPublic(variant_id=a.variant_id, observed=a.observed, expected=a.expected)
              for a in result.arms],
    )


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
