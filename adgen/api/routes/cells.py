"""Contextual campaigns: ``GET /v1/campaigns/{id}/cells`` (results per cell, with the
allocator's current split and each cell's SRM test) and ``PATCH`` (admin: the context
attributes a campaign allocates on and its cap on cells, audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from adgen import operations
from adgen.allocator import Allocator
from adgen.api.deps import AdminDep, AllocatorDep, SessionDep, SettingsDep, StateDep
from adgen.api.routes.operator import API_ACTOR
from adgen.api.schemas import (
    MAX_ID,
    CellArmPublic,
    CellPublic,
    CellsPublic,
    CellsUpdate,
    error_responses,
)
from adgen.cell_results import campaign_cells
from adgen.db.campaigns import get_campaign
from adgen.db.models import Campaign
from adgen.errors import NotFoundError
from adgen.settings import Settings

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])
CampaignId = Annotated[int, Path(ge=1, le=MAX_ID, description="campaign id")]


def _probabilities(allocator: Allocator, campaign_id: int, cell: str) -> dict[int, float]:
    try:
        return {a.variant_id: a.probability for a in allocator.arms(campaign_id, cell)}
    except NotFoundError:  # not loaded (yet) or not one of the cells served now
        return {}


def _cells(
    campaign: Campaign, results: list[CellPublic], settings: Settings, allocator: Allocator
) -> CellsPublic:
    try:
        _, strength = allocator.cells(campaign.id)
    except NotFoundError:
        strength = None
    return CellsPublic(
        campaign_id=campaign.id,
        context_attributes=campaign.context_attributes,
        max_cells=campaign.max_cells or settings.max_cells,
        prior_strength=strength,
        cells=results,
    )


@router.get("/{campaign_id}/cells", responses=error_responses(404, 422, 503))
def cells(
    campaign_id: CampaignId, session: SessionDep, settings: SettingsDep, allocator: AllocatorDep
) -> CellsPublic:
    """Results per cell (most impressions first): each variant's impressions, clicks, CTR
    with its exact 95% interval, and the share of the cell's traffic it gets now; the
    cell's sample-ratio-mismatch test."""
    campaign = get_campaign(session, campaign_id)
    out = []
    for c in campaign_cells(session, campaign_id):
        p = _probabilities(allocator, campaign_id, c.cell)
        out.append(CellPublic(
            cell=c.cell, impressions=c.impressions, clicks=c.clicks,
            conversions=c.conversions, ctr=c.ctr,
            srm_p_value=c.srm.p_value if c.srm is not None and c.srm.ready else None,
            srm_flagged=bool(c.srm is not None and c.srm.flagged),
            variants=[
                CellArmPublic(**vars(a), probability=p.get(a.variant_id)) for a in c.arms
            ],
        ))
    return _cells(campaign, out, settings, allocator)


@router.patch(
    "/{campaign_id}/cells", dependencies=[AdminDep],
    responses=error_responses(401, 404, 422, 503),
)
def set_cells(campaign_id: CampaignId, body: CellsUpdate, state: StateDep) -> CellsPublic:
    """Change the context attributes a campaign allocates on and its cap on cells (admin,
    audited); this replica allocates per the change from its next decision."""
    with state.sessions.begin() as session:
        campaign = operations.set_campaign_cells(
            session, campaign_id, API_ACTOR,
            attributes=body.context_attributes, max_cells=body.max_cells, reset=body.reset,
        )
        session.flush()
        answer = _cells(campaign, [], state.settings, state.allocator)
    state.allocator.reload_campaign(campaign_id)
    return answer
