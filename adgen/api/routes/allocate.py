"""``POST /v1/allocate``: choose a variant, sign a token, log the impression to Kafka."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from adgen.api.deps import app_state
from adgen.api.event_ids import event_id_for
from adgen.api.schemas import AllocateRequest, AllocateResponse
from adgen.events import Event
from adgen.tokens import TokenClaims

router = APIRouter(prefix="/v1", tags=["allocation"])


@router.post(
    "/allocate",
    response_model=AllocateResponse,
    responses={503: {"description": "No posteriors yet, or the event spool is full (the "
                                    "broker has not taken events for a long time)."}},
)
async def allocate(body: AllocateRequest, request: Request) -> JSONResponse:
    """Choose a variant for one impression; the impression event is queued, not awaited.

    The hot path: state is read without dependency solving and the response is built as
    a plain JSON object (documented by ``AllocateResponse``) rather than validated again.
    """
    state = app_state(request)
    shipper = state.require_shipper()
    chosen = state.allocator.allocate(body.campaign_id, body.context)
    now = time.time()
    expires_at = int(now) + state.settings.token_ttl_s
    token = state.signer.issue(
        TokenClaims(chosen.impression_id, body.campaign_id, chosen.variant_id, expires_at)
    )
    shipper.ship(
        Event(
            type="impression",
            event_id=event_id_for("impression", chosen.impression_id),
            impression_id=chosen.impression_id,
            campaign_id=body.campaign_id,
            variant_id=chosen.variant_id,
            propensity=chosen.propensity,
            value=None,
            event_time=datetime.fromtimestamp(now, UTC),
            snapshot_id=chosen.snapshot_id,
            cell=chosen.cell,
        )
    )
    state.metrics.allocations.inc()  # one impression event each
    return JSONResponse({
        "impression_id": chosen.impression_id,
        "campaign_id": body.campaign_id,
        "variant_id": chosen.variant_id,
        "text": chosen.text,
        "propensity": chosen.propensity,
        "token": token,
        "expires_at": expires_at,
        "cell": chosen.cell,
    })
