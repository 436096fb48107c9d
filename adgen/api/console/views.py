"""What the console's pages show, read from PostgreSQL (or SQLite) and the allocator.

Every per-variant figure comes from :class:`adgen.api.schemas.VariantPublic`, the API's
own summary, so the console and ``GET /v1/campaigns/{id}`` always agree.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adgen.allocator import Allocator
from adgen.api.schemas import CampaignDetail, VariantPublic
from adgen.db.campaigns import get_campaign, list_variants
from adgen.db.models import (
    Campaign,
    DeadLetter,
    Event,
    GateDecision,
    ModelVersion,
    RewardModelRecord,
    TrainingRun,
    Variant,
)
from adgen.errors import NotFoundError
from adgen.health import Health, campaign_health
from adgen.operations import effective_controls
from adgen.settings import Settings
from adgen.stats import credible_interval, prob_best, successes_within
from adgen.vocabulary import Decision, VariantStatus

#: The health page's ingest figures come from this many newest events.
INGEST_WINDOW = 1000
#: At most this many points on a chart over time (hours are merged beyond it).
MAX_POINTS = 48


@dataclass(frozen=True)
class LeaderRow:
    """One variant on a campaign's leaderboard."""

    variant: VariantPublic  # prob_best is set for active variants (among the active ones)
    version_status: str | None
    share: float | None  # the allocator's current probability of serving it


@dataclass(frozen=True)
class CampaignRow:
    """One campaign on the overview page."""

    campaign: Campaign
    health: Health
    impressions_today: int
    clicks_today: int
    best: LeaderRow | None
    variants: int


@dataclass
class Series:
    """Charts over time: per-variant traffic share, P(best) and cumulative rate with band."""

    labels: list[str] = field(default_factory=list)
    variants: list[dict[str, Any]] = field(default_factory=list)
    markers: list[dict[str, Any]] = field(default_factory=list)


def _successes(v: VariantPublic) -> int:
    return min(v.clicks if v.reward == "click" else v.conversions, v.impressions)


def leaderboard(
    session: Session, campaign_id: int, allocator: Allocator, settings: Settings
) -> tuple[CampaignDetail, list[LeaderRow]]:
    """The campaign as ``GET /v1/campaigns/{id}`` reports it, and its variants (paused and
    rejected included) with their versions' statuses and current traffic shares, best
    posterior mean first."""
    campaign = get_campaign(session, campaign_id)
    detail = CampaignDetail.of(
        campaign, list_variants(session, campaign_id), effective_controls(campaign, settings)
    )
    version_ids = {v.model_version_id for v in detail.variants if v.model_version_id}
    stmt = select(ModelVersion.id, ModelVersion.status).where(ModelVersion.id.in_(version_ids))
    statuses = {vid: status for vid, status in session.execute(stmt)}
    try:
        shares = {a.variant_id: a.probability for a in allocator.arms(campaign_id)}
    except NotFoundError:
        shares = {}
    rows = [
        LeaderRow(
            v,
            statuses.get(v.model_version_id) if v.model_version_id else None,
            shares.get(v.id),
        )
        for v in detail.variants
    ]
    rows.sort(key=lambda r: (r.variant.status == VariantStatus.REJECTED, -r.variant.posterior_mean))
    return detail, rows


def improvement(rows: list[LeaderRow]) -> dict[str, float] | None:
    """Successes earned against what an equal split would have earned on the same posteriors.

    The equal split's expectation is total impressions times the average posterior mean
    of the variants that competed; None before any impression.
    """
    served = [r.variant for r in rows if r.variant.impressions > 0]
    if not served:
        return None
    impressions = sum(v.impressions for v in served)
    earned = sum(_successes(v) for v in served)
    uniform = impressions * float(np.mean([v.posterior_mean for v in served]))
    return {
        "earned": float(earned),
        "uniform": uniform,
        "gain": earned - uniform,
        "lift": (earned / uniform - 1.0) if uniform > 0 else 0.0,
    }


def today_counts(session: Session, now: datetime | None = None) -> dict[int, dict[str, int]]:
    """Impressions and clicks per campaign since midnight UTC."""
    now = now or datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    out: dict[int, dict[str, int]] = defaultdict(lambda: {"impression": 0, "click": 0})
    stmt = (
        select(Event.campaign_id, Event.type, func.count())
        .where(Event.event_time >= midnight, Event.type.in_(("impression", "click")))
        .group_by(Event.campaign_id, Event.type)
    )
    for cid, kind, count in session.execute(stmt):
        out[cid][kind] = int(count)
    return out


def campaigns_overview(
    session: Session, allocator: Allocator, settings: Settings
) -> list[CampaignRow]:
    """Every campaign with its health, today's counts and its best variant."""
    today = today_counts(session)
    out = []
    for campaign in session.scalars(select(Campaign).order_by(Campaign.id)):
        _, rows = leaderboard(session, campaign.id, allocator, settings)
        live = [r for r in rows if r.variant.prob_best is not None]
        best = max(live, key=lambda r: r.variant.prob_best or 0.0, default=None)
        counts = today.get(campaign.id, {"impression": 0, "click": 0})
        out.append(
            CampaignRow(
                campaign,
                campaign_health(session, campaign.id),
                counts["impression"],
                counts["click"],
                best,
                len(rows),
            )
        )
    return out


def _hour(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("hour", Event.event_time)
    return func.strftime("%Y-%m-%d %H:00:00", Event.event_time)


def _as_dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _hourly(session: Session, campaign: Campaign) -> dict[tuple[datetime, int], list[int]]:
    """(hour, variant) -> [impressions, successes] of ``campaign`` from the events table."""
    success = "click" if campaign.reward == "click" else "conversion"
    hour = _hour(session).label("hour")
    stmt = (
        select(hour, Event.variant_id, Event.type, func.count())
        .where(Event.campaign_id == campaign.id, Event.type.in_(("impression", success)))
        .group_by(hour, Event.variant_id, Event.type)
    )
    counts: dict[tuple[datetime, int], list[int]] = defaultdict(lambda: [0, 0])
    for h, vid, kind, count in session.execute(stmt):
        counts[(_as_dt(h), int(vid))][0 if kind == "impression" else 1] += int(count)
    return counts


def series(session: Session, campaign_id: int) -> Series:
    """Hourly (or coarser) share of impressions, P(best) and cumulative rate with its 95%
    credible band per variant, and markers where one of its versions was promoted or
    rolled back."""
    campaign = get_campaign(session, campaign_id)
    hourly = _hourly(session, campaign)
    out = Series()
    if not hourly:
        return out
    start = min(h for h, _ in hourly)
    end = max(h for h, _ in hourly)
    width = max(1, -(-(int((end - start) / timedelta(hours=1)) + 1) // MAX_POINTS))

    def bucket(at: datetime) -> int:
        return int((at - start) / timedelta(hours=1)) // width

    variant_ids = sorted({vid for _, vid in hourly})
    column = {vid: i for i, vid in enumerate(variant_ids)}
    counts = np.zeros((bucket(end) + 1, len(variant_ids), 2))
    for (h, vid), (n, s) in hourly.items():
        counts[bucket(h), column[vid]] += (n, s)
    trials = np.cumsum(counts[:, :, 0], axis=0)
    successes = successes_within(np.cumsum(counts[:, :, 1], axis=0), trials)
    served = counts[:, :, 0].sum(axis=1, keepdims=True)
    share = np.divide(counts[:, :, 0], served, out=np.full_like(trials, np.nan), where=served > 0)
    rate = np.divide(successes, trials, out=np.full_like(trials, np.nan), where=trials > 0)
    bounds = credible_interval(successes, trials)
    low, high = (np.where(trials > 0, bound, np.nan) for bound in bounds)
    p_best = np.array([prob_best(successes[b], trials[b]) for b in range(len(counts))])

    def values(matrix: NDArray[np.float64], i: int) -> list[float | None]:
        return [None if np.isnan(x) else float(x) for x in matrix[:, i]]

    out.labels = [
        (start + timedelta(hours=b * width)).strftime("%m-%d %H:00") for b in range(len(counts))
    ]
    out.variants = [
        {
            "id": vid,
            "share": values(share, i),
            "p_best": values(p_best, i),
            "rate": values(rate, i),
            "low": values(low, i),
            "high": values(high, i),
        }
        for i, vid in enumerate(variant_ids)
    ]
    versions = select(Variant.model_version_id).where(Variant.campaign_id == campaign_id)
    decisions = select(GateDecision).where(
        GateDecision.decision.in_((Decision.PROMOTE, Decision.ROLLBACK)),
        GateDecision.candidate_version_id.in_(versions),
    )
    for d in session.scalars(decisions.order_by(GateDecision.decided_at)):
        at = _as_dt(d.decided_at)
        if start <= at < start + timedelta(hours=width * len(counts)):
            label = f"{d.decision} v{d.candidate_version_id}"
            out.markers.append({"index": bucket(at), "label": label})
    return out


@dataclass(frozen=True)
class VersionsPage:
    """Model versions by lineage, their gate decisions, reward models and training runs."""

    lineages: dict[str, list[ModelVersion]]
    decisions: dict[int, list[GateDecision]]
    reward_models: list[RewardModelRecord]
    runs: list[TrainingRun]


def versions_page(session: Session, limit: int = 50) -> VersionsPage:
    """Everything the model-versions page shows (newest first)."""
    lineages: dict[str, list[ModelVersion]] = defaultdict(list)
    for v in session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc())):
        lineages[v.base_model].append(v)
    decisions: dict[int, list[GateDecision]] = defaultdict(list)
    for d in session.scalars(select(GateDecision).order_by(GateDecision.id.desc()).limit(500)):
        decisions[d.candidate_version_id].append(d)
    reward_models = list(
        session.scalars(select(RewardModelRecord).order_by(RewardModelRecord.id.desc()).limit(limit))
    )
    runs = list(session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit)))
    return VersionsPage(dict(lineages), dict(decisions), reward_models, runs)


def ingest_figures(session: Session, now: datetime | None = None) -> dict[str, Any]:
    """Ingest figures from the newest ``INGEST_WINDOW`` stored events (read by primary key,
    so the page stays cheap on a large table): seconds since the newest was stored, the
    median and largest lag (stored minus event time), and events stored per minute."""
    now = now or datetime.now(UTC)
    stmt = select(Event.received_time, Event.event_time).order_by(Event.id.desc())
    rows = [(_as_dt(r), _as_dt(e)) for r, e in session.execute(stmt.limit(INGEST_WINDOW))]
    if not rows:
        return {"events": 0, "last_event_s": None, "lag_s": None, "max_lag_s": None,
                "per_minute": None}
    lags = [(r - e).total_seconds() for r, e in rows]
    newest, oldest = max(r for r, _ in rows), min(r for r, _ in rows)
    span = (newest - oldest).total_seconds()
    return {
        "events": len(rows),
        "last_event_s": (now - newest).total_seconds(),
        "lag_s": float(np.median(lags)),
        "max_lag_s": max(lags),
        "per_minute": 60.0 * len(rows) / span if span > 0 else None,
    }


def dead_letters(session: Session, limit: int = 20) -> tuple[int, list[DeadLetter]]:
    """How many dead letters there are, and the newest ``limit``."""
    total = session.scalar(select(func.count()).select_from(DeadLetter)) or 0
    rows = list(session.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)))
    return int(total), rows


def campaign_of_variant(session: Session, variant_id: int) -> int:
    """The campaign of variant ``variant_id``; NotFoundError when there is none."""
    campaign_id = session.scalar(select(Variant.campaign_id).where(Variant.id == variant_id))
    if campaign_id is None:
        raise NotFoundError(f"variant {variant_id} does not exist")
    return int(campaign_id)
