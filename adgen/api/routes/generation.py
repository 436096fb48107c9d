"""``POST /v1/campaigns/{id}/variants:generate`` (admin): the model writes variants.

The handler is a plain ``def``: FastAPI runs it in its thread pool, so generation (seconds
on a CPU) never blocks the event loop. It reads what it needs in one short transaction,
generates with none open (on SQLite an open write would stall ingest meanwhile), then
stores the variants in another. One ModelRegistry per app holds the loaded models.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from adgen.api.deps import AdminDep, AllocatorDep, SettingsDep, StateDep
from adgen.api.schemas import MAX_ID, Id
from adgen.errors import ModelError
from adgen.generator import generate_and_store
from adgen.model.artifacts import artifact_store
from adgen.model.versions import ModelRegistry

router = APIRouter(prefix="/v1/campaigns", tags=["generation"])

CampaignId = Annotated[int, Path(ge=1, le=MAX_ID, description="campaign id")]
_registry_lock = threading.Lock()


def get_registry(request: Request, settings: SettingsDep, state: StateDep) -> ModelRegistry:
    """The app's model registry (``app.state.model_registry``), created on first use."""
    with _registry_lock:
        registry: ModelRegistry | None = getattr(request.app.state, "model_registry", None)
        if registry is None:
            registry = ModelRegistry(settings, artifact_store(settings, state.sessions))
            request.app.state.model_registry = registry
        return registry


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]


class GenerateRequest(BaseModel):
    """How many variants to write, with which model version and seed."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(8, ge=1, le=64, description="variants to accept")
    version: Id | None = Field(None, description="model version id; default: the active one")
    seed: int | None = Field(
        None, ge=0, le=2**63 - 1, description="sampling seed; default: derived, reproducible"
    )


class GeneratedVariant(BaseModel):
    """A stored, accepted variant."""

    id: int
    text: str
    guardrail_report: dict[str, Any]


class GenerationPublic(BaseModel):
    """What was accepted and stored, and how many candidates were rejected and why."""

    campaign_id: int
    model_version_id: int
    seed: int
    attempts: int
    candidates: int
    acceptance_rate: float
    variants: list[GeneratedVariant]
    rejected: int
    rejections: dict[str, int] = Field(description="rejected candidates per reason code")
    diversity: dict[str, float | int] = Field(
        description="distinct-1, distinct-2, mean pairwise similarity of the accepted variants"
    )


@router.post("/{campaign_id}/variants:generate", dependencies=[AdminDep])
def generate(
    campaign_id: CampaignId,
    state: StateDep,
    registry: RegistryDep,
    allocator: AllocatorDep,
    body: Annotated[GenerateRequest | None, Body()] = None,
) -> GenerationPublic:
    """Write variants for a campaign with the model (admin); accepted ones are served."""
    request = body or GenerateRequest.model_validate({})
    try:
        result = generate_and_store(
            state.sessions, registry, campaign_id, request.n, request.version, request.seed
        )
    except ModelError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    allocator.wake()
    summary = result.as_dict()
    return GenerationPublic(
        campaign_id=campaign_id,
        model_version_id=summary["model_version_id"],
        seed=result.seed,
        attempts=result.attempts,
        candidates=result.candidates,
        acceptance_rate=summary["acceptance_rate"],
        variants=[
            GeneratedVariant(id=vid, text=c.text, guardrail_report=c.stored_report())
            for vid, c in zip(result.variant_ids, result.accepted, strict=True)
        ],
        rejected=len(result.rejected),
        rejections=result.rejections,
        diversity=summary["diversity"],
    )
