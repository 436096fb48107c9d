"""Logged evidence for the training, gate and scheduler tests: variants with events and
arm_stats kept consistent (as the ingest consumer would leave them)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from _fixtures import ACME, ACME_LOSERS, ACME_WINNERS  # bench/_fixtures.py
from sqlalchemy.orm import Session

from adgen.db.campaigns import add_variants, create_campaign
from adgen.db.models import ArmStats, Event, ModelVersion

BRIEF = ACME
#: Headlines with a number or a call to action: these win.
WINNERS = ACME_WINNERS
#: Flat headlines without either: these lose.
LOSERS = ACME_LOSERS


def campaign(session: Session, **changes: object) -> int:
    """A campaign from ``BRIEF`` (with ``changes``); returns its id."""
    return create_campaign(session, BRIEF.model_copy(update=changes)).id


def version(
    session: Session, base_model: str, status: str, parent_id: int | None = None
) -> ModelVersion:
    """A model-version row (no adapter)."""
    row = ModelVersion(
        base_model=base_model, status=status, parent_id=parent_id, hyperparams={}, metrics={}
    )
    session.add(row)
    session.flush()
    session.refresh(row)
    return row


def arms(
    session: Session,
    campaign_id: int,
    outcomes: Sequence[tuple[str, int, int]],
    *,
    version_id: int | None = None,
    at: datetime | None = None,
) -> list[int]:
    """Variants (text, impressions, clicks) with their events and arm_stats; their ids."""
    variants = add_variants(
        session,
        campaign_id,
        [text for text, _, _ in outcomes],
        model_version_id=version_id,
        source="generated" if version_id else "manual",
    )
    ids = [v.id for v in variants]
    for variant_id, (_, impressions, clicks) in zip(ids, outcomes, strict=True):
        log(session, campaign_id, variant_id, impressions, clicks, at=at)
    return ids


def log(
    session: Session,
    campaign_id: int,
    variant_id: int,
    impressions: int,
    clicks: int,
    *,
    at: datetime | None = None,
) -> None:
    """Append impressions and clicks of one variant to events and arm_stats."""
    when = at or datetime.now(UTC)
    rows = []
    for i in range(impressions):
        impression_id = uuid.uuid4().hex
        rows.append(_event("impression", impression_id, campaign_id, variant_id, when, 0.5))
        if i < clicks:
            rows.append(_event("click", impression_id, campaign_id, variant_id, when, None))
    if rows:
        session.execute(sa.insert(Event), rows)
    session.execute(
        sa.update(ArmStats)
        .where(ArmStats.variant_id == variant_id)
        .values(impressions=ArmStats.impressions + impressions, clicks=ArmStats.clicks + clicks)
    )


def _event(
    kind: str,
    impression_id: str,
    campaign_id: int,
    variant_id: int,
    when: datetime,
    propensity: float | None,
) -> dict[str, object]:
    return {
        "event_id": uuid.uuid4().hex,
        "type": kind,
        "impression_id": impression_id,
        "campaign_id": campaign_id,
        "variant_id": variant_id,
        "propensity": propensity,
        "value": None,
        "event_time": when,
    }
