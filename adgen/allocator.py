"""The in-process allocator: Thompson sampling over every active campaign's live variants.

Posteriors are loaded from ``arm_stats`` every ``settings.refresh_interval_s`` by a
background thread (batched updates); a decision never touches the database. When the
database cannot be read the allocator keeps serving from the last posteriors it loaded
and reports itself degraded.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from adgen.bandit import Controls, DiscountedEvidence, ThompsonSampling
from adgen.db.models import ArmStats, Campaign, ModelVersion, Variant
from adgen.errors import ConflictError, NotFoundError, StorageError
from adgen.settings import Settings
from adgen.stats import successes_within
from adgen.vocabulary import CampaignStatus, VariantStatus, VersionStatus

logger = logging.getLogger(__name__)

#: Variants of versions in these states are never served, whatever their own status.
UNSERVED_VERSION_STATUSES = (VersionStatus.ROLLED_BACK,)
#: Impression ids are drawn from the OS in blocks of this many (32 hex characters each).
ID_BLOCK = 512


def _new_ids() -> list[str]:
    """A block of random 128-bit impression ids, as hex."""
    raw = os.urandom(16 * ID_BLOCK).hex()
    return [raw[i : i + 32] for i in range(0, len(raw), 32)]


class Allocation(NamedTuple):
    """One decision: which variant an impression gets, and with what probability."""

    impression_id: str
    variant_id: int
    text: str
    propensity: float
    campaign_id: int


@dataclass(frozen=True)
class ArmView:
    """A served arm as the allocator sees it (for inspection and tests)."""

    variant_id: int
    successes: float
    trials: float
    candidate: bool
    probability: float


@dataclass
class _Arm:
    variant_id: int
    text: str
    successes: float
    trials: float
    candidate: bool


@dataclass
class _CampaignState:
    campaign_id: int
    status: str
    arms: list[_Arm]
    policy: ThompsonSampling | None
    key: tuple[object, ...]


class Allocator:
    """Serves ``allocate(campaign_id)`` from posteriors refreshed in the background."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        rng: np.random.Generator,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._rng = rng
        self._clock = clock
        self._discount = (
            DiscountedEvidence(settings.discount_half_life_s)
            if settings.discount_half_life_s
            else None
        )
        self._campaigns: dict[int, _CampaignState] = {}
        self._loaded_at: float | None = None
        self._refresh_lock = threading.Lock()
        self._choose_lock = threading.Lock()
        self._ids: list[str] = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.refresh_failures = 0

    # --- state ---------------------------------------------------------------------------
    @property
    def refresh_age_s(self) -> float:
        """Seconds since posteriors were last loaded (infinite before the first load)."""
        if self._loaded_at is None:
            return float("inf")
        return self._clock() - self._loaded_at

    @property
    def degraded(self) -> bool:
        """True when the last refresh failed (serving from older posteriors, if any)."""
        return self.last_error is not None

    @property
    def loaded(self) -> bool:
        """True once posteriors have been loaded at least once."""
        return self._loaded_at is not None

    @property
    def running(self) -> bool:
        """True while the background refresher runs."""
        return self._thread is not None and self._thread.is_alive()

    # --- decisions -------------------------------------------------------------------------
    def allocate(self, campaign_id: int) -> Allocation:
        """Choose a variant for one impression of ``campaign_id`` (no database access)."""
        state = self._campaigns.get(campaign_id)
        if state is None:
            if not self.loaded:
                raise StorageError(
                    "no posteriors loaded yet: the database has not been reachable since start"
                )
            raise NotFoundError(f"campaign {campaign_id} does not exist")
        if state.status != CampaignStatus.ACTIVE:
            raise ConflictError(f"campaign {campaign_id} is {state.status}, not active")
        if state.policy is None:
            raise ConflictError(
                f"campaign {campaign_id} has no active variants to serve; add some first"
            )
        with self._choose_lock:
            arm, propensity = state.policy.choose()
            if not self._ids:
                self._ids = _new_ids()
            impression_id = self._ids.pop()
        chosen = state.arms[arm]
        return Allocation(impression_id, chosen.variant_id, chosen.text, propensity, campaign_id)

    def arms(self, campaign_id: int) -> list[ArmView]:
        """The arms served for ``campaign_id`` with their evidence and probabilities."""
        state = self._campaigns.get(campaign_id)
        if state is None:
            raise NotFoundError(f"campaign {campaign_id} is not loaded")
        if state.policy is None:
            return []
        with self._choose_lock:
            p = state.policy.probabilities()
        return [
            ArmView(a.variant_id, a.successes, a.trials, a.candidate, float(p[i]))
            for i, a in enumerate(state.arms)
        ]

    # --- refreshing ------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Reload posteriors; on a database failure keep the last ones and return False."""
        with self._refresh_lock:
            try:
                rows, statuses = self._load()
            except SQLAlchemyError as exc:
                self.refresh_failures += 1
                if self.last_error is None:
                    logger.warning("posterior refresh failed, serving the last posteriors: %s", exc)
                first_line = (str(exc).strip().splitlines() or [""])[0]
                self.last_error = f"database unreachable: {type(exc).__name__}: {first_line}"
                return False
            self._campaigns = self._build(rows, statuses)
            self._loaded_at = self._clock()
            if self.last_error is not None:
                logger.info("posterior refresh recovered")
            self.last_error = None
            return True

    def wake(self) -> None:
        """Ask the background refresher to reload now (after an admin write)."""
        self._wake.set()

    def start(self) -> None:
        """Load once, then refresh every ``refresh_interval_s`` in a daemon thread."""
        if self.running:
            return
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="adgen-allocator", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the refresher and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        interval = self._settings.refresh_interval_s
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.refresh()
            except Exception:
                logger.exception("allocator refresher crashed; posteriors will go stale")
                self.last_error = "refresher crashed (see the log)"
                raise

    def _load(self) -> tuple[list[_Row], dict[int, tuple[str, str]]]:
        with self._sessions() as session:
            statuses = {
                cid: (status, reward)
                for cid, status, reward in session.execute(
                    select(Campaign.id, Campaign.status, Campaign.reward)
                )
            }
            stmt = (
                select(
                    Variant.campaign_id,
                    Variant.id,
                    Variant.text,
                    ModelVersion.status,
                    ArmStats.impressions,
                    ArmStats.clicks,
                    ArmStats.conversions,
                )
                .join(Campaign, Campaign.id == Variant.campaign_id)
                .outerjoin(ModelVersion, ModelVersion.id == Variant.model_version_id)
                .outerjoin(ArmStats, ArmStats.variant_id == Variant.id)
                .where(Variant.status == VariantStatus.ACTIVE)
                .where(Campaign.status == CampaignStatus.ACTIVE)
                .where(
                    (ModelVersion.status.is_(None))
                    | ModelVersion.status.not_in(UNSERVED_VERSION_STATUSES)
                )
                .order_by(Variant.campaign_id, Variant.id)
            )
            rows = [_Row(*r) for r in session.execute(stmt)]
        return rows, statuses

    def _build(
        self, rows: list[_Row], statuses: dict[int, tuple[str, str]]
    ) -> dict[int, _CampaignState]:
        by_campaign: dict[int, list[_Arm]] = {cid: [] for cid in statuses}
        for r in rows:
            trials = float(r.impressions or 0)
            reward = statuses[r.campaign_id][1]
            successes = float((r.clicks if reward == "click" else r.conversions) or 0)
            successes = successes_within(successes, trials)
            candidate = r.version_status == VersionStatus.CANDIDATE
            by_campaign[r.campaign_id].append(
                _Arm(r.variant_id, r.text, successes, trials, candidate)
            )
        if self._discount is not None:
            arms = [a for group in by_campaign.values() for a in group]
            s, n = self._discount.update(
                [a.variant_id for a in arms],
                [a.successes for a in arms],
                [a.trials for a in arms],
                self._clock(),
            )
            for a, si, ni in zip(arms, s, n, strict=True):
                a.successes, a.trials = float(si), float(ni)
        previous = self._campaigns
        return {
            cid: self._state(cid, statuses[cid][0], arms, previous.get(cid))
            for cid, arms in by_campaign.items()
        }

    def _state(
        self, campaign_id: int, status: str, arms: list[_Arm], previous: _CampaignState | None
    ) -> _CampaignState:
        settings = self._settings
        key = (
            status,
            tuple((a.variant_id, a.successes, a.trials, a.candidate) for a in arms),
            settings.min_exploration,
            settings.candidate_traffic_cap,
            settings.candidate_traffic_floor,
        )
        if previous is not None and previous.key == key:
            return previous  # nothing changed: keep the policy and its drawn block
        if not arms or status != CampaignStatus.ACTIVE:
            return _CampaignState(campaign_id, status, arms, None, key)
        controls = Controls(
            min_exploration=settings.min_exploration,
            cap=settings.candidate_traffic_cap,
            guaranteed=settings.candidate_traffic_floor,
            capped=tuple(i for i, a in enumerate(arms) if a.candidate),
        )
        policy = ThompsonSampling(
            len(arms), self._rng.spawn(1)[0], samples=settings.propensity_samples, controls=controls
        )
        policy.set_evidence([a.successes for a in arms], [a.trials for a in arms])
        policy.probabilities()  # the Monte Carlo work happens here, off the request path
        return _CampaignState(campaign_id, status, arms, policy, key)


@dataclass(frozen=True)
class _Row:
    campaign_id: int
    variant_id: int
    text: str
    version_status: str | None
    impressions: int | None
    clicks: int | None
    conversions: int | None
