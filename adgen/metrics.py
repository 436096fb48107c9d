"""Prometheus metrics of the API: allocations, events, errors, posterior refresh age.

Each app gets its own registry, so several apps (tests) never collide.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from adgen.allocator import Allocator
from adgen.db.models import Campaign
from adgen.srm import SrmResult, campaign_srm
from adgen.vocabulary import CampaignStatus

logger = logging.getLogger(__name__)
#: SRM gauges are recomputed at most this often (each test reads a campaign's impressions).
SRM_GAUGE_MAX_AGE_S = 60.0

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

    def track_srm(self, sessions: sessionmaker[Session]) -> None:
        """Export each active campaign's sample-ratio-mismatch p-value and flag (computed
        from the database at each scrape)."""
        self.registry.register(SrmCollector(sessions))

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)


def _read(
    shipper: Callable[[], EventShipper | None], get: Callable[[EventShipper], float]
) -> float:
    """``get`` of the running shipper; 0 while there is none."""
    current = shipper()
    return 0.0 if current is None else get(current)


class SrmCollector(Collector):
    """``adgen_srm_p_value`` and ``adgen_srm_flagged`` per active campaign. Each test reads
    the campaign's impressions, so results are recomputed at most every ``max_age_s``."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        max_age_s: float = SRM_GAUGE_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._max_age_s = max_age_s
        self._clock = clock
        self._results: dict[int, SrmResult] = {}
        self._computed_at: float | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        """No samples at registration (the database may not be up yet)."""
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per active campaign; the last results while the database is down."""
        now = self._clock()
        if self._computed_at is None or now - self._computed_at >= self._max_age_s:
            try:
                with self._sessions() as session:
                    ids = list(session.scalars(
                        select(Campaign.id).where(Campaign.status == CampaignStatus.ACTIVE)
                    ))
                    self._results = {cid: campaign_srm(session, cid) for cid in ids}
                self._computed_at = now
            except SQLAlchemyError as exc:  # adgen_degraded reports the database too
                logger.warning("SRM gauges not refreshed: %s", exc)
        p_values = GaugeMetricFamily(
            "adgen_srm_p_value",
            "Sample-ratio-mismatch p-value of each active campaign's impressions "
            "(1 until every arm expects 5).",
            labels=["campaign_id"],
        )
        flagged = GaugeMetricFamily(
            "adgen_srm_flagged",
            "1 when a campaign's traffic split is broken (SRM p < 0.001).",
            labels=["campaign_id"],
        )
        for cid, result in sorted(self._results.items()):
            p_values.add_metric([str(cid)], result.p_value)
            flagged.add_metric([str(cid)], float(result.flagged))
        yield p_values
        yield flagged
