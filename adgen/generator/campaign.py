"""Generating a campaign's variants with a model version and storing them."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adgen.db.campaigns import add_variants, brief_of, list_variants
from adgen.db.models import Campaign, ModelVersion, Variant
from adgen.errors import ConflictError
from adgen.generator.candidates import GenerationResult, LoopConfig, generate_variants
from adgen.generator.sampling import SamplingParams
from adgen.model.versions import ModelRegistry
from adgen.vocabulary import VariantStatus

logger = logging.getLogger(__name__)


def default_seed(base_seed: int, campaign_id: int, variants_so_far: int) -> int:
    """A reproducible seed that differs between successive runs for the same campaign."""
    state = np.random.SeedSequence([base_seed, campaign_id, variants_so_far]).generate_state(1)
    return int(state[0])


def generate_for_campaign(
    session: Session,
    registry: ModelRegistry,
    campaign: Campaign,
    n: int,
    version: ModelVersion | int | None = None,
    rng_seed: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> GenerationResult:
    """Write ``n`` variants for ``campaign`` with ``version`` (default: the active version of
    the base model for the campaign's locale) and store them; the caller owns the transaction.
    A version of another base model's lineage is refused with ConflictError.

    Accepted variants are stored ``active`` with the version and their guardrail report.
    Rejected candidates are stored ``rejected`` with their report (never served, kept as an
    audit trail and as negative examples for training); empty ones are not stored. Without
    ``rng_seed`` the seed derives from ``ADGEN_GEN_SEED``, the campaign and how many
    variants it has, so a rerun on the same database reproduces the same texts.
    """
    brief = brief_of(campaign)
    lineage = registry.base_name_for_locale(brief.locale)
    if version is None:
        version = registry.active_version(session, lineage)
    elif isinstance(version, int):
        version = registry.get_version(session, version)
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
    loaded = registry.load(version)
    with loaded.activated() as model:
        result = generate_variants(
            model,
            loaded.tokenizer,
            brief,
            n,
            seed=rng_seed,
            guardrails=registry.guardrails,
            params=SamplingParams.from_settings(registry.settings),
            loop=LoopConfig.from_settings(registry.settings),
            existing=existing,
            progress=progress,
        )
    result.model_version_id = version.id
    stored = add_variants(
        session,
        campaign.id,
        [c.text for c in result.accepted],
        model_version_id=version.id,
        source="generated",
        status=VariantStatus.ACTIVE,
        reports=[c.stored_report() for c in result.accepted],
    )
    result.variant_ids = [v.id for v in stored]
    rejected = [c for c in result.rejected if c.text]
    add_variants(
        session,
        campaign.id,
        [c.text for c in rejected],
        model_version_id=version.id,
        source="generated",
        status=VariantStatus.REJECTED,
        reports=[c.stored_report() for c in rejected],
    )
    logger.info(
        "campaign %d, version %d: %d accepted, %d rejected %s in %d attempts",
        campaign.id,
        version.id,
        len(result.accepted),
        len(result.rejected),
        result.rejections,
        result.attempts,
    )
    return result
