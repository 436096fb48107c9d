"""Ingest throughput: Kafka → PostgreSQL through the exactly-once path, beside two references.

* full path — ``IngestConsumer`` (poll, decode, validate, idempotent insert, ``arm_stats``,
  offset commit) on the embedded broker, timed from the first stored batch to the last
  (the group join is not counted; the first batch's events are left out of the count);
* naive — the same work one event per transaction (insert + ``arm_stats`` + commit), from
  already-decoded events, on a prefix of the stream;
* COPY — one raw ``COPY`` of the same rows into ``events`` (the ceiling: no Kafka, no
  validation, no idempotency, no ``arm_stats``).

Each runs on an emptied ``events`` table of a throwaway database. Prints a table, then
one JSON line. Usage: ``python bench/ingest.py [--quick] [--seed N] [--events N]``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import random
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from _fixtures import PG_ADMIN_URL, throwaway_database  # bench/_fixtures.py, beside this script
from sqlalchemy import Engine

from adgen.brief import Brief
from adgen.bus.broker import EmbeddedBroker
from adgen.bus.producer import EventProducer
from adgen.bus.topics import ensure_topic
from adgen.cli.output import print_table
from adgen.db.campaigns import add_variants, create_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.events import Event, make_event
from adgen.ingest.consumer import IngestConsumer
from adgen.ingest.stats import IngestStats
from adgen.ingest.store import EVENT_COLUMNS
from adgen.settings import Settings

PARTITIONS = 4
#: What the raw COPY reference writes (count_status keeps its default, counted).
RAW_COLUMNS = [c for c in EVENT_COLUMNS if c != "count_status"]


def make_events(n: int, campaign_id: int, variants: list[int], rng: random.Random) -> list[Event]:
    """Impressions with ~5% clicks and ~1% conversions, reproducible from ``rng``."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events: list[Event] = []
    while len(events) < n:
        imp = f"{rng.getrandbits(128):032x}"
        common = {"impression_id": imp, "campaign_id": campaign_id,
                  "variant_id": rng.choice(variants),
                  "event_time": start + timedelta(milliseconds=len(events))}
        events.append(make_event(type="impression", event_id=f"{rng.getrandbits(128):032x}",
                                 propensity=round(rng.uniform(0.05, 1.0), 4), **common))
        if rng.random() < 0.05:
            events.append(make_event(type="click", event_id=f"{rng.getrandbits(128):032x}",
                                     **common))
            if rng.random() < 0.2:
                events.append(make_event(type="conversion", value=round(rng.uniform(1, 90), 2),
                                         event_id=f"{rng.getrandbits(128):032x}", **common))
    return events[:n]


def reset(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE events"))
        conn.execute(sa.text("UPDATE arm_stats SET impressions = 0, clicks = 0, conversions = 0, "
                             "conversion_value = 0"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE events"))


def check_stored(engine: Engine, events: list[Event]) -> None:
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
        counted = conn.execute(sa.text(
            "SELECT COALESCE(SUM(impressions + clicks + conversions), 0) FROM arm_stats"
        )).scalar_one()
    if not stored == counted == len(events):
        raise SystemExit(f"full path stored {stored} events and counted {counted}, "
                         f"expected {len(events)}")


def full_path(settings: Settings, engine: Engine, total: int) -> tuple[int, float]:
    """Run the consumer until ``total`` messages are stored: (events timed, seconds)."""
    stop = threading.Event()
    marks: list[tuple[float, int]] = []

    def on_batch(stats: IngestStats) -> None:
        marks.append((time.perf_counter(), stats.messages))
        if stats.messages >= total:
            stop.set()

    consumer = IngestConsumer(settings, session_factory(engine))
    worker = threading.Thread(target=consumer.run, args=(stop,), kwargs={"on_batch": on_batch})
    worker.start()
    if not stop.wait(timeout=600):
        stop.set()
        worker.join()
        raise SystemExit(f"the consumer stored only {consumer.stats.messages} of {total}")
    worker.join()
    (t_first, n_first), (t_last, n_last) = marks[0], marks[-1]
    if len(marks) < 2:
        raise SystemExit("everything arrived in one batch: use more --events")
    return n_last - n_first, t_last - t_first


def naive(engine: Engine, events: list[Event]) -> float:
    """One transaction per event: insert (idempotent) + arm_stats update + commit."""
    insert = sa.text(
        "INSERT INTO events (event_id, type, impression_id, campaign_id, variant_id, "
        "propensity, value, event_time) VALUES (:event_id, :type, :impression_id, "
        ":campaign_id, :variant_id, :propensity, :value, :event_time) "
        "ON CONFLICT (event_id) DO NOTHING RETURNING type"
    )
    bump = {
        kind: sa.text(f"UPDATE arm_stats SET {column} = {column} + 1 WHERE variant_id = :v")
        for kind, column in (("impression", "impressions"), ("click", "clicks"),
                             ("conversion", "conversions"))
    }
    started = time.perf_counter()
    for e in events:
        with engine.begin() as conn:
            if conn.execute(insert, e.model_dump()).first() is not None:
                conn.execute(bump[e.type], {"v": e.variant_id})
    return time.perf_counter() - started


def copy_rows(engine: Engine, events: list[Event]) -> float:
    """One COPY of the same rows into ``events``, CSV built from the decoded events."""
    started = time.perf_counter()
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(
        (e.event_id, e.type, e.impression_id, e.campaign_id, e.variant_id, e.propensity,
         e.value, e.event_time, i % PARTITIONS, i, e.snapshot_id, e.cell)
        for i, e in enumerate(events)
    )
    buf.seek(0)
    raw = engine.raw_connection()
    try:
        with closing(raw.cursor()) as cur:
            cur.copy_expert(
                f"COPY events ({', '.join(RAW_COLUMNS)}) FROM STDIN WITH (FORMAT csv)", buf
            )
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 events (a smoke run).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--events", type=int, help="Events through each path (default 200,000).")
    parser.add_argument("--naive-events", type=int, help="Events for the naive reference.")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL,
                        help="A PostgreSQL URL allowed to create databases.")
    args = parser.parse_args()
    n = args.events or (20_000 if args.quick else 200_000)
    n_naive = min(n, args.naive_events or (500 if args.quick else 3000))
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.ERROR)
    rng = random.Random(args.seed)

    with throwaway_database(args.pg_admin_url) as url, EmbeddedBroker() as broker:
        engine = make_engine(url)
        with transaction(session_factory(engine)) as session:
            brief = Brief(name="bench", product="shoes", brand="Acme", audience="runners")
            campaign = create_campaign(session, brief)
            variants = [v.id for v in add_variants(session, campaign.id,
                                                   [f"Headline {i}" for i in range(20)])]
        events = make_events(n, campaign.id, variants, rng)
        settings = Settings(
            database_url=url, kafka_bootstrap=broker.bootstrap, events_topic="bench.events",
            topic_partitions=PARTITIONS, consumer_group="bench", ingest_batch_size=args.batch_size,
            ingest_session_timeout_ms=6000, admin_token="bench", token_secret="bench",
        )
        ensure_topic(broker.bootstrap, settings.events_topic, PARTITIONS)
        started = time.perf_counter()
        with EventProducer(broker.bootstrap, settings.events_topic) as producer:
            for e in events:
                producer.send(e)
        produce_s = time.perf_counter() - started

        timed, full_s = full_path(settings, engine, n)
        check_stored(engine, events)
        reset(engine)
        copy_s = copy_rows(engine, events)
        reset(engine)
        naive_s = naive(engine, events[:n_naive])
        engine.dispose()

    full_eps, copy_eps, naive_eps = timed / full_s, n / copy_s, n_naive / naive_s
    def row(path: str, count: int, seconds: float, ratio: float | None) -> tuple[str, ...]:
        rate = f"{count / seconds:,.0f}"
        share = "–" if ratio is None else f"{ratio:.1%}"
        return (path, f"{count:,}", f"{seconds:.2f}", rate, share)

    print_table(
        f"ingest into PostgreSQL ({n:,} events, batch {args.batch_size}, seed {args.seed})",
        ["path", "events", "seconds", "events/s", "of COPY"],
        [
            row("full path (Kafka → exactly-once)", timed, full_s, full_eps / copy_eps),
            row("naive (one row per transaction)", n_naive, naive_s, naive_eps / copy_eps),
            row("raw COPY (ceiling)", n, copy_s, 1.0),
            row("(producing to the broker)", n, produce_s, None),
        ],
    )
    print(json.dumps({
        "bench": "ingest", "events": n, "seed": args.seed, "batch_size": args.batch_size,
        "full_path_eps": round(full_eps, 1), "naive_eps": round(naive_eps, 1),
        "copy_eps": round(copy_eps, 1), "ratio_to_copy": round(full_eps / copy_eps, 4),
        "ratio_to_naive": round(full_eps / naive_eps, 2), "naive_events": n_naive,
        "produce_eps": round(n / produce_s, 1),
    }))


if __name__ == "__main__":
    main()
