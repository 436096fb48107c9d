"""The event shipper: order kept, back-pressure when the broker stalls, failures counted.

The producer here is a stand-in at the Kafka boundary (the API tests use the real one).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from adgen.api.shipper import EventShipper
from adgen.errors import BusError
from adgen.events import Event


def _event(i: int) -> Event:
    return Event(type="click", event_id=f"click-{i}", impression_id=f"imp{i}", campaign_id=1,
                 variant_id=1, propensity=None, value=None, event_time=datetime.now(UTC))


class StubProducer:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail_ids: set[str] = set()
        self.flushed = self.closed = 0

    def send(self, event: Event) -> None:
        self.gate.wait(10)
        if event.event_id in self.fail_ids:
            raise BusError("buffer full")
        self.sent.append(event.event_id)

    def flush(self, timeout_s: float | None = None) -> None:
        self.flushed += 1

    def close(self) -> None:
        self.closed += 1


def test_events_reach_the_producer_in_order_and_flush_waits_for_them() -> None:
    producer = StubProducer()
    shipper = EventShipper(producer)  # type: ignore[arg-type]
    for i in range(500):
        shipper.ship(_event(i))
    shipper.flush(timeout_s=10)
    assert producer.sent == [f"click-{i}" for i in range(500)]
    assert producer.flushed == 1 and shipper.pending == 0
    shipper.close()
    assert producer.closed == 1


def test_a_stalled_broker_gets_back_pressure_not_an_unbounded_queue() -> None:
    producer = StubProducer()
    producer.gate.clear()  # the producer blocks, as kafka-python does when its buffer is full
    shipper = EventShipper(producer, max_pending=10)  # type: ignore[arg-type]
    accepted = 0
    with pytest.raises(BusError, match="10 events are waiting"):
        for i in range(100):
            shipper.ship(_event(i))
            accepted += 1
    assert 10 <= accepted <= 11  # one may already be in the producer's hands
    producer.gate.set()
    shipper.flush(timeout_s=10)
    assert producer.sent == [f"click-{i}" for i in range(accepted)]
    shipper.close()


def test_refused_events_are_counted_and_the_rest_still_go() -> None:
    producer = StubProducer()
    producer.fail_ids = {"click-3"}
    failures: list[int] = []
    shipper = EventShipper(producer, on_failure=lambda: failures.append(1))  # type: ignore[arg-type]
    for i in range(6):
        shipper.ship(_event(i))
    shipper.flush(timeout_s=10)
    assert producer.sent == ["click-0", "click-1", "click-2", "click-4", "click-5"]
    assert shipper.failed == 1 and failures == [1]
    shipper.close()
