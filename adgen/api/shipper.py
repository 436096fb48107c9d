"""Hands events to the Kafka producer from a thread of its own; spools what the broker
does not acknowledge.

``KafkaProducer.send`` can block (no metadata, full buffer), so the request path only
appends to a queue; one daemon thread drains it. An event then goes either straight to
the producer, or, while the write-ahead spool (``adgen.bus.spool``) holds anything or
there is no working producer, to the end of the spool, so that order is kept. An event
is remembered until the broker acknowledges it; when its delivery fails, or it waits
longer than ``delivery_timeout_s``, it is spooled and the producer is thrown away (a
kafka-python producer whose idempotent producer id died with a restarted broker stays
in a fatal state for ever). A second thread replays the spool in order, building a new
producer when needed, and lets the spool delete a batch only after the broker
acknowledged all of it. Nothing accepted is dropped: ``ship`` refuses (BusError, the API
answers 503) only when the queue or the spool is at its bound.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import Protocol

from adgen.bus.producer import DeliveryCallback
from adgen.bus.spool import Spool
from adgen.errors import BusError
from adgen.events import Event, encode_event

logger = logging.getLogger(__name__)

_STOP = object()
#: Pause between drains of the queue (events reach the producer at most this late).
BATCH_WAIT_S = 0.005
#: Records sent per replay round; the spool deletes them once all are acknowledged.
REPLAY_BATCH = 1000
#: Waits between attempts to reach a broker that is away.
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.5, 5.0


class Producer(Protocol):
    """What the shipper needs of a producer (``EventProducer``, or a test's stand-in)."""

    def send_raw(
        self, key: bytes | None, value: bytes, on_done: DeliveryCallback | None = None
    ) -> None:
        """Queue an encoded message; ``on_done`` hears whether the broker took it."""

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every queued message is acknowledged; BusError if any was not."""

    def close(self, timeout_s: float | None = 10.0) -> None:
        """Close the connection (``0`` aborts what is unsent)."""


@dataclass(frozen=True, slots=True)
class _Sent:
    key: bytes
    value: bytes
    sent_at: float


class _Acks:
    """Counts the delivery reports of one replay batch."""

    def __init__(self, expected: int) -> None:
        self.expected, self.ok, self.failed = expected, 0, 0
        self.first_error: BaseException | None = None
        self._cond = threading.Condition()

    def __call__(self, exc: BaseException | None) -> None:
        with self._cond:
            if exc is None:
                self.ok += 1
            else:
                self.failed += 1
                self.first_error = self.first_error or exc
            self._cond.notify_all()

    def wait(self, timeout_s: float) -> bool:
        """True when every report came in within ``timeout_s``."""
        with self._cond:
            return self._cond.wait_for(lambda: self.ok + self.failed >= self.expected, timeout_s)


class EventShipper:
    """A queue in front of the producer, a spool behind it, and the threads that move both."""

    def __init__(
        self,
        connect: Callable[[], Producer],
        spool: Spool,
        *,
        producer: Producer | None = None,
        max_pending: int = 100_000,
        delivery_timeout_s: float = 10.0,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.spool = spool
        self.max_pending = max_pending
        self.delivery_timeout_s = delivery_timeout_s
        #: Messages the broker refused or did not acknowledge in time (each was spooled).
        self.delivery_failures = 0
        #: Producers thrown away after a failure.
        self.rebuilds = 0
        #: Events the spool could not write (a failing disk): the only way one is lost.
        self.spool_write_failures = 0
        self._connect = connect
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self._producer = producer
        self._discard_reason: str | None = None
        self._in_flight: OrderedDict[int, _Sent] = OrderedDict()
        self._seq = count()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._drainer = threading.Thread(target=self._drain, name="adgen-shipper", daemon=True)
        self._replayer = threading.Thread(target=self._replay, name="adgen-replay", daemon=True)
        self._drainer.start()
        self._replayer.start()

    # --- the request path ----------------------------------------------------------------
    def ship(self, event: Event) -> None:
        """Queue ``event``; BusError when the queue or the spool is at its bound."""
        if self.spool.full:
            raise BusError(
                f"the event spool is full ({self.spool.size_bytes:,} bytes in "
                f"{self.spool.directory}) and the broker is not taking events; refusing more "
                "until it does"
            )
        if self._queue.qsize() >= self.max_pending:
            raise BusError(
                f"{self.max_pending} events are waiting for the broker; refusing more until "
                "it catches up"
            )
        self._queue.put(event)

    # --- what /readyz and /metrics read --------------------------------------------------
    @property
    def pending(self) -> int:
        """Events queued and not yet handed to the producer (or the spool)."""
        return self._queue.qsize()

    @property
    def unacknowledged(self) -> int:
        """Events with the producer, not yet acknowledged by the broker."""
        return len(self._in_flight)

    def oldest_unacknowledged_age_s(self) -> float:
        """Age of the oldest event not yet acknowledged, in flight or spooled (0 when none)."""
        with self._lock:
            oldest = next(iter(self._in_flight.values()), None)
        in_flight = time.monotonic() - oldest.sent_at if oldest is not None else 0.0
        return max(in_flight, self.spool.oldest_age_s())

    # --- draining ------------------------------------------------------------------------
    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                self._check_deliveries()
                continue
            while True:  # one item out of the queue at a time keeps ``max_pending`` exact
                if item is _STOP:
                    self.spool.sync()
                    return
                if isinstance(item, threading.Event):  # a flush marker: all before it is out
                    self.spool.sync()
                    item.set()
                else:
                    assert isinstance(item, Event)
                    self._dispatch(item.impression_id.encode(), encode_event(item))
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self.spool.sync()
            self._check_deliveries()
            # Under load, let events accumulate for a moment: a request then only appends to
            # the queue, instead of waking this thread (and trading the GIL) once per event.
            time.sleep(BATCH_WAIT_S)

    def _dispatch(self, key: bytes, value: bytes) -> None:
        with self._lock:
            producer = self._producer
            if producer is None or self.spool.records:
                self._to_spool(key, value)  # behind what waits there: order is kept
                return
            seq = next(self._seq)
            self._in_flight[seq] = _Sent(key, value, time.monotonic())
        try:
            producer.send_raw(key, value, on_done=lambda exc: self._delivered(seq, exc))
        except BusError as exc:
            self._delivered(seq, exc)

    def _to_spool(self, key: bytes, value: bytes) -> None:
        """Append to the spool; a disk that fails is logged and counted, and the shipping
        threads carry on (the event is then lost: ``spool_write_failures`` says how many)."""
        try:
            self.spool.append(key, value)
        except OSError as exc:
            self.spool_write_failures += 1
            logger.error("event for impression %s could not be written to the spool %s and is "
                         "lost: %s", key.decode(errors="replace"), self.spool.directory, exc)

    def _delivered(self, seq: int, exc: BaseException | None) -> None:
        """A delivery report (kafka-python's I/O thread): forget the event, or spool it."""
        with self._lock:
            sent = self._in_flight.pop(seq, None)
            if sent is None or exc is None:
                return  # acknowledged, or already spooled when its producer was discarded
            self._to_spool(sent.key, sent.value)
            self.delivery_failures += 1
            if self._discard_reason is None:
                self._discard_reason = f"delivery failed: {exc!r}"
        if self._on_failure is not None:
            self._on_failure()

    def _check_deliveries(self) -> None:
        """Discard the producer after a failure, or when an event waits too long."""
        with self._lock:
            reason = self._discard_reason
            oldest = next(iter(self._in_flight.values()), None)
        if reason is None and oldest is not None:
            waited = time.monotonic() - oldest.sent_at
            if waited > self.delivery_timeout_s:
                reason = f"an event waited {waited:.1f} s for the broker's acknowledgement"
        if reason is not None:
            self._discard_producer(reason)

    def _discard_producer(self, reason: str) -> None:
        """Spool everything still unacknowledged and drop the producer; the replayer builds
        a new one."""
        producer, stuck = self._take_producer()
        if producer is None:
            return
        self.rebuilds += 1
        self.delivery_failures += stuck
        logger.warning("event producer discarded (%s); %d unacknowledged event(s) spooled, "
                       "%d in the spool", reason, stuck, self.spool.records)
        if stuck and self._on_failure is not None:
            self._on_failure()
        self._close_quietly(producer, 0)

    def _take_producer(self) -> tuple[Producer | None, int]:
        """Unhook the producer and spool what it has not delivered; (producer, spooled)."""
        with self._lock:
            producer, self._producer = self._producer, None
            self._discard_reason = None
            stuck = list(self._in_flight.values())
            self._in_flight.clear()
            for sent in stuck:
                self._to_spool(sent.key, sent.value)
        self.spool.sync()
        return producer, len(stuck)

    @staticmethod
    def _close_quietly(producer: Producer, timeout_s: float) -> None:
        try:
            producer.close(timeout_s)
        except BusError as exc:  # a broken client: what it held is spooled already
            logger.warning("closing the event producer failed: %s", exc)

    # --- replaying -----------------------------------------------------------------------
    def _replay(self) -> None:
        wait = RECONNECT_MIN_S
        while not self._stopping.is_set():
            if not self.spool.records and self._producer is not None:
                self._stopping.wait(0.1)
                continue
            producer = self._producer or self._reconnect()
            if producer is None or (self.spool.records and not self._replay_batch(producer)):
                self._stopping.wait(wait)
                wait = min(wait * 2, RECONNECT_MAX_S)
            else:
                wait = RECONNECT_MIN_S

    def _reconnect(self) -> Producer | None:
        try:
            producer = self._connect()
        except BusError as exc:
            logger.warning("broker still unreachable (%d event(s) spooled): %s",
                           self.spool.records, exc)
            return None
        with self._lock:
            self._producer = producer
        logger.info("event producer connected; %d spooled event(s) to replay",
                    self.spool.records)
        return producer

    def _replay_batch(self, producer: Producer) -> bool:
        """Send one batch from the spool; True when the broker acknowledged all of it."""
        batch = self.spool.read(REPLAY_BATCH)
        if not batch.records:
            return True
        acks = _Acks(len(batch.records))
        try:
            for record in batch.records:
                producer.send_raw(record.key, record.value, on_done=acks)
        except BusError as exc:
            acks.first_error = acks.first_error or exc
        done = acks.wait(self.delivery_timeout_s)
        if done and acks.ok == len(batch.records):
            self.spool.commit(batch)
            if not self.spool.records:
                logger.info("spool drained: the broker acknowledged every spooled event")
            return True
        self._discard_producer(
            f"replay of {len(batch.records)} spooled event(s) not acknowledged: "
            f"{acks.first_error!r}" if acks.first_error else "replay timed out"
        )
        return False

    # --- shutting down -------------------------------------------------------------------
    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued event is acknowledged by the broker (spool included)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        done = threading.Event()
        self._queue.put(done)
        if not done.wait(timeout_s):
            raise BusError(f"events still queued for the producer after {timeout_s} s")
        while self._in_flight or self.spool.records:
            if deadline is not None and time.monotonic() > deadline:
                raise BusError(
                    f"{len(self._in_flight)} event(s) unacknowledged and "
                    f"{self.spool.records} spooled after {timeout_s} s"
                )
            time.sleep(0.02)

    def close(self, timeout_s: float = 10.0) -> None:
        """Hand over what is queued, give the broker ``timeout_s`` to acknowledge it, and
        spool what is still unacknowledged (replayed at the next start)."""
        self._queue.put(_STOP)
        self._drainer.join(timeout_s)
        self._stopping.set()
        self._replayer.join(timeout_s)
        producer = self._producer
        if producer is not None:
            try:
                producer.flush(timeout_s)
            except BusError as exc:
                logger.warning("broker did not acknowledge everything at shutdown: %s", exc)
        producer, stuck = self._take_producer()
        if producer is not None:
            self._close_quietly(producer, 0 if stuck else timeout_s)
        self.spool.close()
        if self.spool.records:
            logger.warning("%d event(s) left in the spool %s; they are replayed at the next "
                           "start", self.spool.records, self.spool.directory)
