"""The event producer: kafka-python with acks=all, retries and idempotence, keyed by impression.

Keying by ``impression_id`` puts every event of one impression in the same partition, so
a consumer sees an impression's click after the impression itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from kafka import KafkaProducer
from kafka.errors import KafkaError

from adgen.errors import BusError
from adgen.events import Event, encode_event

logger = logging.getLogger(__name__)

#: Called once per message when the broker acknowledged it (None) or it failed (the error).
DeliveryCallback = Callable[[BaseException | None], None]


class EventProducer:
    """Send events to ``topic``; ``send`` is non-blocking, ``flush`` reports failed sends."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        linger_ms: int = 5,
        batch_size: int = 256 * 1024,
        max_block_ms: int = 30_000,
    ) -> None:
        self.topic = topic
        self._lock = threading.Lock()
        self._failed = 0
        self._first_error: BaseException | None = None
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap,
                acks="all",
                enable_idempotence=True,
                retries=2**31 - 1,
                delivery_timeout_ms=120_000,
                linger_ms=linger_ms,
                batch_size=batch_size,
                max_block_ms=max_block_ms,
            )
        except (KafkaError, OSError) as exc:
            raise BusError(f"cannot connect a producer to {bootstrap}: {exc}") from exc

    def send(self, event: Event) -> None:
        """Queue ``event`` for delivery (keyed by its impression id); does not wait."""
        self.send_raw(event.impression_id.encode(), encode_event(event))

    def send_raw(
        self, key: bytes | None, value: bytes, on_done: DeliveryCallback | None = None
    ) -> None:
        """Queue an already-encoded message; ``on_done`` hears whether the broker took it."""
        try:
            future = self._producer.send(self.topic, key=key, value=value)
        except KafkaError as exc:
            raise BusError(f"cannot send to topic {self.topic!r}: {exc}") from exc
        future.add_errback(self._on_error)
        if on_done is not None:
            future.add_callback(lambda _metadata: on_done(None))
            future.add_errback(on_done)

    def _on_error(self, exc: BaseException) -> None:
        with self._lock:
            self._failed += 1
            if self._first_error is None:
                self._first_error = exc
        logger.error("event not delivered to %s: %s", self.topic, exc)

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every queued event is acknowledged; BusError if any was not."""
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise BusError(f"flush to topic {self.topic!r} did not finish: {exc}") from exc
        with self._lock:
            failed, first = self._failed, self._first_error
            self._failed, self._first_error = 0, None
        if failed:
            raise BusError(f"{failed} event(s) were not delivered to {self.topic!r}: {first}")

    def close(self, timeout_s: float | None = 10.0) -> None:
        """Flush what is queued and close the connection (``0`` aborts what is unsent:
        its callbacks hear an error)."""
        try:
            self._producer.close(timeout=timeout_s)
        except KafkaError as exc:
            raise BusError(f"closing the producer for {self.topic!r} failed: {exc}") from exc

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            self.close()
