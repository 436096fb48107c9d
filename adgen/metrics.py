"""Prometheus metrics of the API: allocations, events, errors, posterior refresh age.

Each app gets its own registry, so several apps (tests) never collide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from adgen.allocator import Allocator

if TYPE_CHECKING:
    from adgen.api.shipper import EventShipper

EVENT_TYPES = ("click", "conversion")  # impressions: one per allocation
ERROR_KINDS = ("validation", "not_found", "conflict", "token", "auth", "storage", "bus", "config")


class ApiMetrics:
    """The API's counters and gauges, in a registry of their own."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.allocations = Counter(
            "adgen_allocations",
            "Impressions allocated (each sends one impression event).",
            registry=self.registry,
        )
        events = Counter(
            "adgen_events",
            "Clicks and conversions sent to the bus, by type.",
            ["type"],
            registry=self.registry,
        )
        errors = Counter(
            "adgen_errors", "Requests refused or failed, by kind.", ["kind"], registry=self.registry
        )
        # bind the label values once: the hot path then increments a plain counter
        self.events = {t: events.labels(type=t) for t in EVENT_TYPES}
        self.errors = {k: errors.labels(kind=k) for k in ERROR_KINDS}

    def track(self, allocator: Allocator, shipper: Callable[[], EventShipper | None]) -> None:
        """Export the allocator's refresh age, degraded flag and refresh failures, and the
        delivery state of events: queued, spooled, oldest unacknowledged, failures."""
        age = Gauge(
            "adgen_posterior_refresh_age_seconds",
            "Seconds since posteriors were last loaded (+Inf before the first load).",
            registry=self.registry,
        )
        age.set_function(lambda: allocator.refresh_age_s)
        degraded = Gauge(
            "adgen_degraded",
            "1 while the last posterior refresh failed (serving older posteriors).",
            registry=self.registry,
        )
        degraded.set_function(lambda: float(allocator.degraded))
        failures = Gauge(
            "adgen_posterior_refresh_failures",
            "Posterior refreshes that failed since start.",
            registry=self.registry,
        )
        failures.set_function(lambda: float(allocator.refresh_failures))
        pending = Gauge(
            "adgen_events_pending",
            "Events queued in the API and not yet handed to the Kafka producer.",
            registry=self.registry,
        )
        pending.set_function(lambda: float(_read(shipper, lambda s: s.pending)))
        spooled = Gauge(
            "adgen_spool_events",
            "Events in the write-ahead spool, waiting for the broker.",
            registry=self.registry,
        )
        spooled.set_function(lambda: float(_read(shipper, lambda s: s.spool.records)))
        spool_bytes = Gauge(
            "adgen_spool_bytes", "Bytes of the write-ahead spool on disk.", registry=self.registry
        )
        spool_bytes.set_function(lambda: float(_read(shipper, lambda s: s.spool.size_bytes)))
        oldest = Gauge(
            "adgen_oldest_unacknowledged_event_age_seconds",
            "Age of the oldest event the broker has not acknowledged (in flight or spooled).",
            registry=self.registry,
        )
        oldest.set_function(lambda: _read(shipper, lambda s: s.oldest_unacknowledged_age_s()))
        failures_total = Gauge(
            "adgen_delivery_failures",
            "Events the broker refused or did not acknowledge in time since start (spooled).",
            registry=self.registry,
        )
        failures_total.set_function(
            lambda: float(_read(shipper, lambda s: s.delivery_failures))
        )
        unspooled = Gauge(
            "adgen_spool_write_failures",
            "Events the spool could not write (a failing disk): events lost. Alert on > 0.",
            registry=self.registry,
        )
        unspooled.set_function(lambda: float(_read(shipper, lambda s: s.spool_write_failures)))

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)


def _read(
    shipper: Callable[[], EventShipper | None], get: Callable[[EventShipper], float]
) -> float:
    """``get`` of the running shipper; 0 while there is none."""
    current = shipper()
    return 0.0 if current is None else get(current)
