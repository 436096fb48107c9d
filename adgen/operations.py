"""Operator controls: pause / resume variants and campaigns, per-campaign traffic controls,
the context attributes a campaign allocates on (cells).

Each function changes the database and records an audit row in the caller's transaction;
the caller commits, then calls ``Allocator.reload_campaign`` so that the change holds from
the next allocation on (a paused variant's evidence is kept, it is only no longer served).
In a deployment with several API replicas, the others pick the change up at their next
posterior refresh (``ADGEN_REFRESH_INTERVAL_S``, one second by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from sqlalchemy.orm import Session

from adgen import audit
from adgen.cells import MAX_CELLS_CAP, check_attributes
from adgen.db.campaigns import get_campaign
from adgen.db.models import Campaign, Variant
from adgen.errors import ConflictError, NotFoundError, ValidationError
from adgen.settings import Settings
from adgen.vocabulary import CampaignStatus, VariantStatus


@dataclass(frozen=True)
class TrafficControls:
    """The controls a campaign is served with, its own values or else the settings'."""

    floor: float
    cap: float
    min_exploration: float

    def as_dict(self) -> dict[str, float]:
        """The three values by name."""
        return {"floor": self.floor, "cap": self.cap, "min_exploration": self.min_exploration}


def effective_controls(campaign: Campaign, settings: Settings) -> TrafficControls:
    """``campaign``'s controls, falling back to the settings (see ``resolve_controls``)."""
    return resolve_controls(
        campaign.traffic_floor, campaign.traffic_cap, campaign.min_exploration, settings
    )


def resolve_controls(
    floor: float | None, cap: float | None, min_exploration: float | None, settings: Settings
) -> TrafficControls:
    """Stored controls with the settings in place of NULLs; a floor above the cap (one set
    on the campaign, the other inherited) is lowered to the cap."""
    cap_value = settings.candidate_traffic_cap if cap is None else cap
    floor_value = settings.candidate_traffic_floor if floor is None else floor
    exploration = settings.min_exploration if min_exploration is None else min_exploration
    return TrafficControls(min(floor_value, cap_value), cap_value, exploration)


def _variant(session: Session, variant_id: int) -> Variant:
    variant = session.get(Variant, variant_id)
    if variant is None:
        raise NotFoundError(f"variant {variant_id} does not exist")
    return variant


_Row = TypeVar("_Row", Variant, Campaign)


def _transition(
    session: Session, row: _Row, actor: str, source: StrEnum, want: StrEnum, verb: str
) -> _Row:
    """Move ``row`` (a variant or a campaign) from status ``source`` to ``want`` and audit it
    as ``<kind>.<verb>``; ConflictError when it is not in ``source``."""
    kind = type(row).__name__.lower()
    if row.status != source:
        raise ConflictError(
            f"{kind} {row.id} is {row.status}: only {source} {kind}s can be {want}"
        )
    row.status = want
    audit.record(
        session, actor, f"{kind}.{verb}", kind, row.id, {"status": source}, {"status": want}
    )
    return row


def pause_variant(session: Session, variant_id: int, actor: str) -> Variant:
    """Stop serving an active variant (its evidence is kept); ConflictError otherwise."""
    variant = _variant(session, variant_id)
    return _transition(session, variant, actor, VariantStatus.ACTIVE, VariantStatus.PAUSED, "pause")


def resume_variant(session: Session, variant_id: int, actor: str) -> Variant:
    """Serve a paused variant again; ConflictError when it is not paused."""
    variant = _variant(session, variant_id)
    return _transition(
        session, variant, actor, VariantStatus.PAUSED, VariantStatus.ACTIVE, "resume"
    )


def pause_campaign(session: Session, campaign_id: int, actor: str) -> Campaign:
    """Stop serving every variant of an active campaign; ConflictError otherwise."""
    campaign = get_campaign(session, campaign_id)
    return _transition(
        session, campaign, actor, CampaignStatus.ACTIVE, CampaignStatus.PAUSED, "pause"
    )


def resume_campaign(session: Session, campaign_id: int, actor: str) -> Campaign:
    """Serve a paused campaign again; ConflictError when it is not paused."""
    campaign = get_campaign(session, campaign_id)
    return _transition(
        session, campaign, actor, CampaignStatus.PAUSED, CampaignStatus.ACTIVE, "resume"
    )


def _stored_controls(campaign: Campaign) -> dict[str, float | None]:
    return {
        "floor": campaign.traffic_floor,
        "cap": campaign.traffic_cap,
        "min_exploration": campaign.min_exploration,
    }


def set_campaign_controls(
    session: Session,
    campaign_id: int,
    actor: str,
    *,
    floor: float | None = None,
    cap: float | None = None,
    min_exploration: float | None = None,
    reset: bool = False,
) -> Campaign:
    """Store a campaign's traffic controls (None leaves a value as it is; ``reset`` first
    clears all three, so the settings apply again). ``floor`` and ``cap`` bound the share
    of traffic a candidate model version's variants get together; ``min_exploration`` is
    the share spread evenly over all live variants. ValidationError for values out of
    range or a floor above the cap."""
    campaign = get_campaign(session, campaign_id)
    if floor is not None and not 0.0 <= floor <= 1.0:
        raise ValidationError(f"floor must be in [0, 1], got {floor}")
    if cap is not None and not 0.0 < cap <= 1.0:
        raise ValidationError(f"cap must be in (0, 1], got {cap}")
    if min_exploration is not None and not 0.0 <= min_exploration < 1.0:
        raise ValidationError(f"min_exploration must be in [0, 1), got {min_exploration}")
    before = _stored_controls(campaign)
    new = dict.fromkeys(before) if reset else dict(before)
    for key, value in (("floor", floor), ("cap", cap), ("min_exploration", min_exploration)):
        if value is not None:
            new[key] = value
    if new["floor"] is not None and new["cap"] is not None and new["floor"] > new["cap"]:
        raise ValidationError(f"floor ({new['floor']}) must not exceed cap ({new['cap']})")
    campaign.traffic_floor = new["floor"]
    campaign.traffic_cap = new["cap"]
    campaign.min_exploration = new["min_exploration"]
    audit.record(session, actor, "campaign.controls", "campaign", campaign_id, before, new)
    return campaign


def set_campaign_cells(
    session: Session,
    campaign_id: int,
    actor: str,
    *,
    attributes: Sequence[str] | None = None,
    max_cells: int | None = None,
    reset: bool = False,
) -> Campaign:
    """Store the context attributes a campaign allocates on and its cap on cells (None
    leaves a value as it is; ``reset`` first clears both: not contextual, the setting's
    cap). An empty list of attributes turns contextual allocation off. ValidationError for
    bad names or a cap out of range."""
    campaign = get_campaign(session, campaign_id)
    if max_cells is not None and not 1 <= max_cells <= MAX_CELLS_CAP:
        raise ValidationError(f"max_cells must be in 1..{MAX_CELLS_CAP}, got {max_cells}")
    try:
        names = check_attributes(attributes) if attributes is not None else None
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    before = {"context_attributes": campaign.context_attributes, "max_cells": campaign.max_cells}
    if reset:
        campaign.context_attributes, campaign.max_cells = None, None
    if names is not None:
        campaign.context_attributes = names or None
    if max_cells is not None:
        campaign.max_cells = max_cells
    after = {"context_attributes": campaign.context_attributes, "max_cells": campaign.max_cells}
    audit.record(session, actor, "campaign.cells", "campaign", campaign_id, before, after)
    return campaign
