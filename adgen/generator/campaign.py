"""Generating a campaign's variants with a model version and storing them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adgen.brief import Brief
from adgen.db.campaigns import add_variants, brief_of, get_campaign, list_variants
from adgen.db.engine import transaction
from adgen.db.models import Campaign, ModelVersion, Variant
from adgen.errors import ConflictError
from adgen.generator.candidates import GenerationResult, LoopConfig, generate_variants
from adgen.generator.sampling import SamplingParams
from adgen.model.versions import (
    ModelRegistry,
    active_version,
    ensure_base_version,
    get_version,
    lineage_of,
)
from adgen.vocabulary import VariantStatus

logger = logging.getLogger(__name__)


def default_seed(base_seed: int, campaign_id: int, variants_so_far: int) -> int:
    """A reproducible seed that differs between successive runs for the same campaign."""
    state = np.random.SeedSequence([base_seed, campaign_id, variants_so_far]).generate_state(1)
    return int(state[0])


@dataclass
class GenerationJob:
    """What one generation needs, read from the database; running it needs no session."""

    campaign_id: int
    brief: Brief
    version: ModelVersion
    n: int
    seed: int
    existing: list[str] = field(default_factory=list)
    adapter: Path | None = None
    """The version's adapter folder, fetched while planning (None: the bare base)."""


def plan_generation(
    session: Session,
    registry: ModelRegistry,
    campaign: Campaign,
    n: int,
    version: ModelVersion | int | None = None,
    rng_seed: int | None = None,
) -> GenerationJob:
    """Read what generating ``n`` variants for ``campaign`` with ``version`` needs (default:
    the active version of the lineage of the campaign's locale, whose base record is
    created on first use). A version of another lineage is refused with ConflictError.

    Without ``rng_seed`` the seed derives from ``ADGEN_GEN_SEED``, the campaign and how many
    variants it has, so a rerun on the same database reproduces the same texts.
    """
    brief = brief_of(campaign)
    lineage = lineage_of(registry.settings, brief.locale)
    if version is None:
        ensure_base_version(session, lineage)
        version = active_version(session, lineage)
    elif isinstance(version, int):
        version = get_version(session, version)
    if version.base_model != lineage:
        raise ConflictError(
            f"model version {version.id} belongs to the lineage of {version.base_model}, but "
            f"{brief.locale} campaigns are written by {lineage}: pick a version of that lineage"
        )
    served = [VariantStatus.ACTIVE, VariantStatus.PAUSED]
    existing = [v.text for v, _ in list_variants(session, campaign.id, served)]
    if rng_seed is None:
        count = session.scalar(
            select(func.count()).select_from(Variant).where(Variant.campaign_id == campaign.id)
        )
        rng_seed = default_seed(registry.settings.gen_seed, campaign.id, int(count or 0))
    adapter = registry.adapter_folder(version, session)
    return GenerationJob(campaign.id, brief, version, n, rng_seed, existing, adapter)


def run_generation(
    registry: ModelRegistry, job: GenerationJob, progress: Callable[[int], None] | None = None
) -> GenerationResult:
    """Generate ``job`` with the model; touches no database (run it outside transactions)."""
    loaded = registry.load_with(job.version, job.adapter)
    with loaded.activated() as model:
        result = generate_variants(
            model,
            loaded.tokenizer,
            job.brief,
            job.n,
            seed=job.seed,
            guardrails=registry.guardrails,
            params=SamplingParams.from_settings(registry.settings),
            loop=LoopConfig.from_settings(registry.settings),
            existing=job.existing,
            progress=progress,
        )
    result.model_version_id = job.version.id
    return result


def store_generation(
    session: Session,
    job: GenerationJob,
    result: GenerationResult,
    version_id: int | None = None,
    scores: Sequence[float] | None = None,
) -> GenerationResult:
    """Store ``result``: accepted variants ``active`` with their version (``version_id``
    when the job's version had no row yet), guardrail report and ``scores`` (one per
    accepted variant); rejected candidates ``rejected`` with their report (never served,
    kept as an audit trail and as negative examples for training); empty ones not at all."""
    version_id = version_id if version_id is not None else job.version.id
    result.model_version_id = version_id
    stored = add_variants(
        session,
        job.campaign_id,
        [c.text for c in result.accepted],
        model_version_id=version_id,
        source="generated",
        status=VariantStatus.ACTIVE,
        reports=[c.stored_report() for c in result.accepted],
        scores=scores,
    )
    result.variant_ids = [v.id for v in stored]
    rejected = [c for c in result.rejected if c.text]
    add_variants(
        session,
        job.campaign_id,
        [c.text for c in rejected],
        model_version_id=version_id,
        source="generated",
        status=VariantStatus.REJECTED,
        reports=[c.stored_report() for c in rejected],
    )
    logger.info(
        "campaign %d, version %s: %d accepted, %d rejected %s in %d attempts",
        job.campaign_id,
        version_id,
        len(result.accepted),
        len(result.rejected),
        result.rejections,
        result.attempts,
    )
    return result


def generate_and_store(
    sessions: sessionmaker[Session],
    registry: ModelRegistry,
    campaign_id: int,
    n: int,
    version: int | None = None,
    rng_seed: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> GenerationResult:
    """Plan in one short transaction, generate with none open (an open write on SQLite
    would stall ingest for the seconds the model takes), store in another."""
    with transaction(sessions) as session:
        job = plan_generation(
            session, registry, get_campaign(session, campaign_id), n, version, rng_seed
        )
    result = run_generation(registry, job, progress)
    with transaction(sessions) as session:
        return store_generation(session, job, result)


def generate_for_campaign(
    session: Session,
    registry: ModelRegistry,
    campaign: Campaign,
    n: int,
    version: ModelVersion | int | None = None,
    rng_seed: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> GenerationResult:
    """Plan, generate and store in the caller's session (one-off callers and tests; a
    service plans in one short transaction, generates outside, then stores in another)."""
    job = plan_generation(session, registry, campaign, n, version, rng_seed)
    return store_generation(session, job, run_generation(registry, job, progress))
