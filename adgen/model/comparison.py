"""A version's texts against the incumbent's: the evidence the gate and every promotion or
rollback record (the caller owns the transaction).

Successes are clicks or conversions, per the campaign's reward, and never exceed trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import case, select
from sqlalchemy.orm import Session

from adgen.db.models import ArmStats, Campaign, ModelVersion, Variant
from adgen.stats import posterior_mean, successes_within
from adgen.vocabulary import VariantStatus


@dataclass(frozen=True)
class Outcome:
    """Pooled successes out of trials."""

    successes: int
    trials: int


#: Pseudo-impressions of the empirical-Bayes prior on each variant's rate in the gate.
GATE_PRIOR_STRENGTH = 100.0
#: Posterior draws behind the gate's P(better); seeded, so a decision is reproducible.
GATE_DRAWS = 20_000


@dataclass(frozen=True)
class Comparison:
    """A version's variants against the incumbent's, on the same campaigns.

    The question is whether the version *writes better texts*, so each side is the average
    rate of its variants, each variant weighing the same whatever traffic the bandit gave
    it. Pooled impressions would not do: the bandit has long since moved the incumbent's
    traffic onto its best few texts, while a new version's texts are still being explored,
    so pooled rates compare the incumbent's best against the newcomer's average and a new
    version would almost never win. A variant's rate is estimated from all its evidence
    (``arm_stats``) under a Beta prior of ``GATE_PRIOR_STRENGTH`` (m) pseudo-impressions
    centred on the typical rate (the raw rates of all variants compared, each weighing
    n / (n + m)), so that a little-served text counts for about the typical rate, not for
    its noisy raw one. That is why the gate, alone among the readers of the evidence, does
    not use the uniform Beta(1, 1) prior: under it a text shown to a handful of people with
    no click would count for a rate far below every real one and sink its version's
    average. ``arms`` are (successes, trials)
    per variant with at least one impression; ``basis`` says what the version was compared
    with.
    """

    campaigns: list[int]
    candidate_arms: list[tuple[int, int]]
    incumbent_arms: list[tuple[int, int]]
    basis: str
    since: datetime

    @property
    def candidate(self) -> Outcome:
        """The version's pooled evidence."""
        return _pooled(self.candidate_arms)

    @property
    def incumbent(self) -> Outcome:
        """The incumbent's pooled evidence."""
        return _pooled(self.incumbent_arms)

    def _prior(self) -> tuple[float, float]:
        arms = self.candidate_arms + self.incumbent_arms
        centre = 0.5
        if arms:  # each raw rate weighs n / (n + m): a well-served text 1, a barely served ~0
            weights = [n / (n + GATE_PRIOR_STRENGTH) for _, n in arms]
            centre = float(np.average([s / n for s, n in arms], weights=weights))
        centre = min(max(centre, 1e-4), 1 - 1e-4)
        return centre * GATE_PRIOR_STRENGTH, (1 - centre) * GATE_PRIOR_STRENGTH

    @cached_property
    def _draws(self) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
        """Seeded posterior draws of each side's average variant rate (candidate,
        incumbent); None when a side has no served variant."""
        if not self.candidate_arms or not self.incumbent_arms:
            return None
        a0, b0 = self._prior()
        rng = np.random.default_rng(0)
        mine = _mean_draws(self.candidate_arms, a0, b0, rng)
        return mine, _mean_draws(self.incumbent_arms, a0, b0, rng)

    @property
    def prob_better(self) -> float:
        """P(the version's average variant rate > the incumbent's); 0.5 without evidence."""
        if self._draws is None:
            return 0.5
        mine, theirs = self._draws
        return float(np.mean(mine > theirs) + 0.5 * np.mean(mine == theirs))

    @property
    def expected_loss(self) -> tuple[float, float]:
        """Expected loss of each choice, relative to the incumbent's average rate:
        (promoting: E[max(incumbent - version, 0)], rolling back: E[max(version -
        incumbent, 0)]), each over E[incumbent]. The rate a wrong choice gives up, weighted
        by how likely it is wrong: a near tie costs little either way, so both shrink as
        the evidence grows even when P(better) stays near one half. (1, 1) without
        evidence."""
        if self._draws is None:
            return 1.0, 1.0
        mine, theirs = self._draws
        scale = max(float(np.mean(theirs)), 1e-12)
        gap = mine - theirs
        return (
            float(np.mean(np.maximum(-gap, 0.0))) / scale,
            float(np.mean(np.maximum(gap, 0.0))) / scale,
        )

    def means(self) -> tuple[float, float]:
        """Posterior mean of each side's average variant rate (candidate, incumbent)."""
        a0, b0 = self._prior()

        def side(arms: list[tuple[int, int]]) -> float:
            if not arms:
                return a0 / (a0 + b0)
            s, n = np.array(arms, dtype=np.float64).T
            return float(np.mean(posterior_mean(s, n, prior=(a0, b0))))

        return side(self.candidate_arms), side(self.incumbent_arms)

    def details(self) -> dict[str, object]:
        """JSON-ready figures for ``gate_decisions.details``."""
        cand_mean, inc_mean = self.means()
        loss_promote, loss_rollback = self.expected_loss
        return {
            "campaigns": self.campaigns,
            "basis": self.basis,
            "statistic": "average variant rate",
            "since": self.since.isoformat(),
            "candidate_variants": len(self.candidate_arms),
            "incumbent_variants": len(self.incumbent_arms),
            "candidate_mean": round(cand_mean, 6),
            "incumbent_mean": round(inc_mean, 6),
            "expected_loss_of_promoting": round(loss_promote, 6),
            "expected_loss_of_rolling_back": round(loss_rollback, 6),
        }


def _pooled(arms: Sequence[tuple[int, int]]) -> Outcome:
    return Outcome(sum(s for s, _ in arms), sum(n for _, n in arms))


def _mean_draws(
    arms: Sequence[tuple[int, int]], a0: float, b0: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    s = np.array([a for a, _ in arms], dtype=np.float64)[:, None]
    n = np.array([b for _, b in arms], dtype=np.float64)[:, None]
    draws = rng.beta(a0 + s, b0 + n - s, size=(len(arms), GATE_DRAWS))
    return np.asarray(draws.mean(axis=0), dtype=np.float64)


def compare(session: Session, version: ModelVersion, incumbent: ModelVersion | None) -> Comparison:
    """``version``'s variants against ``incumbent``'s, in the campaigns where ``version``
    has variants.

    The basis is, first, the texts the incumbent wrote in the same cycle as ``version``'s
    rollout (``Variant.rollout_of``; basis ``incumbent_rollout``): same age, same reward
    model, same selection, so the question is whether the candidate writes better than the
    incumbent does now. The incumbent's older texts (written before, by older reward models
    or none, or the bandit's long-proven best) would answer another question. Without such
    texts served (a version registered by hand, say), all the incumbent's variants there
    (``incumbent``); where the incumbent has none served either (the campaign's texts were
    written by hand), every other variant there (``other_variants``)."""
    campaigns = candidate_campaigns(session, version.id)
    mine = _arms(session, Variant.model_version_id == version.id, campaigns)
    theirs: list[tuple[int, int]] = []
    basis = "incumbent_rollout"
    if incumbent is not None and incumbent.id != version.id:
        theirs = _arms(
            session,
            (Variant.model_version_id == incumbent.id) & (Variant.rollout_of == version.id),
            campaigns,
        )
        if not theirs:
            theirs, basis = (
                _arms(session, Variant.model_version_id == incumbent.id, campaigns),
                "incumbent",
            )
    if not theirs:
        others = (Variant.model_version_id.is_(None)) | (Variant.model_version_id != version.id)
        theirs, basis = _arms(session, others, campaigns), "other_variants"
    return Comparison(campaigns, mine, theirs, basis, version.created_at)


def candidate_campaigns(session: Session, version_id: int) -> list[int]:
    """Campaigns where ``version_id`` has variants."""
    return list(
        session.scalars(
            select(Variant.campaign_id)
            .where(Variant.model_version_id == version_id)
            .distinct()
            .order_by(Variant.campaign_id)
        )
    )


def _arms(
    session: Session, variant_filter: object, campaign_ids: Sequence[int]
) -> list[tuple[int, int]]:
    """(successes, impressions) of each matching variant in these campaigns that has been
    served; successes are clicks or conversions per the campaign's reward."""
    if not campaign_ids:
        return []
    success = case((Campaign.reward == "click", ArmStats.clicks), else_=ArmStats.conversions)
    rows = session.execute(
        select(success, ArmStats.impressions)
        .join(Variant, Variant.id == ArmStats.variant_id)
        .join(Campaign, Campaign.id == Variant.campaign_id)
        .where(
            Variant.campaign_id.in_(list(campaign_ids)),
            Variant.status != VariantStatus.REJECTED,
            ArmStats.impressions > 0,
            variant_filter,  # type: ignore[arg-type]
        )
        .order_by(Variant.id)
    ).all()
    return [(successes_within(int(s), int(n)), int(n)) for s, n in rows]
