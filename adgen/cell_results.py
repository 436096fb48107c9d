"""Results per cell of a contextual campaign: counts, CTR and its interval per variant,
and the cell's sample-ratio-mismatch test (the figures of :mod:`adgen.stats` and
:mod:`adgen.srm`, so API, CLI and console agree)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from adgen.db.campaigns import get_campaign
from adgen.db.models import CellStats
from adgen.srm import SrmResult, cell_srm
from adgen.stats import conversion_rate, ctr, ctr_interval


@dataclass(frozen=True)
class CellArm:
    """One variant's results in one cell."""

    variant_id: int
    impressions: int
    clicks: int
    conversions: int
    ctr: float | None
    conversion_rate: float | None
    ci95_low: float
    ci95_high: float


@dataclass(frozen=True)
class CellResult:
    """One cell: its totals, its variants and its SRM test (None before any snapshot)."""

    cell: str
    impressions: int
    clicks: int
    conversions: int
    arms: tuple[CellArm, ...]
    srm: SrmResult | None

    @property
    def ctr(self) -> float | None:
        """The cell's clicks / impressions."""
        return ctr(self.clicks, self.impressions)


def campaign_cells(session: Session, campaign_id: int) -> list[CellResult]:
    """Every cell of ``campaign_id`` with results, most impressions first (NotFoundError
    for an unknown campaign)."""
    get_campaign(session, campaign_id)
    rows = session.scalars(
        select(CellStats)
        .where(CellStats.campaign_id == campaign_id)
        .order_by(CellStats.cell, CellStats.variant_id)
    ).all()
    srm = cell_srm(session, campaign_id)
    by_cell: dict[str, list[CellArm]] = {}
    for r in rows:
        lo, hi = ctr_interval(int(r.clicks), int(r.impressions))
        by_cell.setdefault(r.cell, []).append(CellArm(
            r.variant_id, int(r.impressions), int(r.clicks), int(r.conversions),
            ctr(int(r.clicks), int(r.impressions)),
            conversion_rate(int(r.conversions), int(r.impressions)), lo, hi,
        ))
    results = [
        CellResult(
            cell, sum(a.impressions for a in arms), sum(a.clicks for a in arms),
            sum(a.conversions for a in arms), tuple(arms), srm.get(cell),
        )
        for cell, arms in by_cell.items()
    ]
    return sorted(results, key=lambda c: (-c.impressions, c.cell))
