"""Reading imported historical evidence back: arms of past tests with their totals."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from adgen.db.models import HistoricalArm, HistoricalExperiment


@dataclass(frozen=True)
class HistoricalEvidence:
    """One arm of a past test: its text, comparison group and totals."""

    experiment_id: int
    group: str | None
    text: str
    impressions: int
    clicks: int
    conversions: int | None
    locale: str
    started_week: int | None

    def successes(self, metric: str = "clicks") -> int:
        """Clicks, or conversions (0 when the file had none) when ``metric`` is 'conversions'."""
        if metric == "conversions":
            return self.conversions or 0
        return self.clicks


def load_historical(session: Session) -> list[HistoricalEvidence]:
    """Arms with impressions of every imported test, test by test."""
    stmt = (
        select(HistoricalArm, HistoricalExperiment)
        .join(HistoricalExperiment, HistoricalArm.experiment_id == HistoricalExperiment.id)
        .where(HistoricalArm.impressions > 0)
        .order_by(HistoricalArm.experiment_id, HistoricalArm.id)
    )
    return [
        HistoricalEvidence(
            experiment_id=arm.experiment_id,
            group=arm.group_key,
            text=arm.text,
            impressions=int(arm.impressions),
            clicks=int(arm.clicks),
            conversions=None if arm.conversions is None else int(arm.conversions),
            locale=exp.locale,
            started_week=exp.started_week,
        )
        for arm, exp in session.execute(stmt).all()
    ]
