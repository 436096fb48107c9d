"""Per-cell totals of contextual campaigns (``cell_stats``), beside ``arm_stats``.

An impression counts for the cell it carries; a click or conversion counts for the cell of
its impression, looked up by ``impression_id`` among stored impressions (this batch's
included: they were inserted first in the same transaction). Events of impressions without
a cell (campaign level, non-contextual campaigns) or whose impression is not stored yet
count only in ``arm_stats``. Idempotent for the same reason ``arm_stats`` is: only events
that were actually inserted are counted. The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from adgen.db.models import CellStats, Event

#: impression ids looked up per query (keeps the IN list bounded)
_LOOKUP_CHUNK = 1000


def impression_cells(session: Session, impression_ids: Iterable[str]) -> dict[str, str]:
    """The cell of each stored impression among ``impression_ids`` that has one."""
    ids = sorted(set(impression_ids))
    cells: dict[str, str] = {}
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[start : start + _LOOKUP_CHUNK]
        cells.update(
            (iid, cell or "")
            for iid, cell in session.execute(
                select(Event.impression_id, Event.cell).where(
                    Event.impression_id.in_(chunk),
                    Event.type == "impression",
                    Event.cell.is_not(None),
                    Event.cell != "",
                )
            )
        )
    return cells


def bump_cell_stats(
    session: Session, inserted: Iterable[Sequence[Any]], campaign_of: dict[int, int]
) -> None:
    """Add newly stored events ``(variant_id, type, value, impression_id, cell)`` to
    ``cell_stats`` (upsert, one lock order)."""
    rows = list(inserted)
    pending = [r for r in rows if r[1] != "impression"]
    lookup = impression_cells(session, (r[3] for r in pending)) if pending else {}
    totals: dict[tuple[int, str], list[float]] = {}
    for variant_id, kind, value, impression_id, cell in rows:
        where = cell if kind == "impression" else lookup.get(impression_id)
        if not where:
            continue
        t = totals.setdefault((variant_id, where), [0, 0, 0, 0.0])
        if kind == "impression":
            t[0] += 1
        elif kind == "click":
            t[1] += 1
        else:
            t[2] += 1
            t[3] += value or 0.0
    if not totals:
        return
    values = [
        {"variant_id": vid, "cell": cell, "campaign_id": campaign_of[vid],
         "impressions": int(t[0]), "clicks": int(t[1]), "conversions": int(t[2]),
         "conversion_value": t[3]}
        for (vid, cell), t in sorted(totals.items())
    ]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(CellStats).values(values)
    col = CellStats.__table__.c
    session.execute(stmt.on_conflict_do_update(
        index_elements=["variant_id", "cell"],
        set_={
            "impressions": col.impressions + stmt.excluded.impressions,
            "clicks": col.clicks + stmt.excluded.clicks,
            "conversions": col.conversions + stmt.excluded.conversions,
            "conversion_value": col.conversion_value + stmt.excluded.conversion_value,
            "updated_at": func.now(),
        },
    ))
