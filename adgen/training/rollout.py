"""Version state changes: roll a candidate out, promote, roll back (caller owns the transaction).

* ``roll_out``: the candidate writes variants for its lineage's active campaigns (best-of-N
  by the reward model, through the generator); they enter the bandit at once, and the
  allocator caps the traffic of a candidate's variants at ``candidate_traffic_cap``.
* ``promote``: candidate (or retired) → active; the lineage's previous active → retired
  (its variants keep competing).
* ``rollback``: the version → rolled_back and its variants paused (the allocator drops
  them at its next refresh); when it was the active version, its nearest ancestor that
  was not rolled back becomes active again.

Every promotion and rollback, by the gate or by an operator, is recorded in
``gate_decisions`` with the live figures at that moment.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from adgen.db.models import Campaign, GateDecision, ModelVersion, Variant
from adgen.errors import ConflictError, NotFoundError
from adgen.training.evidence import Comparison, compare

logger = logging.getLogger(__name__)

DECIDERS = ("gate", "operator")


def get_version(session: Session, version_id: int, *, lock: bool = False) -> ModelVersion:
    """Model version ``version_id`` (row-locked on PostgreSQL when ``lock``), or NotFoundError."""
    stmt = select(ModelVersion).where(ModelVersion.id == version_id)
    if lock:
        stmt = stmt.with_for_update()
    version = session.scalars(stmt).first()
    if version is None:
        raise NotFoundError(f"model version {version_id} does not exist")
    return version


def active_of(session: Session, base_model: str, *, lock: bool = False) -> ModelVersion | None:
    """The active version of a lineage."""
    stmt = (
        select(ModelVersion)
        .where(ModelVersion.base_model == base_model, ModelVersion.status == "active")
        .order_by(ModelVersion.id.desc())
    )
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def open_candidates(session: Session, base_model: str | None = None) -> list[ModelVersion]:
    """Candidates still waiting for the gate, oldest first."""
    stmt = select(ModelVersion).where(ModelVersion.status == "candidate").order_by(ModelVersion.id)
    if base_model is not None:
        stmt = stmt.where(ModelVersion.base_model == base_model)
    return list(session.scalars(stmt))


def roll_out(
    session: Session,
    registry: Any,
    candidate: ModelVersion,
    campaigns: Sequence[Campaign],
    keep: int,
    best_of: int,
    seed: int,
    reward_model: Any | None = None,
) -> list[int]:
    """The candidate writes variants for each campaign; returns the ids of those served.

    With a reward model, ``best_of`` variants that pass the guardrails are written, all get
    their ``reward_score``, and all but the ``keep`` best-scored are paused (kept, not
    served). Without one, ``keep`` variants are written and all are served.
    """
    # Imported here: promote / rollback (the API's part of this module) need no model code.
    from adgen.db.campaigns import brief_of
    from adgen.generator import generate_for_campaign

    served: list[int] = []
    n = max(best_of, keep) if reward_model is not None else keep
    for campaign in campaigns:
        result = generate_for_campaign(
            session, registry, campaign, n, version=candidate, rng_seed=seed + campaign.id
        )
        ids = list(result.variant_ids)
        if reward_model is not None and ids:
            variants = [session.get_one(Variant, i) for i in ids]
            brief = brief_of(campaign)
            scores = reward_model.score([v.text for v in variants], [brief] * len(variants))
            ranked = sorted(zip(variants, scores, strict=True), key=lambda vs: -float(vs[1]))
            for rank, (variant, score) in enumerate(ranked):
                variant.reward_score = float(score)
                if rank >= keep:
                    variant.status = "paused"
            ids = [v.id for v, _ in ranked[:keep]]
            session.flush()
        served.extend(ids)
        logger.info(
            "candidate v%d: %d variants served for campaign %d (of %d written)",
            candidate.id,
            len(ids),
            campaign.id,
            len(result.variant_ids),
        )
    return served


def record_decision(
    session: Session,
    version: ModelVersion,
    incumbent: ModelVersion | None,
    decision: str,
    by: str,
    comparison: Comparison,
    **details: Any,
) -> GateDecision:
    """Store one gate or operator decision with its figures."""
    if by not in DECIDERS:
        raise ValueError(f"decided_by must be one of {DECIDERS}, got {by!r}")
    row = GateDecision(
        candidate_version_id=version.id,
        incumbent_version_id=incumbent.id if incumbent is not None else None,
        decision=decision,
        decided_by=by,
        prob_better=comparison.prob_better,
        candidate_impressions=comparison.candidate.trials,
        candidate_successes=comparison.candidate.successes,
        incumbent_impressions=comparison.incumbent.trials,
        incumbent_successes=comparison.incumbent.successes,
        details={**comparison.details(), **details},
    )
    session.add(row)
    session.flush()
    return row


def promote(
    session: Session, version_id: int, by: str = "operator", **details: Any
) -> GateDecision:
    """Make ``version_id`` the active version of its lineage; retire the previous one."""
    version = get_version(session, version_id, lock=True)
    if version.status not in ("candidate", "retired"):
        raise ConflictError(
            f"model version {version_id} is {version.status}; only a candidate or a retired "
            "version can be promoted"
        )
    previous = active_of(session, version.base_model, lock=True)
    comparison = compare(session, version, previous)
    now = datetime.now(UTC)
    if previous is not None:
        previous.status = "retired"
        previous.retired_at = now
    version.status = "active"
    version.promoted_at = now
    version.retired_at = None
    logger.info(
        "v%d promoted by %s (previous active: %s)",
        version.id,
        by,
        f"v{previous.id}" if previous else "none",
    )
    return record_decision(session, version, previous, "promote", by, comparison, **details)


def rollback(
    session: Session, version_id: int, by: str = "operator", **details: Any
) -> GateDecision:
    """Roll ``version_id`` back: pause its variants; reactivate its ancestor if it was active."""
    version = get_version(session, version_id, lock=True)
    if version.status == "rolled_back":
        raise ConflictError(f"model version {version_id} is already rolled back")
    incumbent = active_of(session, version.base_model, lock=True)
    if version.status == "active":
        fallback = _fallback(session, version)
        if fallback is None:
            raise ConflictError(
                f"model version {version_id} is the base of its lineage ({version.base_model}) "
                "and has no ancestor to fall back to"
            )
        fallback.status = "active"
        fallback.retired_at = None
        incumbent = fallback
    comparison = compare(session, version, incumbent)
    version.status = "rolled_back"
    version.retired_at = datetime.now(UTC)
    to_pause = list(
        session.scalars(
            select(Variant.id).where(
                Variant.model_version_id == version.id, Variant.status == "active"
            )
        )
    )
    if to_pause:
        session.execute(
            update(Variant)
            .where(Variant.id.in_(to_pause))
            .values(status="paused")
            .execution_options(synchronize_session="fetch")
        )
    paused = len(to_pause)
    logger.info(
        "v%d rolled back by %s: %d variants paused, active: %s",
        version.id,
        by,
        paused,
        f"v{incumbent.id}" if incumbent else "none",
    )
    return record_decision(
        session, version, incumbent, "rollback", by, comparison, paused_variants=paused, **details
    )


def _fallback(session: Session, version: ModelVersion) -> ModelVersion | None:
    """The nearest ancestor of ``version`` that was not rolled back."""
    parent_id = version.parent_id
    while parent_id is not None:
        parent = get_version(session, parent_id, lock=True)
        if parent.status != "rolled_back":
            return parent
        parent_id = parent.parent_id
    return None
