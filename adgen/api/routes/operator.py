"""The operator's levers (admin): pause / resume variants and campaigns, traffic controls,
and the audit log that records each of them.

Each change commits in its own transaction and then reloads this replica's allocator, so
the next allocation follows it; other API replicas follow at their next posterior refresh
(``ADGEN_REFRESH_INTERVAL_S``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session

from adgen import audit, operations
from adgen.api.deps import AdminDep, SessionDep, StateDep
from adgen.api.schemas import (
    MAX_ID,
    AuditPublic,
    CampaignPublic,
    ControlsPublic,
    ControlsUpdate,
    VariantPublic,
    error_responses,
)
from adgen.api.state import AppState
from adgen.db.models import ArmStats, Campaign, Variant

router = APIRouter(prefix="/v1", tags=["operator"], dependencies=[AdminDep])

#: Who the audit log names for changes made through the API with the admin token.
API_ACTOR = "admin (api)"
CampaignId = Annotated[int, Path(ge=1, le=MAX_ID, description="campaign id")]
VariantId = Annotated[int, Path(ge=1, le=MAX_ID, description="variant id")]
VariantChange = Callable[[Session, int, str], Variant]
CampaignChange = Callable[[Session, int, str], Campaign]


def _change_variant(state: AppState, change: VariantChange, variant_id: int) -> VariantPublic:
    with state.sessions.begin() as session:
        variant = change(session, variant_id, API_ACTOR)
        stats = session.get(ArmStats, variant.id)
        answer = VariantPublic.of(variant, stats, variant.campaign.reward)
    state.allocator.reload_campaign(answer.campaign_id)
    return answer


def _change_campaign(
    state: AppState, change: CampaignChange, campaign_id: int
) -> CampaignPublic:
    with state.sessions.begin() as session:
        answer = CampaignPublic.model_validate(change(session, campaign_id, API_ACTOR))
    state.allocator.reload_campaign(campaign_id)
    return answer


@router.post("/variants/{variant_id}/pause", responses=error_responses(401, 404, 409, 503))
def pause_variant(variant_id: VariantId, state: StateDep) -> VariantPublic:
    """Stop serving an active variant from the next allocation on; its evidence is kept."""
    return _change_variant(state, operations.pause_variant, variant_id)


@router.post("/variants/{variant_id}/resume", responses=error_responses(401, 404, 409, 503))
def resume_variant(variant_id: VariantId, state: StateDep) -> VariantPublic:
    """Serve a paused variant again, from the next allocation on."""
    return _change_variant(state, operations.resume_variant, variant_id)


@router.post("/campaigns/{campaign_id}/pause", responses=error_responses(401, 404, 409, 503))
def pause_campaign(campaign_id: CampaignId, state: StateDep) -> CampaignPublic:
    """Stop serving an active campaign (allocations answer 409 until it is resumed)."""
    return _change_campaign(state, operations.pause_campaign, campaign_id)


@router.post("/campaigns/{campaign_id}/resume", responses=error_responses(401, 404, 409, 503))
def resume_campaign(campaign_id: CampaignId, state: StateDep) -> CampaignPublic:
    """Serve a paused campaign again."""
    return _change_campaign(state, operations.resume_campaign, campaign_id)


@router.patch("/campaigns/{campaign_id}/controls", responses=error_responses(401, 404, 422, 503))
def set_controls(campaign_id: CampaignId, body: ControlsUpdate, state: StateDep) -> ControlsPublic:
    """Change a campaign's traffic controls; the answer is what it is now served with."""
    with state.sessions.begin() as session:
        campaign = operations.set_campaign_controls(
            session,
            campaign_id,
            API_ACTOR,
            floor=body.floor,
            cap=body.cap,
            min_exploration=body.min_exploration,
            reset=body.reset,
        )
        served = operations.effective_controls(campaign, state.settings)
    state.allocator.reload_campaign(campaign_id)
    return ControlsPublic(**served.as_dict())


@router.get("/audit", responses=error_responses(401, 503))
def audit_log(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[AuditPublic]:
    """Operator actions, newest first: who, what, when, before and after."""
    return [AuditPublic.model_validate(e) for e in audit.recent(session, limit, offset)]
