"""Hands events to the Kafka producer from a thread of its own.

``KafkaProducer.send`` is non-blocking only while metadata is known and its buffer has
room; otherwise it blocks for up to ``max_block_ms``. Calling it from the event loop would
then stall every request. The shipper takes events from a queue instead: the request path
only appends (under a microsecond), and when the queue holds more than ``max_pending``
events, because the broker is down, ``ship`` raises BusError (the API answers 503) rather
than queueing without bound. Events that the producer refuses after that are logged and
counted; the producer itself logs events whose delivery later fails.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from adgen.bus.producer import EventProducer
from adgen.errors import BusError
from adgen.events import Event

logger = logging.getLogger(__name__)

_STOP = object()
#: Pause between drains of the queue (events reach the producer at most this late).
BATCH_WAIT_S = 0.005


class EventShipper:
    """A queue in front of an ``EventProducer``, drained by one daemon thread."""

    def __init__(
        self,
        producer: EventProducer,
        *,
        max_pending: int = 100_000,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.producer = producer
        self.max_pending = max_pending
        self.failed = 0
        self._on_failure = on_failure
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._drain, name="adgen-shipper", daemon=True)
        self._thread.start()

    def ship(self, event: Event) -> None:
        """Queue ``event`` for the producer; BusError when too many are already waiting."""
        if self._queue.qsize() >= self.max_pending:
            raise BusError(
                f"{self.max_pending} events are waiting for the broker; refusing more until "
                "it catches up"
            )
        self._queue.put(event)

    @property
    def pending(self) -> int:
        """Events queued and not yet handed to the producer."""
        return self._queue.qsize()

    def _drain(self) -> None:
        while True:
            item = self._queue.get()  # sleep until something arrives
            while True:  # one item out of the queue at a time keeps ``max_pending`` exact
                if item is _STOP:
                    return
                if isinstance(item, threading.Event):  # a flush marker: all before it is sent
                    item.set()
                else:
                    assert isinstance(item, Event)
                    self._send(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            # Under load, let events accumulate for a moment: a request then only appends to
            # the queue, instead of waking this thread (and trading the GIL) once per event.
            time.sleep(BATCH_WAIT_S)

    def _send(self, event: Event) -> None:
        try:
            self.producer.send(event)
        except BusError as exc:
            self.failed += 1
            if self._on_failure is not None:
                self._on_failure()
            logger.error("event %s not handed to the producer: %s", event.event_id, exc)

    def close(self, timeout_s: float = 10.0) -> None:
        """Hand over what is queued, stop the thread, then flush and close the producer."""
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        self.producer.close()

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until the queue is empty and the producer has delivered everything."""
        done = threading.Event()
        self._queue.put(done)
        if not done.wait(timeout_s):
            raise BusError(f"events still queued for the producer after {timeout_s} s")
        self.producer.flush(timeout_s)
