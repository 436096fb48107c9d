"""The event shipper: order kept, back-pressure, and nothing lost when the broker does not
acknowledge: such events are spooled, the producer is rebuilt and the spool replayed.

The producer here is a stand-in at the Kafka boundary (the API and fault tests use the
real one and the real broker).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adgen.api.shipper import EventShipper
from adgen.bus.producer import DeliveryCallback
from adgen.bus.spool import Spool
from adgen.errors import BusError
from adgen.events import Event, decode_event


def _event(i: int) -> Event:
    return Event(type="click", event_id=f"click-{i}", impression_id=f"imp{i}", campaign_id=1,
                 variant_id=1, propensity=None, value=None, event_time=datetime.now(UTC))


class StubProducer:
    """Acknowledges at once, unless told to refuse ids, to never answer, or to block."""

    def __init__(self, broker: list[str]) -> None:
        self.broker = broker  # what "the broker" acknowledged, shared by successive producers
        self.gate = threading.Event()
        self.gate.set()
        self.fail_ids: set[str] = set()
        self.silent = False
        self.closed = 0
        self.unanswered: list[DeliveryCallback] = []

    def send_raw(self, key: bytes | None, value: bytes, on_done: DeliveryCallback | None = None
                 ) -> None:
        self.gate.wait(10)
        event_id = decode_event(value).event_id
        assert on_done is not None
        if self.silent:
            self.unanswered.append(on_done)
        elif event_id in self.fail_ids:
            on_done(BusError("InitProducerIdResponse: [Error -1] UnknownError"))
        else:
            self.broker.append(event_id)
            on_done(None)

    def flush(self, timeout_s: float | None = None) -> None:
        return None

    def close(self, timeout_s: float | None = None) -> None:
        self.closed += 1
        for callback in self.unanswered:  # kafka-python aborts what it still holds
            callback(BusError("Producer is closed forcefully."))
        self.unanswered.clear()


class Factory:
    """``connect`` for the shipper: a new stub producer each call (the broker may be down)."""

    def __init__(self) -> None:
        self.broker: list[str] = []
        self.made: list[StubProducer] = []
        self.down = False
        self.configure: Callable[[StubProducer], None] = lambda p: None

    def __call__(self) -> StubProducer:
        if self.down:
            raise BusError("cannot reach the Kafka cluster")
        producer = StubProducer(self.broker)
        self.configure(producer)
        self.made.append(producer)
        return producer


def _shipper(
    tmp_path: Path, factory: Factory, max_bytes: int = 1 << 20, **kwargs: Any
) -> EventShipper:
    spool = Spool(tmp_path / "spool", max_bytes=max_bytes)
    return EventShipper(factory, spool, producer=factory(), **kwargs)


def _wait(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_events_reach_the_broker_in_order_and_flush_waits_for_them(tmp_path: Path) -> None:
    factory = Factory()
    shipper = _shipper(tmp_path, factory)
    for i in range(500):
        shipper.ship(_event(i))
    shipper.flush(timeout_s=10)
    assert factory.broker == [f"click-{i}" for i in range(500)]
    assert shipper.pending == 0 and shipper.unacknowledged == 0 and shipper.spool.records == 0
    shipper.close()
    assert factory.made[0].closed == 1


def test_a_stalled_producer_gets_back_pressure_not_an_unbounded_queue(tmp_path: Path) -> None:
    factory = Factory()
    factory.configure = lambda p: p.gate.clear()  # blocks, as kafka-python does when full
    shipper = _shipper(tmp_path, factory, max_pending=10)
    accepted = 0
    with pytest.raises(BusError, match="10 events are waiting"):
        for i in range(100):
            shipper.ship(_event(i))
            accepted += 1
    assert 10 <= accepted <= 11  # one may already be in the producer's hands
    factory.made[0].gate.set()
    shipper.flush(timeout_s=10)
    assert factory.broker == [f"click-{i}" for i in range(accepted)]
    shipper.close()


def test_a_failed_delivery_is_spooled_the_producer_rebuilt_and_nothing_lost(
    tmp_path: Path,
) -> None:
    factory = Factory()
    failures: list[int] = []
    factory.configure = lambda p: p.fail_ids.update({"click-3"} if not factory.made else set())
    shipper = _shipper(tmp_path, factory, on_failure=lambda: failures.append(1))
    for i in range(50):
        shipper.ship(_event(i))
    shipper.flush(timeout_s=10)
    # every event reached the broker exactly once; click-3 through the spool, after the
    # events the first producer had already delivered
    assert sorted(factory.broker) == sorted(f"click-{i}" for i in range(50))
    assert len(factory.broker) == 50
    assert shipper.delivery_failures >= 1 and failures
    assert len(factory.made) == 2 and factory.made[0].closed == 1 and shipper.rebuilds == 1
    assert shipper.spool.records == 0
    shipper.close()


def test_unacknowledged_events_are_spooled_after_the_delivery_timeout_and_replayed(
    tmp_path: Path,
) -> None:
    factory = Factory()
    factory.configure = lambda p: setattr(p, "silent", not factory.made)  # first never answers
    shipper = _shipper(tmp_path, factory, delivery_timeout_s=0.3)
    for i in range(20):
        shipper.ship(_event(i))
    _wait(lambda: shipper.unacknowledged == 20)
    assert shipper.oldest_unacknowledged_age_s() >= 0
    shipper.flush(timeout_s=10)
    assert factory.broker == [f"click-{i}" for i in range(20)]  # replayed in order
    assert shipper.delivery_failures == 20 and shipper.rebuilds == 1
    shipper.close()


def test_while_the_broker_is_away_events_wait_in_the_spool_and_a_full_spool_refuses(
    tmp_path: Path,
) -> None:
    factory = Factory()
    shipper = _shipper(tmp_path, factory, max_bytes=64 * 1024)
    factory.made[0].fail_ids.add("click-0")
    factory.down = True
    shipper.ship(_event(0))
    _wait(lambda: shipper.spool.records == 1)
    accepted = 1
    with pytest.raises(BusError, match="spool is full"):
        for i in range(1, 100_000):
            shipper.ship(_event(i))
            accepted += 1
            if i % 100 == 0:  # let the drain thread write what was accepted
                _wait(lambda: shipper.pending == 0)
    _wait(lambda: shipper.pending == 0)
    assert shipper.spool.records == accepted  # every accepted event is on disk
    assert factory.broker == []
    factory.down = False  # the broker is back: everything goes, in order
    shipper.flush(timeout_s=30)
    assert factory.broker == [f"click-{i}" for i in range(accepted)]
    shipper.ship(_event(accepted))  # and events are accepted again
    shipper.close()


def test_what_is_spooled_at_shutdown_is_replayed_by_the_next_start(tmp_path: Path) -> None:
    factory = Factory()
    factory.down = True
    shipper = EventShipper(factory, Spool(tmp_path / "spool", max_bytes=1 << 20))
    for i in range(30):
        shipper.ship(_event(i))
    shipper.close(timeout_s=1)
    assert factory.broker == []
    factory.down = False
    again = EventShipper(factory, Spool(tmp_path / "spool", max_bytes=1 << 20))
    again.flush(timeout_s=10)
    assert factory.broker == [f"click-{i}" for i in range(30)]
    again.close()


def test_a_failing_disk_is_logged_and_counted_and_shipping_carries_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    factory = Factory()
    shipper = _shipper(tmp_path, factory)
    factory.made[0].fail_ids.add("click-0")
    factory.down = True

    def disk_full(key: bytes | None, value: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shipper.spool, "append", disk_full)
    shipper.ship(_event(0))
    _wait(lambda: shipper.spool_write_failures == 1)
    assert any("could not be written to the spool" in r.getMessage() for r in caplog.records)
    monkeypatch.undo()  # the disk has room again: the threads are still alive
    shipper.ship(_event(1))
    factory.down = False
    shipper.flush(timeout_s=10)
    assert factory.broker == ["click-1"]
    shipper.close()
