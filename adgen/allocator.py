"""The in-process allocator: Thompson sampling over every active campaign's live variants.

Posteriors are loaded from ``arm_stats`` every ``settings.refresh_interval_s`` by a
background thread (batched updates); a decision never touches the database. When the
database cannot be read the allocator keeps serving from the last posteriors it loaded
and reports itself degraded.

Each time a campaign's serving probabilities change, they are stored as an allocation
snapshot (``allocation_snapshots``) and every impression served under them carries its id,
for the sample-ratio-mismatch check (:mod:`adgen.srm`): one row per campaign per refresh
that changed something, never a write per decision.

Operator changes (pause, resume, traffic controls) call ``reload_campaign`` after their
commit, so this allocator serves the change from its next decision on; other API replicas
pick it up at their next refresh.

A contextual campaign (``campaigns.context_attributes``) also keeps one policy per cell
(:mod:`adgen.cells`), built at each refresh from ``cell_stats`` pooled towards the
campaign's evidence (:mod:`adgen.bandit.pooling`), with its own snapshot. A request whose
context names a cell not seen yet is admitted while the campaign has fewer than its cap of
cells: until the next refresh it is served from the campaign-level policy (which is what
the pooled prior of an empty cell amounts to) but logged with its cell, so its evidence
accumulates from the first impression. A request without the attributes, or beyond the
cap, is served at the campaign level. The cap holds per replica; replicas that admit
different new cells at once may briefly exceed it, and the next refresh keeps the cells
with the most impressions. With ``ADGEN_DISCOUNT_HALF_LIFE_S`` set, the campaign-level
evidence (and so the cells' prior) is discounted; the cells' own counts are not.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased, sessionmaker

from adgen.bandit import Controls, DiscountedEvidence, ThompsonSampling
from adgen.bandit.pooling import pooled_evidence, prior_strength
from adgen.cells import MAX_CELL_NAME, CellKey, cell_key, cell_name, parse_cell
from adgen.db.models import (
    AllocationSnapshot,
    ArmStats,
    Campaign,
    CellStats,
    ModelVersion,
    Variant,
)
from adgen.errors import ConflictError, NotFoundError, StorageError
from adgen.operations import TrafficControls, resolve_controls
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
    snapshot_id: int | None = None
    cell: str | None = None


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
    control: bool = False


@dataclass
class _Cell:
    """One cell of a contextual campaign; ``policy`` None until the refresh that builds it
    (the campaign-level policy and snapshot serve it meanwhile)."""

    name: str
    policy: ThompsonSampling | None = None
    snapshot_id: int | None = None
    successes: tuple[float, ...] = ()
    trials: tuple[float, ...] = ()


@dataclass
class _CampaignState:
    campaign_id: int
    status: str
    arms: list[_Arm]
    policy: ThompsonSampling | None
    key: tuple[object, ...]
    snapshot_id: int | None = None
    attributes: tuple[str, ...] = ()
    max_cells: int = 0
    cells: dict[CellKey, _Cell] = field(default_factory=dict)
    prior_strength: float | None = None


@dataclass(frozen=True)
class _CampaignRow:
    status: str
    reward: str
    controls: TrafficControls
    attributes: tuple[str, ...] = ()
    max_cells: int = 0


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
    def allocate(
        self, campaign_id: int, context: Mapping[str, object] | None = None
    ) -> Allocation:
        """Choose a variant for one impression of ``campaign_id`` in ``context`` (the
        request's attributes; used by contextual campaigns), with no database access."""
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
        policy, snapshot_id, name = state.policy, state.snapshot_id, None
        if state.attributes and context:
            key = cell_key(context, state.attributes)
            if key is not None:
                cell = state.cells.get(key) or self._admit(state, key)
                if cell is not None:
                    name = cell.name
                    if cell.policy is not None:
                        policy, snapshot_id = cell.policy, cell.snapshot_id
        with self._choose_lock:
            arm, propensity = policy.choose()
            if not self._ids:
                self._ids = _new_ids()
            impression_id = self._ids.pop()
        chosen = state.arms[arm]
        return Allocation(
            impression_id, chosen.variant_id, chosen.text, propensity, campaign_id,
            snapshot_id, name,
        )

    def _admit(self, state: _CampaignState, key: CellKey) -> _Cell | None:
        """A new cell for ``key`` while the campaign is under its cap, else None (the
        campaign level)."""
        name = cell_name(state.attributes, key)
        if len(name) > MAX_CELL_NAME:
            return None
        with self._choose_lock:
            cell = state.cells.get(key)
            if cell is None and len(state.cells) < state.max_cells:
                cell = state.cells[key] = _Cell(name)
            return cell

    def arms(self, campaign_id: int, cell: str | None = None) -> list[ArmView]:
        """The arms served for ``campaign_id`` (or one of its cells, by name) with their
        evidence (pooled, for a cell) and probabilities."""
        state = self._campaigns.get(campaign_id)
        if state is None:
            raise NotFoundError(f"campaign {campaign_id} is not loaded")
        policy = state.policy
        if cell:
            with self._choose_lock:
                found = [c for c in state.cells.values() if c.name == cell]
            if not found:
                raise NotFoundError(f"campaign {campaign_id} has no cell {cell!r}")
            policy = found[0].policy or policy
        if policy is None:
            return []
        with self._choose_lock:
            p = policy.probabilities()
            s, n = policy.successes, policy.trials
        return [
            ArmView(a.variant_id, float(s[i]), float(n[i]), a.candidate, float(p[i]))
            for i, a in enumerate(state.arms)
        ]

    def cells(self, campaign_id: int) -> tuple[list[str], float | None]:
        """The cells ``campaign_id`` serves (built or admitted since the last refresh) and
        the prior strength they were pooled with (None before any cell was built)."""
        state = self._campaigns.get(campaign_id)
        if state is None:
            raise NotFoundError(f"campaign {campaign_id} is not loaded")
        with self._choose_lock:
            names = sorted(c.name for c in state.cells.values())
        return names, state.prior_strength

    # --- refreshing ------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Reload posteriors; on a database failure keep the last ones and return False."""
        with self._refresh_lock:
            try:
                rows, statuses, cell_rows = self._load()
            except SQLAlchemyError as exc:
                self.refresh_failures += 1
                if self.last_error is None:
                    logger.warning("posterior refresh failed, serving the last posteriors: %s", exc)
                first_line = (str(exc).strip().splitlines() or [""])[0]
                self.last_error = f"database unreachable: {type(exc).__name__}: {first_line}"
                return False
            previous = self._campaigns
            campaigns = self._build(rows, statuses, cell_rows)
            self._record_snapshots(
                [s for cid, s in campaigns.items() if s is not previous.get(cid)]
            )
            self._campaigns = campaigns
            self._loaded_at = self._clock()
            if self.last_error is not None:
                logger.info("posterior refresh recovered")
            self.last_error = None
            return True

    def reload_campaign(self, campaign_id: int) -> bool:
        """Reload now, after an operator's committed change to ``campaign_id`` (pause,
        resume, controls): the next decision follows it. False when the database could not
        be read (the change then applies at the next successful refresh)."""
        logger.info("reloading posteriors after a change to campaign %d", campaign_id)
        return self.refresh()

    def _record_snapshots(self, states: list[_CampaignState]) -> None:
        """Store the serving probabilities of rebuilt campaigns; their impressions carry
        the snapshot id. A failed write leaves the ids unset (those impressions are left
        out of the SRM check) and serving goes on."""
        served: list[tuple[_CampaignState | _Cell, int, list[int], ThompsonSampling, str]] = []
        for s in states:
            if s.policy is None:
                continue
            variant_ids = [a.variant_id for a in s.arms]
            served.append((s, s.campaign_id, variant_ids, s.policy, ""))
            served.extend(
                (c, s.campaign_id, variant_ids, c.policy, c.name)
                for c in s.cells.values() if c.policy is not None
            )
        if not served:
            return
        rows = [
            AllocationSnapshot(
                campaign_id=campaign_id,
                cell=cell,
                variant_ids=variant_ids,
                probabilities=policy.probabilities().tolist(),
            )
            for _, campaign_id, variant_ids, policy, cell in served
        ]
        try:
            with self._sessions.begin() as session:
                session.add_all(rows)
                session.flush()
                ids = [row.id for row in rows]
        except SQLAlchemyError as exc:
            logger.warning("allocation snapshots not stored (SRM will skip them): %s", exc)
            return
        for (owner, *_), snapshot_id in zip(served, ids, strict=True):
            owner.snapshot_id = snapshot_id

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

    def _load(self) -> tuple[list[_Row], dict[int, _CampaignRow], list[_CellRow]]:
        with self._sessions() as session:
            statuses = {
                cid: _CampaignRow(
                    status,
                    reward,
                    resolve_controls(floor, cap, explore, self._settings),
                    tuple(attributes or ()),
                    max_cells or self._settings.max_cells,
                )
                for cid, status, reward, floor, cap, explore, attributes, max_cells
                in session.execute(
                    select(
                        Campaign.id,
                        Campaign.status,
                        Campaign.reward,
                        Campaign.traffic_floor,
                        Campaign.traffic_cap,
                        Campaign.min_exploration,
                        Campaign.context_attributes,
                        Campaign.max_cells,
                    )
                )
            }
            rollout_of = aliased(ModelVersion)
            stmt = (
                select(
                    Variant.campaign_id,
                    Variant.id,
                    Variant.text,
                    ModelVersion.status,
                    rollout_of.status,
                    ArmStats.impressions,
                    ArmStats.clicks,
                    ArmStats.conversions,
                )
                .join(Campaign, Campaign.id == Variant.campaign_id)
                .outerjoin(ModelVersion, ModelVersion.id == Variant.model_version_id)
                .outerjoin(rollout_of, rollout_of.id == Variant.rollout_of)
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
            contextual = [cid for cid, c in statuses.items() if c.attributes]
            cell_rows = [
                _CellRow(*r)
                for r in session.execute(
                    select(
                        CellStats.campaign_id,
                        CellStats.cell,
                        CellStats.variant_id,
                        CellStats.impressions,
                        CellStats.clicks,
                        CellStats.conversions,
                    ).where(CellStats.campaign_id.in_(contextual))
                )
            ] if contextual else []
        return rows, statuses, cell_rows

    def _build(
        self, rows: list[_Row], statuses: dict[int, _CampaignRow], cell_rows: list[_CellRow]
    ) -> dict[int, _CampaignState]:
        by_campaign: dict[int, list[_Arm]] = {cid: [] for cid in statuses}
        for r in rows:
            trials = float(r.impressions or 0)
            reward = statuses[r.campaign_id].reward
            successes = float((r.clicks if reward == "click" else r.conversions) or 0)
            successes = successes_within(successes, trials)
            candidate = r.version_status == VersionStatus.CANDIDATE
            # the incumbent's texts of a candidate's cycle: what the gate compares it with
            control = not candidate and r.rollout_of_status == VersionStatus.CANDIDATE
            by_campaign[r.campaign_id].append(
                _Arm(r.variant_id, r.text, successes, trials, candidate, control)
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
        cells_of: dict[int, list[_CellRow]] = {}
        for c in cell_rows:
            cells_of.setdefault(c.campaign_id, []).append(c)
        previous = self._campaigns
        return {
            cid: self._state(cid, statuses[cid], arms, previous.get(cid), cells_of.get(cid, []))
            for cid, arms in by_campaign.items()
        }

    def _cell_evidence(
        self,
        campaign: _CampaignRow,
        arms: list[_Arm],
        cell_rows: list[_CellRow],
        previous: _CampaignState | None,
    ) -> dict[CellKey, _Cell]:
        """The cells to build: those in ``cell_stats`` and those admitted since the last
        refresh, the most-served first up to the cap, with their raw per-arm evidence."""
        attributes = campaign.attributes
        if not attributes or not arms:
            return {}
        index = {a.variant_id: i for i, a in enumerate(arms)}
        evidence: dict[CellKey, tuple[str, list[float], list[float]]] = {}
        if previous is not None and previous.attributes == attributes:
            with self._choose_lock:
                admitted = [(k, c.name) for k, c in previous.cells.items()]
            for k, name in admitted:
                evidence[k] = (name, [0.0] * len(arms), [0.0] * len(arms))
        for r in cell_rows:
            key = parse_cell(r.cell, attributes)
            i = index.get(r.variant_id)
            if key is None or i is None:
                continue  # a cell of other attributes, or an arm no longer served
            _, s, n = evidence.setdefault(key, (r.cell, [0.0] * len(arms), [0.0] * len(arms)))
            n[i] = float(r.impressions)
            wins = r.clicks if campaign.reward == "click" else r.conversions
            s[i] = min(float(wins), n[i])
        kept = sorted(evidence.items(), key=lambda kv: (-sum(kv[1][2]), kv[1][0]))
        return {
            k: _Cell(name, successes=tuple(s), trials=tuple(n))
            for k, (name, s, n) in kept[: campaign.max_cells]
        }

    def _state(
        self,
        campaign_id: int,
        campaign: _CampaignRow,
        arms: list[_Arm],
        previous: _CampaignState | None,
        cell_rows: list[_CellRow],
    ) -> _CampaignState:
        status, traffic = campaign.status, campaign.controls
        cells = self._cell_evidence(campaign, arms, cell_rows, previous)
        key = (
            status,
            tuple((a.variant_id, a.successes, a.trials, a.candidate, a.control) for a in arms),
            traffic,
            campaign.attributes,
            campaign.max_cells,
            tuple((c.name, c.successes, c.trials) for c in cells.values()),
        )
        if previous is not None and previous.key == key:
            return previous  # nothing changed: keep the policy and its drawn block
        state = _CampaignState(
            campaign_id, status, arms, None, key,
            attributes=campaign.attributes, max_cells=campaign.max_cells,
        )
        if not arms or status != CampaignStatus.ACTIVE:
            return state
        controls = Controls(
            min_exploration=traffic.min_exploration,
            cap=traffic.cap,
            guaranteed=traffic.floor,
            capped=tuple(i for i, a in enumerate(arms) if a.candidate),
            control=tuple(i for i, a in enumerate(arms) if a.control),
        )
        state.policy = self._policy(
            controls, [a.successes for a in arms], [a.trials for a in arms]
        )
        if cells:
            cell_s = np.array([c.successes for c in cells.values()])
            cell_n = np.array([c.trials for c in cells.values()])
            tau = prior_strength(
                cell_s, cell_n,
                min_strength=self._settings.cell_prior_min,
                max_strength=self._settings.cell_prior_max,
            )
            pooled_s, pooled_n = pooled_evidence(
                cell_s, cell_n,
                np.array([a.successes for a in arms]), np.array([a.trials for a in arms]),
                tau,
            )
            for i, cell in enumerate(cells.values()):
                cell.policy = self._policy(controls, pooled_s[i], pooled_n[i])
            state.cells, state.prior_strength = cells, tau
        return state

    def _policy(
        self, controls: Controls, successes: Sequence[float] | np.ndarray,
        trials: Sequence[float] | np.ndarray,
    ) -> ThompsonSampling:
        policy = ThompsonSampling(
            len(successes),
            self._rng.spawn(1)[0],
            samples=self._settings.propensity_samples,
            controls=controls,
        )
        policy.set_evidence(successes, trials)
        policy.probabilities()  # the Monte Carlo work happens here, off the request path
        return policy


@dataclass(frozen=True)
class _Row:
    campaign_id: int
    variant_id: int
    text: str
    version_status: str | None
    rollout_of_status: str | None
    impressions: int | None
    clicks: int | None
    conversions: int | None


@dataclass(frozen=True)
class _CellRow:
    campaign_id: int
    cell: str
    variant_id: int
    impressions: int
    clicks: int
    conversions: int
