"""Store a decoded batch in one transaction: new events, their ``arm_stats``, dead letters.

Idempotent on ``event_id``: events go in with ``INSERT ... ON CONFLICT (event_id) DO
NOTHING RETURNING``, and ``arm_stats`` grows only by the rows that came back, so a
redelivered event changes nothing. On PostgreSQL the batch is first copied (``COPY``) into
a temporary staging table and moved with one ``INSERT ... SELECT``; elsewhere (SQLite) a
multi-row ``INSERT`` does the same. The caller owns the transaction.

A click or conversion whose impression was never stored still counts in ``arm_stats``
(the impression may predate the pipeline or have gone to a dead letter); that is why
``arm_stats.clicks`` may exceed ``impressions`` for a variant with very little traffic.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg2
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from adgen.db.models import ArmStats, DeadLetter, Event, Variant
from adgen.ingest.batch import DecodedBatch, RawMessage, Rejected
from adgen.ingest.retry import REFUSALS
from adgen.ingest.stats import IngestStats

EVENT_COLUMNS = (
    "event_id", "type", "impression_id", "campaign_id", "variant_id",
    "propensity", "value", "event_time", "kafka_partition", "kafka_offset",
)
#: ``(variant_id, type, value)`` of each event actually inserted.
Inserted = Sequence[Sequence[Any]]
_STAGE = "adgen_ingest_stage"
_CREATE_STAGE = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (
    event_id varchar(64), type varchar(16), impression_id varchar(64), campaign_id integer,
    variant_id integer, propensity double precision, value double precision,
    event_time timestamptz, kafka_partition integer, kafka_offset bigint
) ON COMMIT DELETE ROWS
"""
_COLS = ", ".join(EVENT_COLUMNS)
_COPY_STAGE = f"COPY {_STAGE} ({_COLS}) FROM STDIN WITH (FORMAT csv)"
# Empties the stage as it moves the rows, so that savepoints in one transaction
# (``store_each``) each see only their own rows.
_MOVE_STAGE = (
    f"WITH staged AS (DELETE FROM {_STAGE} RETURNING {_COLS}) "
    f"INSERT INTO events ({_COLS}) SELECT {_COLS} FROM staged "
    "ON CONFLICT (event_id) DO NOTHING RETURNING variant_id, type, value"
)

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class VariantDirectory:
    """Which campaign each variant belongs to, cached (variants never change campaign)."""

    campaign_of: dict[int, int] = field(default_factory=dict)

    def resolve(self, session: Session, variant_ids: Iterable[int]) -> None:
        """Look up the variants not cached yet."""
        missing = set(variant_ids) - self.campaign_of.keys()
        if missing:
            rows = session.execute(
                select(Variant.id, Variant.campaign_id).where(Variant.id.in_(missing))
            )
            self.campaign_of.update({vid: cid for vid, cid in rows})

    def check(self, variant_id: int, campaign_id: int) -> str | None:
        """Why an event with these ids cannot be stored, or None when it can."""
        owner = self.campaign_of.get(variant_id)
        if owner is None:
            return f"unknown variant {variant_id}"
        if owner != campaign_id:
            return f"variant {variant_id} belongs to campaign {owner}, not campaign {campaign_id}"
        return None


def store_batch(session: Session, batch: DecodedBatch, directory: VariantDirectory) -> IngestStats:
    """Store ``batch``; returns what happened (inserted, duplicates, dead letters)."""
    directory.resolve(session, (e.variant_id for _, e in batch.events))
    rows: list[tuple[Any, ...]] = []
    rejected = list(batch.rejected)
    for msg, e in batch.events:
        reason = directory.check(e.variant_id, e.campaign_id)
        if reason is not None:
            rejected.append(Rejected(msg, reason))
            continue
        rows.append((
            e.event_id, e.type, e.impression_id, e.campaign_id, e.variant_id,
            e.propensity, e.value, e.event_time, msg.partition, msg.offset,
        ))
    inserted = _insert_events(session, rows) if rows else []
    bump_arm_stats(session, inserted, directory.campaign_of)
    store_dead_letters(session, rejected)
    return IngestStats(
        inserted=len(inserted),
        duplicates=batch.duplicates + len(rows) - len(inserted),
        dead_letters=len(rejected),
    )


def store_each(session: Session, batch: DecodedBatch, directory: VariantDirectory) -> IngestStats:
    """Fallback when the database refused ``batch``: store event by event (savepoints),
    dead-lettering each event the database refuses with its error as the reason."""
    stats = IngestStats(duplicates=batch.duplicates, dead_letters=len(batch.rejected))
    rejected = list(batch.rejected)
    for msg, event in batch.events:
        try:
            with session.begin_nested():
                stats.add(store_batch(session, DecodedBatch(events=[(msg, event)]), directory))
        except REFUSALS as exc:
            reason = str(getattr(exc, "orig", exc)).strip()
            rejected.append(Rejected(msg, f"database refused the event: {reason}"))
            stats.dead_letters += 1
    store_dead_letters(session, rejected)
    return stats


def _upsert_dialect(session: Session) -> Any:
    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite


def _insert_events(session: Session, rows: Sequence[tuple[Any, ...]]) -> Inserted:
    """Insert ``rows`` (EVENT_COLUMNS) unless their event_id is stored; the new ones'
    ``(variant_id, type, value)``."""
    if session.get_bind().dialect.name == "postgresql":
        return _insert_events_copy(session, rows)
    return _insert_events_values(session, rows)


def _insert_events_copy(session: Session, rows: Sequence[tuple[Any, ...]]) -> Inserted:
    conn = session.connection()
    conn.exec_driver_sql(_CREATE_STAGE)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    buf.seek(0)
    dbapi_conn = conn.connection
    cursor = dbapi_conn.cursor()
    try:
        cursor.copy_expert(_COPY_STAGE, buf)
    except psycopg2.Error as exc:  # raw cursor: translate like SQLAlchemy would
        lost = bool(dbapi_conn.dbapi_connection is None or dbapi_conn.dbapi_connection.closed)
        if lost:
            conn.invalidate(exc)
        raise sa_exc.DBAPIError.instance(
            _COPY_STAGE, None, exc, psycopg2.Error, connection_invalidated=lost
        ) from exc
    finally:
        cursor.close()
    return conn.exec_driver_sql(_MOVE_STAGE).all()


def _insert_events_values(session: Session, rows: Sequence[tuple[Any, ...]]) -> Inserted:
    stmt = (
        sqlite.insert(Event)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(Event.variant_id, Event.type, Event.value)
    )
    params = [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in rows]
    return session.execute(stmt, params).all()


def bump_arm_stats(
    session: Session, inserted: Iterable[Sequence[Any]], campaign_of: dict[int, int]
) -> None:
    """Add newly stored events ``(variant_id, type, value)`` to ``arm_stats`` (upsert)."""
    totals: dict[int, list[float]] = {}
    for variant_id, kind, value in inserted:
        t = totals.setdefault(variant_id, [0, 0, 0, 0.0])
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
        {"variant_id": vid, "campaign_id": campaign_of[vid], "impressions": int(t[0]),
         "clicks": int(t[1]), "conversions": int(t[2]), "conversion_value": t[3]}
        for vid, t in sorted(totals.items())  # one lock order, so two consumers never deadlock
    ]
    stmt = _upsert_dialect(session).insert(ArmStats).values(values)
    col = ArmStats.__table__.c
    stmt = stmt.on_conflict_do_update(
        index_elements=["variant_id"],
        set_={
            "impressions": col.impressions + stmt.excluded.impressions,
            "clicks": col.clicks + stmt.excluded.clicks,
            "conversions": col.conversions + stmt.excluded.conversions,
            "conversion_value": col.conversion_value + stmt.excluded.conversion_value,
            "updated_at": func.now(),
        },
    )
    session.execute(stmt)


def store_dead_letters(session: Session, rejected: Sequence[Rejected]) -> None:
    """Keep each rejected message with its reason (once per topic/partition/offset)."""
    if not rejected:
        return
    stmt = _upsert_dialect(session).insert(DeadLetter).on_conflict_do_nothing(
        index_elements=["topic", "kafka_partition", "kafka_offset"]
    )
    session.execute(stmt, [_dead_letter_row(r.message, r.reason) for r in rejected])
    for r in rejected:
        logger.warning("dead letter %s[%d]@%d: %s", r.message.topic, r.message.partition,
                       r.message.offset, r.reason)


def _dead_letter_row(msg: RawMessage, reason: str) -> dict[str, Any]:
    return {
        "topic": msg.topic, "kafka_partition": msg.partition, "kafka_offset": msg.offset,
        "key": msg.key, "payload": msg.value, "reason": reason,
    }
