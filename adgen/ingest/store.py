"""Store a decoded batch in one transaction: new events, their ``arm_stats``, dead letters.

Idempotent on ``event_id``: events go in with ``INSERT ... ON CONFLICT (event_id) DO
NOTHING RETURNING``, and ``arm_stats`` grows only by the rows that came back, so a
redelivered event changes nothing. On PostgreSQL the batch is first copied (``COPY``) into
a temporary staging table and moved with one ``INSERT ... SELECT``; elsewhere (SQLite) a
multi-row ``INSERT`` does the same. The caller owns the transaction.

What counts is decided by ``adgen.ingest.counting``: every new event is stored with its
``count_status`` and only ``counted`` ones reach ``arm_stats``, so one impression adds at
most one click and one conversion, and never a click before its impression (held clicks
wait in the events table, durable; ``expire_held`` dead-letters those whose impression
never came). A conversion above the configured maximum value is a dead letter.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import psycopg2
from sqlalchemy import ARRAY, String, bindparam, func, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from adgen.db.models import ArmStats, DeadLetter, Event, Variant
from adgen.events import MAX_CONVERSION_VALUE, encode_event
from adgen.events import Event as BusEvent
from adgen.ingest.batch import DecodedBatch, RawMessage, Rejected
from adgen.ingest.cells import bump_cell_stats
from adgen.ingest.counting import Candidate, Known, classify
from adgen.ingest.retry import REFUSALS
from adgen.ingest.stats import IngestStats
from adgen.stats import ctr_interval

EVENT_COLUMNS = (
    "event_id", "type", "impression_id", "campaign_id", "variant_id",
    "propensity", "value", "event_time", "kafka_partition", "kafka_offset", "snapshot_id",
    "cell", "count_status",
)
#: ``(variant_id, type, value, impression_id, cell, count_status)`` of each event inserted.
Inserted = Sequence[Sequence[Any]]
#: Most held events one sweep dead-letters (one transaction stays short).
EXPIRE_BATCH = 10_000
_STAGE = "adgen_ingest_stage"
_CREATE_STAGE = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (
    event_id varchar(64), type varchar(16), impression_id varchar(64), campaign_id integer,
    variant_id integer, propensity double precision, value double precision,
    event_time timestamptz, kafka_partition integer, kafka_offset bigint, snapshot_id bigint,
    cell varchar(200), count_status varchar(16)
) ON COMMIT DELETE ROWS
"""
_COLS = ", ".join(EVENT_COLUMNS)
_COPY_STAGE = f"COPY {_STAGE} ({_COLS}) FROM STDIN WITH (FORMAT csv)"
# Empties the stage as it moves the rows, so that savepoints in one transaction
# (``store_each``) each see only their own rows.
_MOVE_STAGE = (
    f"WITH staged AS (DELETE FROM {_STAGE} RETURNING {_COLS}) "
    f"INSERT INTO events ({_COLS}) SELECT {_COLS} FROM staged "
    "ON CONFLICT (event_id) DO NOTHING "
    "RETURNING variant_id, type, value, impression_id, cell, count_status"
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


def store_batch(
    session: Session,
    batch: DecodedBatch,
    directory: VariantDirectory,
    *,
    max_value: float = MAX_CONVERSION_VALUE,
) -> IngestStats:
    """Store ``batch``; returns what happened (inserted, duplicates, dead letters, counting).

    A conversion whose value exceeds ``max_value`` is a dead letter.
    """
    directory.resolve(session, (e.variant_id for _, e in batch.events))
    accepted: list[tuple[RawMessage, BusEvent]] = []
    rejected = list(batch.rejected)
    for msg, e in batch.events:
        reason = directory.check(e.variant_id, e.campaign_id)
        if reason is None and e.value is not None and e.value > max_value:
            reason = (f"conversion value {e.value:g} is above the maximum {max_value:g} "
                      "(ADGEN_MAX_CONVERSION_VALUE)")
        if reason is not None:
            rejected.append(Rejected(msg, reason))
            continue
        accepted.append((msg, e))
    candidates = [
        Candidate(i, e.event_id, e.impression_id, e.type, e.variant_id)
        for i, (_, e) in enumerate(accepted)
    ]
    decisions = classify(candidates, _known(session, {e.impression_id for _, e in accepted}))
    rows: list[tuple[Any, ...]] = []
    for (msg, e), status in zip(accepted, decisions.new, strict=True):
        if status is None:
            continue
        rows.append((
            e.event_id, e.type, e.impression_id, e.campaign_id, e.variant_id,
            e.propensity, e.value, e.event_time, msg.partition, msg.offset, e.snapshot_id,
            e.cell, status,
        ))
    rejected.extend(Rejected(accepted[i][0], why) for i, why in decisions.refused.items())
    inserted = _insert_events(session, rows) if rows else []
    topic = accepted[0][0].topic if accepted else ""
    promoted, orphans = _settle_held(session, decisions.stored, decisions.stored_reasons, topic)
    counted = [r[:5] for r in inserted if r[5] == "counted"] + promoted
    bump_arm_stats(session, counted, directory.campaign_of)
    bump_cell_stats(session, counted, directory.campaign_of)
    store_dead_letters(session, rejected + orphans)
    return IngestStats(
        inserted=len(inserted),
        duplicates=batch.duplicates + len(rows) - len(inserted),
        dead_letters=len(rejected) + len(orphans),
        repeats=sum(1 for r in inserted if r[5] == "repeat"),
        held=sum(1 for r in inserted if r[5] == "held"),
        orphans=len(orphans),
    )


def expire_held(session: Session, grace_s: float, topic: str) -> IngestStats:
    """Dead-letter the held clicks and conversions stored more than ``grace_s`` seconds ago
    whose impression never came (their ``count_status`` becomes ``orphan``); at most
    ``EXPIRE_BATCH`` per call, the rest at the next."""
    cutoff = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, grace_s)
    if session.get_bind().dialect.name != "postgresql":
        cutoff = func.datetime("now", f"-{grace_s} seconds")
    ids = session.scalars(
        select(Event.id)
        .where(Event.count_status == "held", Event.received_time < cutoff)
        .order_by(Event.id)
        .limit(EXPIRE_BATCH)
    ).all()
    reason = (f"its impression never reached ingest within {grace_s:g} s "
              "(ADGEN_INGEST_HOLD_GRACE_S): not counted")
    _, orphans = _settle_held(session, dict.fromkeys(ids, "orphan"), dict.fromkeys(ids, reason),
                              topic)
    store_dead_letters(session, orphans)
    return IngestStats(dead_letters=len(orphans), orphans=len(orphans))


_KNOWN_COLUMNS = (Event.id, Event.event_id, Event.impression_id, Event.type, Event.variant_id,
                  Event.count_status)


def _known(session: Session, impression_ids: set[str]) -> list[Known]:
    """The counted and held events of these impressions, oldest first."""
    if not impression_ids:
        return []
    if session.get_bind().dialect.name == "postgresql":
        ids = bindparam("impression_ids", sorted(impression_ids), type_=ARRAY(String))
        match = Event.impression_id == func.any(ids)
    else:
        match = Event.impression_id.in_(impression_ids)
    rows = session.execute(
        select(*_KNOWN_COLUMNS)
        .where(match, Event.count_status.in_(("counted", "held")))
        .order_by(Event.id)
    )
    return [Known(Candidate(rid, eid, imp, kind, vid), status)
            for rid, eid, imp, kind, vid, status in rows]


def _settle_held(
    session: Session, statuses: dict[int, str], reasons: dict[int, str], topic: str
) -> tuple[list[tuple[Any, ...]], list[Rejected]]:
    """Give held events (by row id) their new status; the newly counted ones'
    ``(variant_id, type, value, impression_id, cell)`` and a dead letter for each orphan."""
    promoted: list[tuple[Any, ...]] = []
    orphans: list[Rejected] = []
    for row_id, status in sorted(statuses.items()):
        row = session.execute(
            update(Event)
            .where(Event.id == row_id, Event.count_status == "held")
            .values(count_status=status)
            .returning(*Event.__table__.c)
        ).one_or_none()
        if row is None:  # settled meanwhile by another consumer
            continue
        if status == "counted":
            promoted.append((row.variant_id, row.type, row.value, row.impression_id, row.cell))
        elif status == "orphan":
            orphans.append(Rejected(_as_message(row, topic), reasons[row_id]))
    return promoted, orphans


def _as_message(row: Any, topic: str) -> RawMessage:
    """A stored event as the message it came from (for its dead letter)."""
    when = row.event_time if row.event_time.tzinfo else row.event_time.replace(tzinfo=UTC)
    event = BusEvent(
        type=row.type, event_id=row.event_id, impression_id=row.impression_id,
        campaign_id=row.campaign_id, variant_id=row.variant_id, value=row.value,
        event_time=when,
    )
    return RawMessage(topic, row.kafka_partition if row.kafka_partition is not None else -1,
                      row.kafka_offset if row.kafka_offset is not None else -row.id,
                      row.impression_id.encode(), encode_event(event))


def store_each(
    session: Session,
    batch: DecodedBatch,
    directory: VariantDirectory,
    *,
    max_value: float = MAX_CONVERSION_VALUE,
) -> IngestStats:
    """Fallback when the database refused ``batch``: store event by event (savepoints),
    dead-lettering each event the database refuses with its error as the reason."""
    stats = IngestStats(duplicates=batch.duplicates, dead_letters=len(batch.rejected))
    rejected = list(batch.rejected)
    for msg, event in batch.events:
        try:
            with session.begin_nested():
                one = DecodedBatch(events=[(msg, event)])
                stats.add(store_batch(session, one, directory, max_value=max_value))
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
    ``(variant_id, type, value, impression_id, cell)``."""
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
        .returning(
            Event.variant_id, Event.type, Event.value, Event.impression_id, Event.cell,
            Event.count_status,
        )
    )
    params = [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in rows]
    return session.execute(stmt, params).all()


def bump_arm_stats(
    session: Session, inserted: Iterable[Sequence[Any]], campaign_of: dict[int, int]
) -> None:
    """Add newly counted events ``(variant_id, type, value, ...)`` to ``arm_stats`` (upsert)."""
    totals: dict[int, list[float]] = {}
    for variant_id, kind, value, *_ in inserted:
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
    ).returning(col.variant_id, col.impressions, col.clicks)
    store_ctr_intervals(session, session.execute(stmt).all())


def store_ctr_intervals(session: Session, counts: Iterable[Sequence[int]]) -> None:
    """Store the CTR interval of each ``(variant_id, impressions, clicks)`` in ``arm_stats``
    (the analyst views read it; SQL cannot compute Beta quantiles)."""
    params = []
    for variant_id, impressions, clicks in counts:
        lo, hi = ctr_interval(int(clicks), int(impressions))
        params.append({"variant_id": variant_id, "ctr_ci95_low": lo, "ctr_ci95_high": hi})
    if params:
        session.execute(update(ArmStats), params)  # bulk UPDATE by primary key


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
