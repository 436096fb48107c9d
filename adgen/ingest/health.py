"""Ingest's view of its own health: lag per partition, assignment, progress, and metrics.

A consumer-group member can look alive while storing nothing: a broker that keeps a dead
member as the group's leader leaves partitions with nobody reading them. So ingest
measures, every few seconds, each partition's lag (end offset minus the group's committed
offset) and notes when each committed offset last moved. A partition that holds lag while
its committed offset has not moved for ``stall_s`` is stuck; the member then reports
itself unhealthy (its heartbeat file stops, ``adgen_ingest_healthy`` is 0) and rejoins
the group with a new consumer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from adgen.ingest.stats import IngestStats

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _PartitionState:
    committed: int
    end: int
    lag: int
    moved_at: float  # when the committed offset last moved
    end_at_move: int  # the end offset then


@dataclass(slots=True)
class IngestHealth:
    """Lag, assignment and stall verdict of one ingest member."""

    stall_s: float
    healthy: bool = True
    rejoins: int = 0
    assigned: frozenset[int] = frozenset()
    _partitions: dict[int, _PartitionState] = field(default_factory=dict)

    def observe(
        self,
        committed: Mapping[int, int],
        end_offsets: Mapping[int, int],
        assigned: frozenset[int],
        now: float | None = None,
    ) -> list[int]:
        """Record one measurement: the group's committed offsets and the end offsets.

        Returns the partitions whose end offset went back: a log never shrinks, so the
        broker lost it (a restarted embedded broker keeps nothing) and it must be read
        again from its beginning.
        """
        now = time.monotonic() if now is None else now
        self.assigned = assigned
        shrunk: list[int] = []
        for partition, end in end_offsets.items():
            done = committed.get(partition, 0)
            previous = self._partitions.get(partition)
            if previous is not None and end < previous.end:
                shrunk.append(partition)
            if previous is None or previous.committed != done or end < previous.end:
                moved_at, end_at_move = now, end  # progress (or the first look)
            else:
                moved_at, end_at_move = previous.moved_at, previous.end_at_move
            self._partitions[partition] = _PartitionState(
                done, end, max(0, end - done), moved_at, end_at_move
            )
        return shrunk

    @property
    def lag(self) -> dict[int, int]:
        """Messages waiting per partition at the last measurement."""
        return {p: s.lag for p, s in sorted(self._partitions.items())}

    def stuck(self, now: float | None = None) -> list[int]:
        """Partitions whose committed offset has not moved for ``stall_s`` although they hold
        lag or new messages arrived meanwhile (Tansu's end offsets trail the last record, so
        a committed offset past the end is normal there until the end moves on)."""
        now = time.monotonic() if now is None else now
        return sorted(
            p for p, s in self._partitions.items()
            if now - s.moved_at >= self.stall_s and (s.lag or s.end > s.end_at_move)
        )

    def judge(self, now: float | None = None) -> bool:
        """Update and return ``healthy``; logs a WARNING when a stall starts."""
        stuck = self.stuck(now)
        if stuck and self.healthy:
            logger.warning(
                "ingest stalled: partitions %s hold %s messages and nothing was committed for "
                "%.0f s (this member owns %s); reporting unhealthy and rejoining the group",
                stuck, [self._partitions[p].lag for p in stuck], self.stall_s,
                sorted(self.assigned) or "none",
            )
        self.healthy = not stuck
        return self.healthy

    def rejoined(self, now: float | None = None) -> None:
        """A new consumer joined: give it ``stall_s`` before judging again."""
        now = time.monotonic() if now is None else now
        self.rejoins += 1
        for state in self._partitions.values():
            state.moved_at, state.end_at_move = now, state.end


class IngestMetrics:
    """Prometheus gauges of one ingest process, in a registry of their own."""

    def __init__(self, health: IngestHealth, stats: IngestStats) -> None:
        self.registry = CollectorRegistry()
        self._lag = Gauge("adgen_ingest_lag", "Messages waiting, by partition.", ["partition"],
                          registry=self.registry)
        Gauge("adgen_ingest_healthy", "1 while ingest makes progress or has nothing to do.",
              registry=self.registry).set_function(lambda: float(health.healthy))
        Gauge("adgen_ingest_assigned_partitions", "Partitions this member owns.",
              registry=self.registry).set_function(lambda: float(len(health.assigned)))
        Gauge("adgen_ingest_rejoins", "Times this member left and rejoined the group.",
              registry=self.registry).set_function(lambda: float(health.rejoins))
        for name in ("messages", "inserted", "duplicates", "dead_letters", "db_retries"):
            Gauge(f"adgen_ingest_{name}", f"Ingest's {name.replace('_', ' ')} since start.",
                  registry=self.registry).set_function(_counter(stats, name))
        self._health = health

    def refresh(self) -> None:
        """Copy the last lag measurement into the per-partition gauge."""
        for partition, lag in self._health.lag.items():
            self._lag.labels(partition=str(partition)).set(lag)

    def serve(self, host: str, port: int) -> None:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)
        logger.info("ingest metrics on http://%s:%d/metrics", host, port)


def _counter(stats: IngestStats, name: str) -> Callable[[], float]:
    return lambda: float(getattr(stats, name))
