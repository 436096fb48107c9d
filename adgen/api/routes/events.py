"""``POST /v1/events``: a click or conversion with its impression token, queued to Kafka."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request

from adgen.api.deps import app_state
from adgen.api.event_ids import event_id_for
from adgen.api.schemas import EventAccepted, EventRequest
from adgen.errors import ValidationError
from adgen.events import Event

router = APIRouter(prefix="/v1", tags=["events"])


@router.post(
    "/events",
    status_code=202,
    responses={503: {"description": "The event spool is full (the broker has not taken "
                                    "events for a long time); nothing was accepted."}},
)
async def record(body: EventRequest, request: Request) -> EventAccepted:
    """Accept a click or conversion (401 for a bad, expired or tampered token; 422 for a
    conversion value above ``ADGEN_MAX_CONVERSION_VALUE``).

    Events go to Kafka only; the ingest consumer stores each ``event_id`` once, and counts
    at most one click and one conversion per impression: later ones (distinct event ids on
    one token) are stored but not counted.
    """
    state = app_state(request)
    limit = state.settings.max_conversion_value
    if body.value is not None and body.value > limit:
        raise ValidationError(
            f"value: {body.value:g} is above the maximum conversion value {limit:g}"
        )
    shipper = state.require_shipper()
    now = time.time()
    claims = state.signer.verify(body.token, now)
    event_id = event_id_for(body.type, claims.impression_id, body.event_id)
    shipper.ship(
        Event(
            type=body.type,
            event_id=event_id,
            impression_id=claims.impression_id,
            campaign_id=claims.campaign_id,
            variant_id=claims.variant_id,
            propensity=None,
            value=body.value,
            event_time=datetime.fromtimestamp(now, UTC),
        )
    )
    state.metrics.events[body.type].inc()
    return EventAccepted(event_id=event_id, type=body.type, impression_id=claims.impression_id)
