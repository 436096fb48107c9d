"""Liveness, readiness (degraded when posteriors are stale, the database is down or events
wait for the broker), metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from adgen.api.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(state: StateDep) -> JSONResponse:
    """``ready``, ``degraded`` (still serving from older posteriors: 200) or
    ``unavailable`` (cannot allocate at all: 503), with the reasons."""
    allocator = state.allocator
    age = allocator.refresh_age_s
    reasons: list[str] = []
    if allocator.last_error:
        reasons.append(allocator.last_error)
    limit = state.settings.posterior_max_age_s
    if allocator.loaded and age > limit:
        reasons.append(f"posteriors are {age:.1f} s old (limit {limit} s)")
    if not allocator.running:
        reasons.append("the posterior refresher is not running")
    shipper = state.shipper
    body: dict[str, Any] = {
        "posterior_age_s": age if allocator.loaded else None,
        "pending_events": shipper.pending if shipper else None,
        "spooled_events": shipper.spool.records if shipper else None,
        "oldest_unacknowledged_s": shipper.oldest_unacknowledged_age_s() if shipper else None,
        "reasons": reasons,
    }
    if shipper is not None:
        if shipper.spool.records:
            reasons.append(
                f"{shipper.spool.records} event(s) spooled on disk, waiting for the broker"
            )
        waited = body["oldest_unacknowledged_s"]
        if waited > state.settings.unacked_degraded_s:
            reasons.append(f"an event has waited {waited:.1f} s for the broker's acknowledgement")
    if not allocator.loaded or state.shipper is None:
        if state.shipper is None:
            reasons.append("the event producer is not running")
        if not allocator.loaded:
            reasons.append("no posteriors loaded yet")
        return JSONResponse({"status": "unavailable", **body}, status_code=503)
    return JSONResponse({"status": "degraded" if reasons else "ready", **body})


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                     "description": "Prometheus text exposition format."}},
)
def metrics(state: StateDep) -> Response:
    """Prometheus exposition: allocations, events, errors, posterior refresh age, spool."""
    return Response(state.metrics.render(), media_type=state.metrics.content_type)
