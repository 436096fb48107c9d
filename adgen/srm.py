"""Sample-ratio mismatch: are impressions split the way the allocator said it would split?

A bandit changes its weights, so an arm's expected count is not a fixed share: each
impression carries the id of the allocation snapshot (serving probabilities after
controls) it was drawn under, and E_k = sum over snapshots of impressions x p_k. Pearson's
chi-square over the K arms has K - 1 degrees of freedom; it is flagged at p < 0.001, and
only once every arm expects at least 5 impressions (before that the test is not ready).
Impressions without a snapshot id (served while the database could not store snapshots,
or before this check existed) are left out of both sides. For a contextual campaign the
test also runs per cell (:func:`cell_srm`), since each cell has its own snapshots.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adgen.db.campaigns import get_campaign
from adgen.db.models import AllocationSnapshot, Event

#: Flag a mismatch below this p-value (GrowthBook, Eppo and Statsig use the same).
SRM_P_THRESHOLD = 0.001
#: Every arm must expect at least this many impressions before the test is run.
SRM_MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class SrmArm:
    """One arm's observed and expected impressions."""

    variant_id: int
    observed: int
    expected: float


@dataclass(frozen=True)
class SrmResult:
    """The chi-square test over arms; ``flagged`` only when ``ready``."""

    chi2: float
    df: int
    p_value: float
    ready: bool
    flagged: bool
    arms: tuple[SrmArm, ...] = ()


def srm_test(observed: Sequence[float], expected: Sequence[float]) -> SrmResult:
    """Pearson's chi-square of ``observed`` against ``expected`` counts (same totals)."""
    o = np.asarray(observed, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if o.shape != e.shape or o.ndim != 1:
        raise ValueError(f"observed {o.shape} and expected {e.shape} must be equal-length vectors")
    if np.any(o < 0) or np.any(e < 0) or not np.all(np.isfinite(e)):
        raise ValueError("counts must be finite and >= 0")
    df = max(o.size - 1, 0)
    ready = df > 0 and bool(np.all(e >= SRM_MIN_EXPECTED))
    if not ready:
        return SrmResult(chi2=0.0, df=df, p_value=1.0, ready=False, flagged=False)
    chi2 = float(np.sum((o - e) ** 2 / e))
    p_value = float(scipy_stats.chi2.sf(chi2, df))
    return SrmResult(chi2, df, p_value, ready=True, flagged=p_value < SRM_P_THRESHOLD)


def expected_counts(
    snapshots: Mapping[int, tuple[Sequence[int], Sequence[float]]],
    served: Mapping[tuple[int, int], int],
) -> list[SrmArm]:
    """Observed and expected impressions per arm from ``snapshots`` (id -> variant ids,
    probabilities) and ``served`` ((snapshot id, variant id) -> impressions)."""
    per_snapshot: dict[int, int] = defaultdict(int)
    observed: dict[int, int] = defaultdict(int)
    for (snapshot_id, variant_id), n in served.items():
        if snapshot_id in snapshots:
            per_snapshot[snapshot_id] += n
            observed[variant_id] += n
    expected: dict[int, float] = defaultdict(float)
    for snapshot_id, n in per_snapshot.items():
        variant_ids, probabilities = snapshots[snapshot_id]
        for vid, p in zip(variant_ids, probabilities, strict=True):
            expected[vid] += n * p
    arms = sorted(set(expected) | set(observed))
    return [SrmArm(v, observed.get(v, 0), expected.get(v, 0.0)) for v in arms]


def campaign_srm(session: Session, campaign_id: int) -> SrmResult:
    """The SRM test of one campaign's impressions (NotFoundError for an unknown campaign)."""
    get_campaign(session, campaign_id)
    served_rows = session.execute(
        select(Event.snapshot_id, Event.variant_id, func.count())
        .where(
            Event.campaign_id == campaign_id,
            Event.type == "impression",
            Event.snapshot_id.is_not(None),
        )
        .group_by(Event.snapshot_id, Event.variant_id)
    ).all()
    served = {(int(s or 0), int(v)): int(n) for s, v, n in served_rows}
    return _srm_of(session, campaign_id, served)


def cell_srm(session: Session, campaign_id: int) -> dict[str, SrmResult]:
    """The SRM test of each cell of a campaign ('' is the campaign level): a cell's
    impressions against the snapshots they were drawn from."""
    get_campaign(session, campaign_id)
    rows = session.execute(
        select(Event.cell, Event.snapshot_id, Event.variant_id, func.count())
        .where(
            Event.campaign_id == campaign_id,
            Event.type == "impression",
            Event.snapshot_id.is_not(None),
        )
        .group_by(Event.cell, Event.snapshot_id, Event.variant_id)
    ).all()
    by_cell: dict[str, dict[tuple[int, int], int]] = defaultdict(dict)
    for cell, s, v, n in rows:
        served = by_cell[cell or ""]
        served[(int(s or 0), int(v))] = served.get((int(s or 0), int(v)), 0) + int(n)
    return {cell: _srm_of(session, campaign_id, served) for cell, served in by_cell.items()}


def _srm_of(
    session: Session, campaign_id: int, served: Mapping[tuple[int, int], int]
) -> SrmResult:
    ids = sorted({s for s, _ in served})
    snapshots = {
        row.id: (row.variant_ids, row.probabilities)
        for row in session.scalars(
            select(AllocationSnapshot).where(
                AllocationSnapshot.campaign_id == campaign_id, AllocationSnapshot.id.in_(ids)
            )
        )
    } if ids else {}
    arms = [a for a in expected_counts(snapshots, served) if a.expected > 0 or a.observed > 0]
    result = srm_test([a.observed for a in arms], [a.expected for a in arms])
    return SrmResult(
        result.chi2, result.df, result.p_value, result.ready, result.flagged, tuple(arms)
    )
