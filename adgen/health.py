"""A campaign's health at a glance (red / amber / green, with the reasons), for the console.

Red: the traffic split is broken (sample-ratio mismatch). Amber: an active campaign with no
impression stored for ``NO_TRAFFIC_AFTER``, events arriving late (ingest lag above
``INGEST_LAG_AMBER``), or variants the guardrails refused. Green otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adgen.db.campaigns import get_campaign
from adgen.db.models import Event, Variant
from adgen.srm import campaign_srm
from adgen.vocabulary import CampaignStatus, VariantStatus

#: An active campaign without a stored impression for this long is amber.
NO_TRAFFIC_AFTER = timedelta(hours=1)
#: Events stored this long after they happened (the latest one) make a campaign amber.
INGEST_LAG_AMBER = timedelta(minutes=5)


@dataclass(frozen=True)
class Health:
    """A traffic-light status and why."""

    status: str  # "red", "amber" or "green"
    reasons: list[str] = field(default_factory=list)


def campaign_health(
    session: Session, campaign_id: int, *, now: datetime | None = None
) -> Health:
    """The health of one campaign (NotFoundError for an unknown one)."""
    now = now or datetime.now(UTC)
    campaign = get_campaign(session, campaign_id)
    red: list[str] = []
    amber: list[str] = []
    srm = campaign_srm(session, campaign_id)
    if srm.flagged:
        red.append(f"sample-ratio mismatch (p = {srm.p_value:.2g}): the traffic split is broken")
    latest = session.execute(
        select(func.max(Event.event_time), func.max(Event.received_time)).where(
            Event.campaign_id == campaign_id, Event.type == "impression"
        )
    ).one()
    last_event, last_received = (_aware(t) for t in latest)
    if campaign.status == CampaignStatus.ACTIVE:
        if last_received is None:
            amber.append("no traffic yet")
        elif now - last_received > NO_TRAFFIC_AFTER:
            amber.append(f"no traffic since {last_received:%Y-%m-%d %H:%M} UTC")
    if last_event is not None and last_received is not None:
        lag = last_received - last_event
        if lag > INGEST_LAG_AMBER:
            amber.append(f"ingest lag {lag.total_seconds():.0f} s")
    refused = session.scalar(
        select(func.count(Variant.id)).where(
            Variant.campaign_id == campaign_id, Variant.status == VariantStatus.REJECTED
        )
    )
    if refused:
        amber.append(f"{refused} variant(s) refused by the guardrails")
    if red:
        return Health("red", red + amber)
    return Health("amber", amber) if amber else Health("green", [])


def _aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive UTC datetimes; PostgreSQL aware ones."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
