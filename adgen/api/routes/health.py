"""Liveness, readiness (degraded when posteriors are stale or the database is down), metrics."""

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
    body: dict[str, Any] = {
        "posterior_age_s": age if allocator.loaded else None,
        "pending_events": state.shipper.pending if state.shipper else None,
        "reasons": reasons,
    }
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
    """Prometheus exposition: allocations, events, errors, posterior refresh age."""
    return Response(state.metrics.render(), media_type=state.metrics.content_type)
