"""Simulated traffic through the real path: allocator → Kafka → ingest → database.

The audience's true click rates stay here; the learner (allocator, reward model, trainer)
only ever sees the impressions and clicks that reach PostgreSQL/SQLite through Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adgen.allocator import Allocator
from adgen.audience import Audience
from adgen.bus.producer import EventProducer
from adgen.db.models import ArmStats, Campaign, Variant
from adgen.errors import BusError
from adgen.events import Event, EventType, new_event_id


@dataclass
class TrafficResult:
    """What one stretch of simulated traffic did (the simulator's own bookkeeping)."""

    impressions: int = 0
    clicks: int = 0
    conversions: int = 0
    expected_clicks: float = 0.0
    best_expected_clicks: float = 0.0
    served: dict[int, list[int]] = field(default_factory=dict)  # variant → [impr, clicks]
    send_s: float = 0.0
    """Seconds allocating, simulating and producing the events (and refreshing posteriors)."""
    ingest_s: float = 0.0
    """Seconds flushing the producer and waiting for the database to hold every event."""

    @property
    def ctr(self) -> float:
        """Clicks per impression achieved."""
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def expected_ctr(self) -> float:
        """True CTR of the variants served, per impression: ``ctr`` without the click draws."""
        return self.expected_clicks / self.impressions if self.impressions else 0.0

    @property
    def regret(self) -> float:
        """Expected clicks lost against always serving each campaign's best variant."""
        return self.best_expected_clicks - self.expected_clicks


class TrafficSimulator:
    """Sends simulated impressions, clicks and conversions as real events."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        allocator: Allocator,
        producer: EventProducer,
        audience: Audience,
        rng: np.random.Generator,
    ) -> None:
        self._sessions = sessions
        self._allocator = allocator
        self._producer = producer
        self._audience = audience
        self._rng = rng
        self._true: dict[int, float] = {}
        self._sent_impressions = 0
        self._sent_clicks = 0
        self._sent_conversions = 0

    def true_ctr(self, variant_id: int) -> float:
        """The hidden click probability of a variant (cached; read from its text)."""
        if variant_id not in self._true:
            with self._sessions() as s:
                v, c = s.execute(
                    select(Variant, Campaign)
                    .join(Campaign, Campaign.id == Variant.campaign_id)
                    .where(Variant.id == variant_id)
                ).one()
                self._true[variant_id] = self._audience.true_ctr(v.text, c.brand, c.locale)
        return self._true[variant_id]

    def run(
        self,
        campaign_ids: Sequence[int],
        impressions: int,
        batch_size: int = 500,
        progress: Callable[[int], None] | None = None,
        between_batches: Callable[[int], None] | None = None,
    ) -> TrafficResult:
        """Serve ``impressions`` spread evenly over campaigns, refreshing posteriors per batch.

        Each batch is one refresh interval: its events are flushed to Kafka, the ingest
        consumer stores them, ``between_batches`` (if any) is called with the impressions
        served so far (the gate runs there), and the allocator reloads posteriors before
        the next batch. Its time is not counted in the result's seconds.
        """
        result = TrafficResult()
        conversion_campaigns = self._conversion_campaigns(campaign_ids)
        left = impressions
        while left > 0:
            n = min(batch_size, left)
            began = time.perf_counter()
            self._batch(campaign_ids, n, conversion_campaigns, result)
            left -= n
            sent = time.perf_counter()
            self._producer.flush(timeout_s=60)
            self.wait_ingested()
            ingested = time.perf_counter()
            if between_batches is not None:
                between_batches(impressions - left)
            refreshing = time.perf_counter()
            self._allocator.refresh()
            result.send_s += sent - began + time.perf_counter() - refreshing
            result.ingest_s += ingested - sent
            if progress is not None:
                progress(n)
        return result

    def _conversion_campaigns(self, campaign_ids: Sequence[int]) -> set[int]:
        with self._sessions() as s:
            rows = s.execute(
                select(Campaign.id).where(
                    Campaign.id.in_(campaign_ids), Campaign.reward == "conversion"
                )
            )
            return {r[0] for r in rows}

    def _batch(
        self, campaign_ids: Sequence[int], n: int, conversion: set[int], result: TrafficResult
    ) -> None:
        now = datetime.now(UTC)
        best = {
            cid: max(self.true_ctr(a.variant_id) for a in self._allocator.arms(cid))
            for cid in campaign_ids
        }
        for i in range(n):
            cid = campaign_ids[i % len(campaign_ids)]
            alloc = self._allocator.allocate(cid)
            p = self.true_ctr(alloc.variant_id)
            clicked, converted = self._audience.simulate(p, self._rng)
            self._send(
                "impression",
                alloc.impression_id,
                cid,
                alloc.variant_id,
                now,
                propensity=alloc.propensity,
                snapshot_id=alloc.snapshot_id,
            )
            served = result.served.setdefault(alloc.variant_id, [0, 0])
            served[0] += 1
            result.impressions += 1
            result.expected_clicks += p
            result.best_expected_clicks += best[cid]
            if clicked[0]:
                self._send("click", alloc.impression_id, cid, alloc.variant_id, now)
                served[1] += 1
                result.clicks += 1
                if converted[0] and cid in conversion:
                    self._send(
                        "conversion", alloc.impression_id, cid, alloc.variant_id, now, value=1.0
                    )
                    result.conversions += 1

    def _send(
        self,
        kind: EventType,
        impression_id: str,
        cid: int,
        vid: int,
        now: datetime,
        *,
        propensity: float | None = None,
        snapshot_id: int | None = None,
        value: float | None = None,
    ) -> None:
        self._producer.send(
            Event(
                type=kind,
                event_id=new_event_id(),
                impression_id=impression_id,
                campaign_id=cid,
                variant_id=vid,
                event_time=now,
                propensity=propensity,
                snapshot_id=snapshot_id,
                value=value,
            )
        )
        if kind == "impression":
            self._sent_impressions += 1
        elif kind == "click":
            self._sent_clicks += 1
        else:
            self._sent_conversions += 1

    def wait_ingested(self, timeout_s: float = 120.0) -> None:
        """Block until the database holds every event this simulator has sent."""
        want = (self._sent_impressions, self._sent_clicks, self._sent_conversions)
        deadline = time.monotonic() + timeout_s
        while True:
            with self._sessions() as s:
                got = s.execute(
                    select(
                        func.coalesce(func.sum(ArmStats.impressions), 0),
                        func.coalesce(func.sum(ArmStats.clicks), 0),
                        func.coalesce(func.sum(ArmStats.conversions), 0),
                    )
                ).one()
            if all(int(g) >= w for g, w in zip(got, want, strict=True)):
                return
            if time.monotonic() > deadline:
                raise BusError(
                    f"ingest did not catch up within {timeout_s:.0f} s: "
                    f"sent {want}, stored {tuple(got)}"
                )
            time.sleep(0.05)
