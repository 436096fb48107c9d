"""Prometheus metrics of the API: allocations, events, errors, posterior refresh age.

Each app gets its own registry, so several apps (tests) never collide.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from adgen.allocator import Allocator

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

    def track(self, allocator: Allocator, pending_events: Callable[[], int]) -> None:
        """Export the allocator's refresh age, degraded flag and refresh failures, and the
        number of events waiting for the producer."""
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
        pending.set_function(lambda: float(pending_events()))

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
