"""Rolling a candidate out: it writes variants for its lineage's active campaigns (best-of-N
by the reward model, through the generator); they enter the bandit at once, and the
allocator caps the traffic of a candidate's variants at ``candidate_traffic_cap``.

Promotion and rollback live with the version records, in :mod:`adgen.model.versions`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from adgen.db.models import Campaign, ModelVersion, Variant
from adgen.generator import (
    GenerationJob,
    GenerationResult,
    plan_generation,
    run_generation,
    store_generation,
)
from adgen.vocabulary import VariantStatus

logger = logging.getLogger(__name__)


@dataclass
class Draft:
    """One campaign's variants written by the candidate, not stored yet."""

    job: GenerationJob
    result: GenerationResult
    scores: list[float] | None = None


def plan_rollout(
    session: Session,
    registry: Any,
    candidate: ModelVersion,
    campaigns: Sequence[Campaign],
    keep: int,
    best_of: int,
    seed: int,
    with_reward_model: bool,
) -> list[GenerationJob]:
    """What the candidate writes per campaign: ``best_of`` variants to pick ``keep`` from
    when a reward model ranks them, else ``keep``. ``candidate`` need not be stored yet."""
    n = max(best_of, keep) if with_reward_model else keep
    return [
        plan_generation(session, registry, c, n, version=candidate, rng_seed=seed + c.id)
        for c in campaigns
    ]


def write_rollout(
    registry: Any, jobs: Sequence[GenerationJob], reward_model: Any | None = None
) -> list[Draft]:
    """Generate every job (no database) and score the accepted texts with the reward model."""
    drafts = []
    for job in jobs:
        result = run_generation(registry, job)
        scores = None
        if reward_model is not None and result.accepted:
            texts = [c.text for c in result.accepted]
            scores = [float(x) for x in reward_model.score(texts, [job.brief] * len(texts))]
        drafts.append(Draft(job, result, scores))
    return drafts


def store_rollout(
    session: Session, version_id: int, drafts: Sequence[Draft], keep: int
) -> list[int]:
    """Store the drafts as version ``version_id``'s variants; returns the ids served.

    Scored drafts keep their ``keep`` best-scored variants active and pause the rest (kept,
    not served); unscored ones are all served.
    """
    served: list[int] = []
    for draft in drafts:
        result = store_generation(session, draft.job, draft.result, version_id, draft.scores)
        ids = list(result.variant_ids)
        if draft.scores is not None:
            ranked = sorted(zip(ids, draft.scores, strict=True), key=lambda vs: -vs[1])
            for variant_id, _ in ranked[keep:]:
                session.get_one(Variant, variant_id).status = VariantStatus.PAUSED
            ids = [i for i, _ in ranked[:keep]]
            session.flush()
        served.extend(ids)
        logger.info(
            "candidate v%d: %d variants served for campaign %d (of %d written)",
            version_id,
            len(ids),
            draft.job.campaign_id,
            len(result.variant_ids),
        )
    return served
