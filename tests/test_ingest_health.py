"""Ingest knows its lag and assignment, reports a stall (heartbeat stops, /metrics says so),
rejoins, and the long-running form serves /metrics and writes the heartbeat."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Engine

from adgen.bus.broker import EmbeddedBroker, free_port
from adgen.bus.producer import EventProducer
from adgen.bus.topics import ensure_topic
from adgen.db.engine import session_factory
from adgen.db.migrate import upgrade
from adgen.events import make_event, new_event_id
from adgen.ingest.consumer import HEARTBEAT_NAME, IngestConsumer
from adgen.ingest.health import IngestHealth
from adgen.ingest.service import run_ingest
from adgen.settings import Settings


def test_lag_that_does_not_move_is_a_stall_and_progress_clears_it() -> None:
    health = IngestHealth(stall_s=10)
    health.observe({0: 5, 1: 0}, {0: 5, 1: 8}, frozenset({0}), now=0)
    assert health.lag == {0: 0, 1: 8} and health.judge(now=9)
    assert health.stuck(now=10) == [1] and not health.judge(now=10)
    health.observe({0: 5, 1: 3}, {0: 5, 1: 9}, frozenset({0, 1}), now=11)  # partition 1 moved
    assert health.judge(now=20)
    health.rejoined(now=25)
    assert health.rejoins == 1 and health.judge(now=34) and not health.judge(now=35)


def test_no_lag_is_never_a_stall() -> None:
    health = IngestHealth(stall_s=1)
    health.observe({0: 7}, {0: 7}, frozenset(), now=0)
    health.observe({0: 9}, {0: 8}, frozenset(), now=5)  # Tansu: the end trails the last record
    assert health.judge(now=1000)


def test_a_log_whose_end_goes_back_was_lost_and_new_messages_unread_are_a_stall() -> None:
    health = IngestHealth(stall_s=10)
    assert health.observe({0: 300}, {0: 300}, frozenset({0}), now=0) == []
    assert health.observe({0: 300}, {0: 2}, frozenset({0}), now=5) == [0]  # broker restarted
    assert health.observe({0: 300}, {0: 40}, frozenset({0}), now=15) == []  # unread since
    assert health.stuck(now=15) == [0]


def _produce(settings: Settings, n: int) -> None:
    bootstrap = settings.kafka_bootstrap or ""
    ensure_topic(bootstrap, settings.events_topic, settings.topic_partitions)
    with EventProducer(bootstrap, settings.events_topic) as producer:
        for _ in range(n):  # unknown variants: every one is a dead letter, which is fine here
            producer.send(make_event(type="impression", event_id=new_event_id(),
                                     impression_id=new_event_id(), campaign_id=1, variant_id=1,
                                     propensity=0.5, event_time=datetime.now(UTC)))


def test_a_member_that_consumes_nothing_reports_unhealthy_and_rejoins(
    settings: Settings, pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    upgrade(pg_engine.url.render_as_string(hide_password=False))
    settings = settings.model_copy(update={"ingest_stall_s": 0.5})
    _produce(settings, 40)
    consumer = IngestConsumer(settings, session_factory(pg_engine))
    try:
        assert consumer.check_health()  # lag seen for the first time: not yet a stall
        # every partition holds lag (Tansu's end offsets count batches, Kafka's records)
        assert len(consumer.health.lag) == 4 and all(consumer.health.lag.values())
        time.sleep(0.6)
        with caplog.at_level(logging.WARNING, logger="adgen.ingest.health"):
            assert not consumer.check_health()  # nothing polled, nothing committed
        assert any("ingest stalled" in r.getMessage() for r in caplog.records)
        assert b"adgen_ingest_healthy 0.0" in _scrape(consumer)
        consumer.rejoin()
        assert consumer.health.rejoins == 1
        with caplog.at_level(logging.WARNING, logger="adgen.ingest.store"):
            consumer.drain(idle_s=1.0)
        assert consumer.check_health() and sum(consumer.health.lag.values()) == 0
        assert any(r.getMessage().startswith("dead letter ") for r in caplog.records)
    finally:
        consumer.close()


def test_health_checks_do_not_keep_a_member_from_joining(
    settings: Settings, pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """With the production group timeouts, lag measured every few seconds must not reset
    the member's join: on the member's own connection the offset requests waited behind
    the JoinGroup the broker held, timed out and reset the coordinator, so a demo's ingest
    never got a partition (this test fails that way without the separate lag probe).

    It runs on a broker of its own: with a 300 s rebalance timeout, a join on the session's
    broker, after every other test's groups and topics, once waited past the deadline (CI,
    2026-12-07; not reproduced since). The join's steps are logged at INFO for the next."""
    upgrade(pg_engine.url.render_as_string(hide_password=False))
    caplog.set_level(logging.INFO, logger="kafka.coordinator")
    caplog.set_level(logging.INFO, logger="adgen.ingest")
    with EmbeddedBroker() as own:
        settings = settings.model_copy(update={
            "kafka_bootstrap": own.bootstrap,
            "ingest_max_poll_interval_ms": 300_000,
            "ingest_session_timeout_ms": 10_000,
        })
        _produce(settings, 20)
        consumer = IngestConsumer(settings, session_factory(pg_engine))
        stop = threading.Event()
        runner = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
        runner.start()  # run() measures lag every few seconds while the member joins
        try:
            deadline = time.monotonic() + 90  # joins in seconds; without the fix, never
            while consumer.stats.messages < 20 and time.monotonic() < deadline:
                time.sleep(0.5)
            # consumed (dead letters: unknown variants); else, which threads were running
            assert consumer.stats.messages == 20, [t.name for t in threading.enumerate()]
            assert consumer.health.healthy
        finally:
            stop.set()
            runner.join(30)
            consumer.close()


def _scrape(consumer: IngestConsumer) -> bytes:
    from prometheus_client import generate_latest

    return generate_latest(consumer.metrics.registry)


def test_the_long_running_ingest_serves_metrics_and_writes_the_heartbeat(
    settings: Settings, pg_engine: Engine
) -> None:
    upgrade(pg_engine.url.render_as_string(hide_password=False))
    port = free_port()
    settings = settings.model_copy(update={"ingest_metrics_port": port})
    _produce(settings, 10)
    stop = threading.Event()
    worker = threading.Thread(target=run_ingest, args=(settings, stop))
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.TransportError:
                text = ""
            if ("adgen_ingest_messages 10.0" in text  # lag is measured every few seconds
                    and "adgen_ingest_assigned_partitions 4.0" in text):
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.2)
        assert 'adgen_ingest_lag{partition="0"} 0.0' in text
        assert (settings.var_dir / HEARTBEAT_NAME).is_file()
    finally:
        stop.set()
        worker.join(30)
