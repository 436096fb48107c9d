"""Model versions: list them, and the operator's promote / rollback (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from adgen import audit
from adgen.api.deps import AdminDep, AllocatorDep, SessionDep
from adgen.api.routes.operator import API_ACTOR
from adgen.api.schemas import MAX_ID, error_responses
from adgen.db.models import GateDecision
from adgen.model.versions import promote as promote_version
from adgen.model.versions import rollback as rollback_version
from adgen.training.summary import VersionSummary, version_summaries

router = APIRouter(prefix="/v1/models", tags=["models"])

VersionId = Annotated[int, Path(ge=1, le=MAX_ID, description="model version id")]


class DecisionPublic(BaseModel):
    """A promotion or rollback, with the live figures it was taken on."""

    version_id: int
    decision: str
    decided_by: str
    incumbent_version_id: int | None
    prob_better: float | None
    candidate_impressions: int
    candidate_successes: int
    incumbent_impressions: int
    incumbent_successes: int
    details: dict[str, Any]

    @classmethod
    def of(cls, row: GateDecision) -> DecisionPublic:
        """From a ``gate_decisions`` row."""
        return cls(
            version_id=row.candidate_version_id,
            decision=row.decision,
            decided_by=row.decided_by,
            incumbent_version_id=row.incumbent_version_id,
            prob_better=row.prob_better,
            candidate_impressions=row.candidate_impressions,
            candidate_successes=row.candidate_successes,
            incumbent_impressions=row.incumbent_impressions,
            incumbent_successes=row.incumbent_successes,
            details=row.details,
        )


@router.get("")
def list_versions(
    session: SessionDep,
    base_model: Annotated[str | None, Query(description="only this lineage")] = None,
) -> list[VersionSummary]:
    """Every model version, newest first."""
    return version_summaries(session, base_model)


@router.post(
    "/{version_id}/promote", dependencies=[AdminDep], responses=error_responses(401, 404, 409, 503)
)
def promote(version_id: VersionId, session: SessionDep, allocator: AllocatorDep) -> DecisionPublic:
    """Make a candidate (or retired) version active; the previous active one is retired (admin)."""
    row = audit.record_version_change(
        session, API_ACTOR, "model.promote", version_id,
        lambda: promote_version(session, version_id),
    )
    decision = DecisionPublic.of(row)
    allocator.wake()
    return decision


@router.post(
    "/{version_id}/rollback", dependencies=[AdminDep], responses=error_responses(401, 404, 409, 503)
)
def rollback(version_id: VersionId, session: SessionDep, allocator: AllocatorDep) -> DecisionPublic:
    """Roll a version back: its variants are paused and, if it was active, its parent is
    active again; the allocator stops serving the variants at its next refresh (admin)."""
    row = audit.record_version_change(
        session, API_ACTOR, "model.rollback", version_id,
        lambda: rollback_version(session, version_id),
    )
    decision = DecisionPublic.of(row)
    allocator.wake()
    return decision
