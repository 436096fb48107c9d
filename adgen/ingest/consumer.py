"""The ingest consumer: a consumer-group member moving events from Kafka into the database.

Each batch, in order: poll → decode and validate → store in ONE transaction (new events,
``arm_stats``, dead letters) → commit its offsets. Offsets are committed only after the
transaction commits, and the insert is idempotent on ``event_id``, so a crash at any point
replays at most the last two batches and changes nothing twice. One writer thread stores
batch k while the caller's thread polls and decodes batch k + 1 (the Kafka client is only
touched by the caller's thread); at most one batch is in flight.

What counts in ``arm_stats`` is decided in ``adgen.ingest.counting`` (one click and one
conversion per impression; clicks wait, durably, for their impression); every
``EXPIRE_INTERVAL_S`` the batch's transaction also dead-letters held events older than
``ADGEN_INGEST_HOLD_GRACE_S`` (an idle consumer runs that sweep on its own).

Failures are classified: a message that can never be stored is a dead letter; a database
error that may pass is retried with backoff, offsets uncommitted; a batch the database
refuses is stored event by event so that only the refused events become dead letters;
anything else is logged and re-raised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from adgen.bus.topics import ensure_topic
from adgen.db.engine import transaction
from adgen.db.migrate import current_revision
from adgen.errors import BusError, ConfigError
from adgen.ingest.batch import DecodedBatch, RawMessage, decode_batch, next_offsets
from adgen.ingest.health import IngestHealth, IngestMetrics
from adgen.ingest.retry import REFUSALS, Backoff, is_transient
from adgen.ingest.stats import IngestStats
from adgen.ingest.store import VariantDirectory, expire_held, store_batch, store_each
from adgen.settings import Settings

logger = logging.getLogger(__name__)

PROGRESS_LOG_INTERVAL_S = 10.0
HEARTBEAT_INTERVAL_S = 5.0
#: How often held clicks and conversions past their grace period are dead-lettered.
EXPIRE_INTERVAL_S = 30.0
COMMIT_TIMEOUT_MS = 30_000
LAG_TIMEOUT_MS = 5_000
#: Touched every few seconds under ADGEN_VAR_DIR while ingest is healthy; docker-compose's
#: health check reads its age (``adgen ingest`` and ``services.ingest`` alike).
HEARTBEAT_NAME = "ingest.heartbeat"


@dataclass(frozen=True, slots=True)
class _InFlight:
    """A batch handed to the writer, with the offsets to commit once it is stored."""

    future: Future[IngestStats | None]
    offsets: dict[tuple[str, int], int]
    messages: int


class IngestConsumer:
    """One member of the ingest consumer group (``settings.consumer_group``).

    ``run(stop)`` consumes until ``stop`` is set (the batch in hand is finished first);
    ``drain(idle_s)`` consumes until nothing new arrives for ``idle_s`` seconds and keeps
    the group membership for the next call; ``close()`` leaves the group.
    """

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        if settings.kafka_bootstrap is None:
            raise ConfigError(
                "ADGEN_KAFKA_BOOTSTRAP is not set: start a broker (`adgen broker`) or point it "
                "at your Kafka cluster (host:port)"
            )
        self.settings = settings
        self.bootstrap = settings.kafka_bootstrap
        self.topic = settings.events_topic
        self.stats = IngestStats()
        self.health = IngestHealth(settings.ingest_stall_s)
        self.metrics = IngestMetrics(self.health, self.stats)
        #: Partitions this member owned at its last poll.
        self.partitions: frozenset[int] = frozenset()
        self._sessions = sessions
        self._backoff = Backoff(settings.ingest_retry_initial_s, settings.ingest_retry_max_s)
        self._directory = VariantDirectory()
        self._pending: dict[tuple[str, int], int] = {}
        # Partitions to read again from the beginning: their log was lost (Kafka would answer
        # OffsetOutOfRange; Tansu answers nothing at all, and ingest would wait for ever).
        self._rewind: set[int] = set()
        self._schema_checked = False
        self._consumer: KafkaConsumer | None = None
        # Lag is measured over a connection of its own: requests sent on the member's
        # connection while its JoinGroup is held by the broker would wait behind it, time
        # out and reset the coordinator, and the member would never finish joining.
        self._probe: KafkaConsumer | None = None
        # One writer thread stores batch k while the caller's thread polls batch k + 1.
        self._writer: ThreadPoolExecutor | None = None
        self._in_flight: _InFlight | None = None
        self._stop = threading.Event()  # the current loop's stop (run's, or drain's own)
        self._closing = threading.Event()
        self._on_batch: Callable[[IngestStats], None] | None = None
        self._stats_lock = threading.Lock()
        self._next_expiry = 0.0  # monotonic time of the next sweep of held events

    # --- lifecycle ---------------------------------------------------------------------
    def _connect(self) -> KafkaConsumer:
        if self._consumer is not None:
            return self._consumer
        if not self._schema_checked:  # once: a rejoin during a database outage must not fail
            self._require_schema()
            self._schema_checked = True
        ensure_topic(self.bootstrap, self.topic, self.settings.topic_partitions)
        session_ms = self.settings.ingest_session_timeout_ms
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=self.settings.consumer_group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self.settings.ingest_batch_size,
                max_poll_interval_ms=self.settings.ingest_max_poll_interval_ms,
                session_timeout_ms=session_ms,
                heartbeat_interval_ms=max(100, session_ms // 3),
                max_partition_fetch_bytes=8 * 1024 * 1024,
            )
        except (KafkaError, OSError) as exc:
            raise BusError(f"cannot connect a consumer to {self.bootstrap}: {exc}") from exc
        consumer.subscribe([self.topic])
        self._closing.clear()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
        logger.info(
            "ingest consumer joining group %s on topic %s at %s",
            self.settings.consumer_group, self.topic, self.bootstrap,
        )
        self._consumer = consumer
        return consumer

    def _require_schema(self) -> None:
        with self._sessions() as session:
            revision = current_revision(session.get_bind())  # type: ignore[arg-type]
        if revision is None:
            raise ConfigError(
                "the database has no adgen schema: run `adgen db upgrade` first"
            )

    def close(self) -> None:
        """Leave the group; a batch still being stored is finished but not committed."""
        self._closing.set()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        self._in_flight = None
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None
            self.partitions = frozenset()
        if self._probe is not None:
            self._probe.close(autocommit=False)
            self._probe = None

    def __enter__(self) -> IngestConsumer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- public loops ------------------------------------------------------------------
    def run(
        self,
        stop: threading.Event,
        on_batch: Callable[[IngestStats], None] | None = None,
        heartbeat_file: Path | None = None,
    ) -> IngestStats:
        """Consume until ``stop`` is set, then leave the group; returns the totals.

        The batch in hand is stored and committed before returning. ``on_batch`` is called
        with the running totals after each stored batch; ``heartbeat_file`` is touched every
        few seconds while ingest is healthy (a container health check reads its age); a
        member that holds lag and commits nothing for ``ingest_stall_s`` stops touching it
        and rejoins the group.
        """
        self._connect()
        self._stop, self._on_batch = stop, on_batch
        last_log = last_beat = 0.0
        if heartbeat_file is not None:
            heartbeat_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            while not stop.is_set():
                self._step()
                now = time.monotonic()
                if now - last_beat >= HEARTBEAT_INTERVAL_S:
                    last_beat = now
                    if self.check_health():
                        if heartbeat_file is not None:
                            heartbeat_file.touch()
                    else:
                        self.rejoin()
                if now - last_log >= PROGRESS_LOG_INTERVAL_S:
                    if last_log:
                        self._log_progress()
                    last_log = now
            self._settle()
        except Exception:
            logger.exception("ingest consumer stopped by an unexpected error")
            raise
        finally:
            self.close()
        self._log_progress()
        return self.stats

    def drain(
        self,
        idle_s: float = 2.0,
        *,
        join_timeout_s: float = 60.0,
        on_batch: Callable[[IngestStats], None] | None = None,
    ) -> IngestStats:
        """Consume until nothing new arrives for ``idle_s`` seconds; returns this call's counts.

        The idle clock starts once this member owns partitions; ``BusError`` when it owns
        none after ``join_timeout_s``. The group membership is kept for the next call
        (``close()`` leaves it). ``on_batch`` is called with the running totals.
        """
        consumer = self._connect()
        self._stop, self._on_batch = threading.Event(), on_batch
        before = replace(self.stats)
        started = time.monotonic()
        last_news: float | None = None
        while True:
            got = self._step()
            now = time.monotonic()
            if got:
                last_news = now
            elif consumer.assignment():
                last_news = last_news or now
                if now - last_news >= idle_s:
                    break
            elif last_news is None and now - started > join_timeout_s:
                raise BusError(
                    f"the ingest consumer owned no partition of {self.topic!r} after "
                    f"{join_timeout_s:.0f} s (group {self.settings.consumer_group!r})"
                )
        self._settle()
        return self.stats.since(before)

    # --- health ------------------------------------------------------------------------
    def _lag_probe(self) -> KafkaConsumer:
        """A consumer that never joins the group: it only reads end and committed offsets."""
        if self._probe is None:
            try:
                self._probe = KafkaConsumer(
                    bootstrap_servers=self.bootstrap,
                    group_id=self.settings.consumer_group,
                    enable_auto_commit=False,
                    client_id="adgen-ingest-lag",
                )
            except (KafkaError, OSError) as exc:
                raise BusError(f"cannot connect a lag probe to {self.bootstrap}: {exc}") from exc
        return self._probe

    def check_health(self) -> bool:
        """Measure lag and assignment (also for ``/metrics``); False when stalled."""
        consumer = self._connect()
        try:
            probe = self._lag_probe()
            partitions = probe.partitions_for_topic(self.topic) or set()
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            ends = probe.end_offsets(tps, timeout_ms=LAG_TIMEOUT_MS) if tps else {}
            committed = {
                tp.partition: probe.committed(tp, timeout_ms=LAG_TIMEOUT_MS) or 0
                for tp in tps
            }
        except (KafkaError, BusError) as exc:
            logger.warning("cannot measure ingest lag (%s); judging on the last measurement",
                           exc)
        else:
            shrunk = self.health.observe(
                committed,
                {tp.partition: offset for tp, offset in ends.items()},
                frozenset(tp.partition for tp in consumer.assignment()),
            )
            if shrunk:
                logger.warning("partitions %s: the log's end went back (the broker lost its "
                               "log?); reading them again from the beginning", shrunk)
                self._rewind.update(shrunk)
            self.metrics.refresh()
        return self.health.judge()

    def rejoin(self) -> None:
        """Leave the group and join again with a new consumer (what was stored is kept)."""
        self._settle()
        self.close()
        self._connect()
        self.health.rejoined()
        logger.info("ingest rejoined group %s", self.settings.consumer_group)

    # --- the pipeline: poll and decode batch k+1 while batch k is being stored -----------
    def _step(self) -> int:
        """Poll and decode a batch, settle the one being stored, hand the new one to the
        writer; the number of messages polled (0 when none)."""
        consumer = self._connect()
        records = consumer.poll(
            timeout_ms=self.settings.ingest_poll_timeout_ms,
            max_records=self.settings.ingest_batch_size,
        )
        self.partitions = frozenset(tp.partition for tp in consumer.assignment())
        if self._rewind & self.partitions:
            for tp in consumer.assignment():
                if tp.partition in self._rewind:
                    consumer.seek_to_beginning(tp)
                    self._rewind.discard(tp.partition)
                    self._pending.pop((tp.topic, tp.partition), None)
                    records.pop(tp, None)  # from the old position: read again from the start
        messages = [
            RawMessage(r.topic, r.partition, r.offset, r.key, r.value)
            for batch in records.values()
            for r in batch
        ]
        batch = decode_batch(messages) if messages else None
        if not self._settle():
            return 0  # stopped during a database outage: the batch just polled is not stored
        if batch is None and time.monotonic() >= self._next_expiry:
            batch = DecodedBatch()  # nothing new: store nothing, but sweep held events
        if batch is not None:
            assert self._writer is not None
            self._in_flight = _InFlight(
                self._writer.submit(self._store_with_retry, batch, self._stop),
                next_offsets(messages),
                len(messages),
            )
        return len(messages)

    def _settle(self) -> bool:
        """Wait for the batch being stored, then commit its offsets (the last step).

        False when it was abandoned (stopped while the database was failing): its offsets
        stay uncommitted and it will be redelivered.
        """
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            return True
        result = in_flight.future.result()  # re-raises what the writer could not handle
        if result is None:
            return False
        self._commit(in_flight.offsets)
        result.messages, result.batches = in_flight.messages, int(in_flight.messages > 0)
        with self._stats_lock:
            self.stats.add(result)
        if self._on_batch is not None and in_flight.messages:  # not after a sweep alone
            self._on_batch(self.stats)
        return True

    def _store_with_retry(self, batch: DecodedBatch, stop: threading.Event) -> IngestStats | None:
        """Store ``batch``, retrying transient database errors; None when stopped meanwhile."""
        attempt = 0
        while True:
            try:
                return self._store(batch)
            except sa_exc.SQLAlchemyError as exc:
                if not is_transient(exc):
                    raise
                attempt += 1
                with self._stats_lock:
                    self.stats.db_retries += 1
                delay = self._backoff.delay(attempt)
                logger.warning(
                    "database error on attempt %d, retrying in %.2f s (offsets not committed): %s",
                    attempt, delay, str(getattr(exc, "orig", exc)).strip(),
                )
                if stop.wait(delay) or self._closing.is_set():
                    logger.warning("stopped while the database was failing; batch left unstored "
                                   "and uncommitted (it will be redelivered)")
                    return None

    def _store(self, batch: DecodedBatch) -> IngestStats:
        max_value = self.settings.max_conversion_value
        try:
            with transaction(self._sessions) as session:
                stats = store_batch(session, batch, self._directory, max_value=max_value)
                stats.add(self._expire_due(session))
                return stats
        except REFUSALS as exc:
            logger.warning("database refused a batch, storing it event by event: %s",
                           str(exc.orig).strip())
        with transaction(self._sessions) as session:
            return store_each(session, batch, self._directory, max_value=max_value)

    def _expire_due(self, session: Session) -> IngestStats:
        """Dead-letter held events past their grace period, at most every few seconds."""
        now = time.monotonic()
        if now < self._next_expiry:
            return IngestStats()
        self._next_expiry = now + min(EXPIRE_INTERVAL_S, self.settings.ingest_hold_grace_s)
        stats = expire_held(session, self.settings.ingest_hold_grace_s, self.topic)
        if stats.orphans:
            logger.warning("%d held clicks/conversions never saw their impression within "
                           "%.0f s: dead-lettered, not counted",
                           stats.orphans, self.settings.ingest_hold_grace_s)
        return stats

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit offsets of stored batches; a failed commit only means a harmless replay."""
        assert self._consumer is not None
        self._pending.update(offsets)
        to_commit = {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
            for (topic, partition), offset in self._pending.items()
        }
        if not to_commit:
            return
        try:
            self._consumer.commit(to_commit, timeout_ms=COMMIT_TIMEOUT_MS)
        except CommitFailedError as exc:
            # The group rebalanced: the new owner resumes from the last commit, and the
            # events stored since then are ignored by their event_id.
            logger.warning("offset commit refused after a rebalance (%s); events will be "
                           "redelivered and skipped as duplicates", exc)
            self._pending.clear()
            with self._stats_lock:
                self.stats.commit_failures += 1
            return
        except KafkaError as exc:
            logger.warning("offset commit failed (%s); retrying with the next batch", exc)
            with self._stats_lock:
                self.stats.commit_failures += 1
            return
        self._pending.clear()

    def _log_progress(self) -> None:
        s = self.stats
        logger.info(
            "ingest: %d messages, %d events stored, %d duplicates, %d dead letters, "
            "%d db retries", s.messages, s.inserted, s.duplicates, s.dead_letters, s.db_retries,
        )
