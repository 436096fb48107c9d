"""Storing parsed past tests as ``historical_experiments`` / ``historical_arms``, idempotently.

Evidence is keyed by content: experiments by (source, test id), arms by (experiment, a hash
of group and text); inserts use ON CONFLICT DO NOTHING, so importing the same rows again,
from a renamed copy or a file with more rows, adds only what is new. Historical evidence
never touches the live ``arm_stats``. The caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from adgen.db.models import HistoricalArm, HistoricalExperiment
from adgen.errors import ValidationError
from adgen.history.reader import ArmRow

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
MAX_SOURCE_LEN = 300
#: Source of imports without ``--label``; test ids from different systems need a label each.
DEFAULT_SOURCE = "default"


@dataclass(frozen=True)
class StoreStats:
    """What one import added: new experiments, new arms, and arms that were already there."""

    experiments_new: int
    arms_new: int
    duplicates: int


def source_label(label: str | None = None) -> str:
    """The source recorded for an import: ``label`` if given, else ``DEFAULT_SOURCE`` (the
    file's name plays no part, so a renamed copy is the same evidence)."""
    if label is None:
        return DEFAULT_SOURCE
    label = label.strip()
    if not label or len(label) > MAX_SOURCE_LEN:
        raise ValidationError(f"source label must be 1..{MAX_SOURCE_LEN} characters")
    return label


def arm_key(text: str, group: str | None) -> str:
    """A stable key for an arm within its test: a hash of its group and text."""
    return hashlib.sha256(f"{group or ''}\x1f{text}".encode()).hexdigest()[:32]


def _insert(session: Session, model: type[Any]) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise ValidationError(f"importing history is not supported on {dialect}")


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _experiment_ids(session: Session, source: str, rows: Sequence[ArmRow], locale: str) -> tuple[
    dict[str, int], int
]:
    weeks: dict[str, int | None] = {}
    for row in rows:
        if row.test_id not in weeks:
            weeks[row.test_id] = row.week
        elif row.week is not None:
            current = weeks[row.test_id]
            weeks[row.test_id] = row.week if current is None else min(current, row.week)
    values = [
        {"source": source, "external_id": test, "started_week": week, "locale": locale}
        for test, week in weeks.items()
    ]
    created = 0
    ids: dict[str, int] = {}
    for batch in _batches(values, BATCH_SIZE):
        stmt = (
            _insert(session, HistoricalExperiment)
            .values(list(batch))
            .on_conflict_do_nothing(index_elements=["source", "external_id"])
            .returning(HistoricalExperiment.id)
        )
        created += len(session.execute(stmt).all())
        keys = [v["external_id"] for v in batch]
        found = session.execute(
            select(HistoricalExperiment.external_id, HistoricalExperiment.id).where(
                HistoricalExperiment.source == source, HistoricalExperiment.external_id.in_(keys)
            )
        )
        ids.update({ext: id_ for ext, id_ in found})
    return ids, created


def store_rows(
    session: Session,
    rows: Sequence[ArmRow],
    source: str,
    *,
    locale: str = "en",
    progress: Callable[[int], None] | None = None,
) -> StoreStats:
    """Insert the experiments and arms of ``rows`` under ``source``; existing ones are kept."""
    ids, experiments_new = _experiment_ids(session, source, rows, locale)
    values = []
    for row in rows:
        values.append(
            {
                "experiment_id": ids[row.test_id],
                "arm_key": arm_key(row.text, row.group),
                "text": row.text,
                "group_key": row.group,
                "impressions": row.impressions,
                "clicks": row.clicks,
                "conversions": row.conversions,
            }
        )
    arms_new = 0
    for batch in _batches(values, BATCH_SIZE):
        stmt = (
            _insert(session, HistoricalArm)
            .values(list(batch))
            .on_conflict_do_nothing(index_elements=["experiment_id", "arm_key"])
            .returning(HistoricalArm.id)
        )
        arms_new += len(session.execute(stmt).all())
        if progress is not None:
            progress(len(batch))
    stats = StoreStats(experiments_new, arms_new, len(values) - arms_new)
    logger.info(
        "history import %s: %d new experiments, %d new arms, %d already stored",
        source,
        stats.experiments_new,
        stats.arms_new,
        stats.duplicates,
    )
    return stats
