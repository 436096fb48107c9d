"""Kafka → PostgreSQL ingest with the real broker and the real database: exactly-once effect."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from kafka import KafkaAdminClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adgen.brief import Brief
from adgen.bus.producer import EventProducer
from adgen.bus.topics import ensure_topic
from adgen.db.campaigns import add_variants, create_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.events import Event, decode_event, encode_event, make_event, new_event_id
from adgen.ingest.consumer import IngestConsumer
from adgen.settings import Settings

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 1, tzinfo=UTC)


# --- workload ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Ids:
    campaign: int
    variants: list[int]
    other_campaign_variant: int


@dataclass
class Workload:
    """Messages to produce, and what the database must hold afterwards."""

    messages: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    valid: dict[str, Event] = field(default_factory=dict)
    malformed: list[bytes] = field(default_factory=list)
    duplicates: int = 0

    def expected_arm_stats(self) -> dict[int, tuple[int, int, int]]:
        """What counts: per impression that arrived, one impression and at most one click
        and one conversion (held orphans and repeats are stored, not counted)."""
        seen = {e.impression_id for e in self.valid.values() if e.type == "impression"}
        counted = {(e.impression_id, e.type): e.variant_id
                   for e in self.valid.values() if e.impression_id in seen}
        counts: Counter[tuple[int, str]] = Counter(
            (variant, kind) for (_, kind), variant in counted.items()
        )
        variants = {v for v, _ in counts}
        return {
            v: (counts[v, "impression"], counts[v, "click"], counts[v, "conversion"])
            for v in variants
        }


def make_workload(
    ids: Ids, n: int, rng: random.Random, dup_share: float = 0.05, bad_share: float = 0.01
) -> Workload:
    """``n`` messages: valid impressions/clicks/conversions, duplicates, malformed ones."""
    n_bad, n_dup = int(n * bad_share), int(n * dup_share)
    w = Workload()
    valid: list[Event] = []
    while len(valid) < n - n_bad - n_dup:
        imp = new_event_id()
        variant = rng.choice(ids.variants)
        at = T0 + timedelta(seconds=len(valid))
        common = {"impression_id": imp, "campaign_id": ids.campaign, "variant_id": variant}
        valid.append(make_event(type="impression", event_id=new_event_id(), propensity=0.25,
                                event_time=at, **common))
        if rng.random() < 0.2:
            valid.append(make_event(type="click", event_id=new_event_id(), event_time=at,
                                    **common))
            if rng.random() < 0.3:
                valid.append(make_event(type="conversion", event_id=new_event_id(),
                                        value=round(rng.uniform(1, 50), 2), event_time=at,
                                        **common))
    valid = valid[: n - n_bad - n_dup]
    # A second click on one impression (another event id) is stored, not counted.
    valid[-2] = make_event(type="click", event_id=new_event_id(), event_time=T0,
                           impression_id=valid[0].impression_id, campaign_id=ids.campaign,
                           variant_id=valid[0].variant_id)
    # A click whose impression never arrives is stored and held, not counted.
    valid[-1] = make_event(type="click", event_id=new_event_id(), impression_id="orphan",
                           campaign_id=ids.campaign, variant_id=ids.variants[0], event_time=T0)
    w.valid = {e.event_id: e for e in valid}
    messages: list[tuple[bytes | None, bytes]] = [
        (e.impression_id.encode(), encode_event(e)) for e in valid
    ]
    for i in range(n_dup):  # half right next to the original (same batch), half anywhere
        pos = rng.randrange(len(messages))
        messages.insert(pos + 1 if i % 2 else rng.randrange(len(messages)), messages[pos])
    w.duplicates = n_dup
    first = encode_event(valid[0])  # an impression
    bad_kinds: list[Callable[[int], bytes]] = [
        lambda i: b"not json " + str(i).encode(),
        lambda i: first.replace(b'"propensity":0.25', b'"propensity":%d' % (i + 2)),
        lambda i: _foreign(valid[0], event_id=f"bad-{i}", variant_id=999_000 + i),
        lambda i: _foreign(valid[0], event_id=f"bad-{i}", variant_id=ids.other_campaign_variant),
    ]
    for i in range(n_bad):
        payload = bad_kinds[i % len(bad_kinds)](i)
        w.malformed.append(payload)
        messages.insert(rng.randrange(len(messages)), (b"bad", payload))
    w.messages = messages
    return w


def _foreign(template: Event, **changes: object) -> bytes:
    return encode_event(template.model_copy(update=changes))


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    """Valid events through ``EventProducer.send`` (keyed by impression), the rest raw."""
    ensure_topic(bootstrap, topic, 4)
    with EventProducer(bootstrap, topic) as producer:
        for key, value in messages:
            if key == b"bad":
                producer.send_raw(key, value)
            else:
                producer.send(decode_event(value))


# --- checks -----------------------------------------------------------------------------
def assert_database_matches(engine: Engine, w: Workload) -> None:
    """Exactly the distinct valid events; arm_stats equal to the events; every bad message."""
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text("SELECT event_id FROM events"))]
        stats = {
            r[0]: (r[1], r[2], r[3])
            for r in conn.execute(sa.text(
                "SELECT variant_id, impressions, clicks, conversions FROM arm_stats "
                "WHERE impressions + clicks + conversions > 0"))
        }
        recomputed = {
            r[0]: (r[1], r[2], r[3])
            for r in conn.execute(sa.text(
                "SELECT variant_id, "
                "SUM(CASE WHEN type = 'impression' THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN type = 'click' THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN type = 'conversion' THEN 1 ELSE 0 END) "
                "FROM events WHERE count_status = 'counted' GROUP BY variant_id"))
        }
        value = conn.execute(
            sa.text("SELECT COALESCE(SUM(conversion_value), 0) FROM arm_stats")
        ).scalar_one()
        dead = conn.execute(
            sa.text("SELECT payload, reason, kafka_partition, kafka_offset FROM dead_letters")
        ).all()
        split = conn.execute(sa.text(  # keyed by impression: one partition per impression
            "SELECT count(*) FROM (SELECT impression_id FROM events GROUP BY impression_id "
            "HAVING count(DISTINCT kafka_partition) > 1) AS s")).scalar_one()
    assert split == 0
    assert len(ids) == len(set(ids)) == len(w.valid)
    assert set(ids) == set(w.valid)
    assert stats == recomputed == w.expected_arm_stats()
    expected_value = sum(e.value or 0.0 for e in w.valid.values())
    assert value == pytest.approx(expected_value)
    assert Counter(bytes(d.payload) for d in dead) == Counter(w.malformed)
    assert all(d.reason and d.kafka_partition >= 0 and d.kafka_offset >= 0 for d in dead)


def committed_offsets(bootstrap: str, group: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {tp.partition: o.offset for tp, o in offsets.items() if o.offset >= 0}


def all_committed(bootstrap: str, group: str, messages: int) -> bool:
    """True when the group's committed offsets cover all ``messages`` of the topic.

    Offsets in each partition start at 0 and have no gaps here (no transactions), so
    they sum to the message count exactly when every message is committed. (The embedded
    broker's ListOffsets answer is not a reliable end offset, hence this form.)
    """
    return sum(committed_offsets(bootstrap, group).values()) == messages


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def count_events(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one())


# --- fixtures ---------------------------------------------------------------------------
def seed(sessions: sessionmaker[Session]) -> Ids:
    with transaction(sessions) as session:
        brief = Brief(name="shoes", product="running shoes", brand="Acme", audience="runners")
        campaign = create_campaign(session, brief)
        variants = add_variants(session, campaign.id, [f"Headline {i}" for i in range(6)])
        other = create_campaign(session, brief.model_copy(update={"name": "other"}))
        (foreign,) = add_variants(session, other.id, ["Elsewhere"])
        return Ids(campaign.id, [v.id for v in variants], foreign.id)


@pytest.fixture
def ids(pg_sessions: sessionmaker[Session]) -> Ids:
    return seed(pg_sessions)


# --- tests ------------------------------------------------------------------------------
def test_duplicates_and_malformed_messages(
    settings: Settings, pg_engine: Engine, pg_sessions: sessionmaker[Session], ids: Ids
) -> None:
    w = make_workload(ids, 20_000, random.Random(7))
    produce(settings.kafka_bootstrap or "", settings.events_topic, w.messages)

    with IngestConsumer(settings, pg_sessions) as consumer:
        stats = consumer.drain(idle_s=1.5)
    assert stats.messages == 20_000
    assert (stats.inserted, stats.duplicates, stats.dead_letters) == (
        len(w.valid), w.duplicates, len(w.malformed))
    assert_database_matches(pg_engine, w)
    with pg_engine.connect() as conn:
        reasons = [r[0] for r in conn.execute(sa.text("SELECT reason FROM dead_letters"))]
    for expected in ("not valid JSON", "propensity must be in (0, 1]", "unknown variant 999",
                     f"belongs to campaign {ids.campaign + 1}, not campaign {ids.campaign}"):
        assert any(expected in r for r in reasons), expected
    assert all_committed(settings.kafka_bootstrap or "", settings.consumer_group, 20_000)

    # A second group replays the whole topic: nothing changes.
    replay = settings.model_copy(update={"consumer_group": settings.consumer_group + "-replay"})
    with IngestConsumer(replay, pg_sessions) as consumer:
        again = consumer.drain(idle_s=1.5)
    assert (again.messages, again.inserted) == (20_000, 0)
    assert again.duplicates == 20_000 - len(w.malformed)
    assert_database_matches(pg_engine, w)


def _service_env(settings: Settings, tmp_path: Path, batch_size: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADGEN_")}
    env.update({
        "ADGEN_DATABASE_URL": settings.db_url,
        "ADGEN_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "ADGEN_EVENTS_TOPIC": settings.events_topic,
        "ADGEN_CONSUMER_GROUP": settings.consumer_group,
        "ADGEN_INGEST_BATCH_SIZE": str(batch_size),
        "ADGEN_INGEST_MAX_POLL_INTERVAL_MS": str(settings.ingest_max_poll_interval_ms),
        # Short: the restarted member's join waits for the killed one to time out.
        "ADGEN_INGEST_SESSION_TIMEOUT_MS": "4000",
        "ADGEN_VAR_DIR": str(tmp_path / "var"),
    })
    return env


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Child processes started by a test; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_sigkill_mid_stream_then_restart(
    settings: Settings, pg_engine: Engine, ids: Ids, tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    w = make_workload(ids, 10_000, random.Random(11), bad_share=0.0)
    produce(settings.kafka_bootstrap or "", settings.events_topic, w.messages)
    env = _service_env(settings, tmp_path, batch_size=100)

    first = subprocess.Popen([sys.executable, "-m", "services.ingest"], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes.append(first)
    wait_until(lambda: count_events(pg_engine) >= 1000, 60, "the first consumer to store events")
    assert (tmp_path / "var" / "ingest.heartbeat").is_file()  # what compose's health check reads
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    at_kill = count_events(pg_engine)
    assert 1000 <= at_kill < len(w.valid), "the kill must land in the middle of the stream"

    second = subprocess.Popen([sys.executable, "-m", "adgen.cli.main", "ingest"], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    processes.append(second)
    wait_until(lambda: count_events(pg_engine) == len(w.valid), 90, "the restart to catch up")
    # Everything stored: SIGTERM finishes the batch in hand, commits and exits cleanly.
    wait_until(
        lambda: all_committed(settings.kafka_bootstrap or "", settings.consumer_group,
                              len(w.messages)),
        30, "the restarted consumer to commit every offset",
    )
    second.send_signal(signal.SIGTERM)
    out, _ = second.communicate(timeout=30)
    assert second.returncode == 0, out.decode()
    assert b"ingest summary" in out
    assert_database_matches(pg_engine, w)


def test_two_consumers_split_the_partitions(
    settings: Settings, pg_engine: Engine, pg_sessions: sessionmaker[Session], ids: Ids
) -> None:
    ensure_topic(settings.kafka_bootstrap or "", settings.events_topic, 4)
    stop = threading.Event()
    members = [IngestConsumer(settings, pg_sessions) for _ in range(2)]
    threads = [threading.Thread(target=m.run, args=(stop,), daemon=True) for m in members]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: all(len(m.partitions) == 2 for m in members), 60,
                   "both members to own two partitions")
        owned = [m.partitions for m in members]
        w = make_workload(ids, 20_000, random.Random(5))
        produce(settings.kafka_bootstrap or "", settings.events_topic, w.messages)
        wait_until(lambda: sum(m.stats.messages for m in members) == 20_000, 90,
                   "the group to consume every message")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert owned[0] | owned[1] == {0, 1, 2, 3} and not owned[0] & owned[1]
    assert all(m.stats.inserted > 0 for m in members)
    assert sum(m.stats.inserted for m in members) == len(w.valid)
    assert sum(m.stats.dead_letters for m in members) == len(w.malformed)
    assert_database_matches(pg_engine, w)


def test_database_outage_retries_without_committing(
    settings: Settings, pg_engine: Engine, pg_sessions: sessionmaker[Session], ids: Ids
) -> None:
    w = make_workload(ids, 2_000, random.Random(3))
    produce(settings.kafka_bootstrap or "", settings.events_topic, w.messages)
    consumer = IngestConsumer(settings, pg_sessions)
    result: list[object] = []
    locker = pg_engine.connect()
    lock = locker.begin()
    locker.execute(sa.text("LOCK TABLE arm_stats IN ACCESS EXCLUSIVE MODE"))
    worker = threading.Thread(target=lambda: result.append(consumer.drain(idle_s=1.0)),
                              daemon=True)
    worker.start()
    try:
        # The consumer's transaction waits on the lock; kill its connection, twice.
        for attempt in (1, 2):
            pid: list[int] = []

            def blocked(pid: list[int] = pid) -> bool:
                with pg_engine.connect() as conn:  # a fresh snapshot of pg_stat_activity
                    pid[:] = conn.execute(sa.text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'")).scalars().all()
                return bool(pid)

            wait_until(blocked, 60, "the consumer to wait on the locked table")
            with pg_engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid[0]})

            def retried(a: int = attempt) -> bool:
                return consumer.stats.db_retries >= a

            wait_until(retried, 30, "a retry")
        assert count_events(pg_engine) == 0
        assert committed_offsets(settings.kafka_bootstrap or "", settings.consumer_group) == {}
    finally:
        lock.rollback()
        locker.close()
    worker.join(timeout=60)
    consumer.close()
    assert result, "drain did not finish after the database came back"
    assert consumer.stats.db_retries >= 2
    assert_database_matches(pg_engine, w)
    assert all_committed(settings.kafka_bootstrap or "", settings.consumer_group,
                         len(w.messages))


def test_event_the_database_refuses_becomes_a_dead_letter(
    settings: Settings, pg_engine: Engine, pg_sessions: sessionmaker[Session], ids: Ids
) -> None:
    with pg_engine.begin() as conn:  # a rule the schema does not know about
        conn.execute(sa.text("ALTER TABLE events ADD CONSTRAINT ck_test_refuse "
                             "CHECK (impression_id <> 'refuse-me')"))
    w = make_workload(ids, 300, random.Random(1), dup_share=0.0, bad_share=0.0)
    refused = make_event(type="impression", event_id="refused-1", impression_id="refuse-me",
                         campaign_id=ids.campaign, variant_id=ids.variants[0], propensity=0.5,
                         event_time=T0)
    w.messages.insert(150, (b"refuse-me", encode_event(refused)))
    w.malformed.append(encode_event(refused))
    produce(settings.kafka_bootstrap or "", settings.events_topic, w.messages)

    with IngestConsumer(settings, pg_sessions) as consumer:
        stats = consumer.drain(idle_s=1.0)
    assert (stats.inserted, stats.dead_letters) == (300, 1)
    assert_database_matches(pg_engine, w)
    with pg_engine.connect() as conn:
        reason = conn.execute(sa.text("SELECT reason FROM dead_letters")).scalar_one()
    assert reason.startswith("database refused the event") and "ck_test_refuse" in reason


def test_ingest_into_sqlite(settings: Settings, sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    sessions = session_factory(engine)
    w = make_workload(seed(sessions), 2_000, random.Random(2), dup_share=0.1, bad_share=0.02)
    produce(settings.kafka_bootstrap or "", settings.events_topic, w.messages)
    sqlite_settings = settings.model_copy(update={"database_url": sqlite_url})
    try:
        with IngestConsumer(sqlite_settings, sessions) as consumer:
            first = consumer.drain(idle_s=1.0)
        assert (first.inserted, first.duplicates, first.dead_letters) == (
            len(w.valid), w.duplicates, len(w.malformed))
        assert_database_matches(engine, w)
    finally:
        engine.dispose()
