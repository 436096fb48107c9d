"""The closed loop on one machine: what ``adgen demo`` and ``bench/closed_loop.py`` run.

Campaigns from briefs, variants from the active model version of each locale's lineage,
simulated traffic through the real allocator → Kafka → ingest → database, then once per
round the trainer's own scheduled job (gate the open candidates, then a training cycle per
lineage that rolls its candidate out under the traffic cap). A round stands for one
training interval, so the scheduler's gate passes between jobs run during the traffic
(``gate_every``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adgen.allocator import Allocator
from adgen.audience import Audience
from adgen.brief import Brief
from adgen.bus.broker import EmbeddedBroker
from adgen.bus.producer import EventProducer
from adgen.bus.topics import ensure_topic
from adgen.db import migrate
from adgen.db.campaigns import create_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import Campaign, GateDecision, ModelVersion, Variant
from adgen.model.versions import active_version, lineage_of
from adgen.settings import Settings
from adgen.simulation import TrafficResult, TrafficSimulator
from adgen.vocabulary import BudgetRule, Decision, VariantStatus, VersionStatus

if TYPE_CHECKING:
    from adgen.training.scheduler import JobReport, TrainingJob

logger = logging.getLogger(__name__)

DEMO_BRIEFS = Path(__file__).parent / "data" / "demo_briefs.json"
#: Eight English briefs (varied products, brands, audiences): the closed-loop benchmark's.
BRIEFS_EN = Path(__file__).parent / "data" / "briefs_en.json"


def load_briefs(path: Path = DEMO_BRIEFS) -> list[Brief]:
    """The briefs in a JSON list file (the built-in demo briefs by default)."""
    return [Brief.model_validate(item) for item in json.loads(path.read_text(encoding="utf-8"))]


@dataclass(frozen=True)
class DemoConfig:
    """How much the loop does per round.

    With ``decide_in_one_round`` (the demo's choice) a candidate is decided within the
    round after the one that made it: the loop lowers ``gate_max_impressions`` to what one
    round surely gives it (``one_round_gate_max``) and settles a candidate one round's
    evidence leaves unsure by the smaller expected loss (``BudgetRule.LOWER_LOSS``), so the
    demo shows promotions and rollbacks round by round (while a candidate is before the
    gate, the next cycle trains no new one). Without it the gate keeps the production
    settings, and an undecided candidate keeps serving its share until it is decided.
    """

    rounds: int = 5
    impressions_per_round: int = 20_000
    batch_size: int = 1_000
    variants_per_campaign: int = 12
    seed: int = 0
    decide_in_one_round: bool = True

    def __post_init__(self) -> None:
        for name in ("rounds", "impressions_per_round", "batch_size", "variants_per_campaign"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")


def one_round_gate_max(settings: Settings, impressions_per_round: int) -> int:
    """The gate's sample size that one round surely gives a candidate: nine tenths of its
    guaranteed share of the round (half its cap when nothing is guaranteed), at most the
    configured ``gate_max_impressions``."""
    share = settings.candidate_traffic_floor or settings.candidate_traffic_cap / 2
    return max(1, min(settings.gate_max_impressions, int(0.9 * share * impressions_per_round)))


def gate_settings(settings: Settings, config: DemoConfig) -> Settings:
    """The settings the loop runs under: with ``decide_in_one_round``, the gate's budget is
    what one round surely gives a candidate, settled by the smaller expected loss."""
    if not config.decide_in_one_round:
        return settings
    budget = one_round_gate_max(settings, config.impressions_per_round)
    return settings.model_copy(
        update={"gate_max_impressions": budget, "gate_budget_rule": BudgetRule.LOWER_LOSS}
    )


def gate_every(settings: Settings, impressions_per_round: int) -> int | None:
    """Impressions between two gate passes during a round, the scheduler's
    ``gate_interval_s`` in traffic: a round stands for one ``train_interval_s``. None when
    the gate runs only with the training job (no interval, a cron schedule, or an
    interval no shorter than the training one)."""
    interval, train = settings.gate_interval_s, settings.train_interval_s
    if interval <= 0 or settings.train_cron or not train or interval >= train:
        return None
    return max(1, round(impressions_per_round * interval / train))


@dataclass
class GateBetweenBatches:
    """The scheduler's gate passes between training jobs, run by the traffic simulator
    after each batch that crosses a multiple of ``every`` impressions."""

    job: TrainingJob
    every: int | None
    decisions: list[tuple[int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    _passes: int = 0

    def __call__(self, served: int) -> None:
        """Run a gate pass if ``served`` impressions crossed the next multiple of ``every``."""
        if self.every is None or served // self.every <= self._passes:
            return
        self._passes = served // self.every
        report = self.job.gate_pass()
        self.decisions += report.decisions
        self.errors += report.errors
        self.seconds += report.seconds


def pin_torch_threads(threads: int | None) -> None:
    """Let torch use ``threads`` CPU threads (None: leave its default, one per core)."""
    if threads is not None:
        import torch  # here, so that importing adgen does not load torch

        torch.set_num_threads(threads)


#: Phases of a training cycle: the metric of its run (seconds) each is read from.
CYCLE_PHASES = {
    "reward_model": "reward_model_s",
    "model_load": "load_s",
    "rm_sampling": "sample_s",
    "dpo": "train_seconds",
    "rollout": "rollout_s",
}


def round_phases(
    traffic: TrafficResult, job: JobReport, gate_between_s: float = 0.0
) -> dict[str, float]:
    """Wall seconds of one round by phase: traffic (allocation, simulation, producing),
    ingest (flush and the wait for the database), the gate (its passes during the traffic,
    ``gate_between_s``, and the job's), and each cycle's phases (``CYCLE_PHASES``;
    ``training_other`` is the rest of the cycles: data, held-out margins, saving)."""
    phases = {"traffic": traffic.send_s, "ingest": traffic.ingest_s}
    cycles = sum(c.duration_s for c in job.cycles)
    phases["gate"] = gate_between_s + max(0.0, job.seconds - cycles)
    for phase, metric in CYCLE_PHASES.items():
        phases[phase] = sum(float(c.metrics.get(metric, 0.0)) for c in job.cycles)
    phases["training_other"] = max(0.0, cycles - sum(phases[p] for p in CYCLE_PHASES))
    return {k: round(v, 2) for k, v in phases.items()}


#: Who served a round's traffic: a candidate version's variants, the variants the last
#: training job wrote for the serving version (new to the bandit), and the older ones.
SERVED_GROUPS = ("candidate", "fresh", "proven")


def served_groups(
    served: dict[int, list[int]], group_of: dict[int, str], true_ctr: Callable[[int], float]
) -> dict[str, list[float]]:
    """Impressions and true CTR per impression of each group (``SERVED_GROUPS``) in a
    round's traffic; ``served`` maps variant → [impressions, clicks], ``group_of`` variant →
    group. A group that served nothing is left out."""
    out: dict[str, list[float]] = {}
    for group in SERVED_GROUPS:
        counts = [(n, true_ctr(v)) for v, (n, _) in served.items() if group_of[v] == group]
        impressions = sum(n for n, _ in counts)
        if impressions:
            out[group] = [impressions, sum(n * p for n, p in counts) / impressions]
    return out


@dataclass
class RoundReport:
    """One round: who served, how good its texts truly are, what the traffic earned."""

    round: int
    serving: dict[str, int]
    generated_true_ctr: float
    served_ctr: float
    expected_ctr: float
    """The served variants' true CTR per impression: ``served_ctr`` without the click draws."""
    impressions: int
    clicks: int
    regret: float
    promoted: list[int] = field(default_factory=list)
    rolled_back: list[int] = field(default_factory=list)
    candidates: list[int] = field(default_factory=list)
    candidate_true_ctr: float | None = None
    training: list[str] = field(default_factory=list)
    cycles: int = 0
    """Training cycles the round ran (trained, skipped or failed)."""
    failed_cycles: int = 0
    failures: list[str] = field(default_factory=list)
    """One line per failed cycle or gate step: what failed and why."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall seconds by phase (``round_phases``)."""
    groups: dict[str, list[float]] = field(default_factory=dict)
    """Group → [impressions, true CTR per impression] of the traffic (``served_groups``)."""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able figures."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class LoopSummary:
    """The loop's outcome in figures a person can read out."""

    serving: dict[str, int]
    """locale -> the version serving it now."""
    base: dict[str, int]
    """locale -> the bare base version of that lineage."""
    lift: dict[str, float | None]
    """locale -> true CTR of the serving version's texts over the base's, minus 1 (None
    when the base still serves)."""
    rolled_back: list[tuple[int, str]]
    """(candidate version, the gate's or operator's reason), in order."""
    cycles: int
    failed_cycles: int

    @property
    def could_not_learn(self) -> bool:
        """True when training was attempted and every attempt failed."""
        return self.cycles > 0 and self.failed_cycles >= self.cycles


class ClosedLoop:
    """Owns the embedded broker (when needed), the allocator, producer and ingest thread."""

    def __init__(
        self,
        settings: Settings,
        audience: Audience,
        config: DemoConfig,
        briefs: Sequence[Brief] | None = None,
    ) -> None:
        self.audience = audience
        self.config = config
        self.briefs = list(briefs) if briefs is not None else load_briefs()
        self._settings = settings
        self._broker: EmbeddedBroker | None = None
        self._stop = threading.Event()
        self._ingest_thread: threading.Thread | None = None
        self._ingest_error: BaseException | None = None
        self.rounds: list[RoundReport] = []
        self.served: dict[int, list[int]] = {}
        self.campaign_ids: list[int] = []
        self._fresh_after = 0
        """Variants with a larger id were written by the last training job (or the setup)."""

    # --- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> ClosedLoop:
        from adgen.ingest.consumer import IngestConsumer
        from adgen.model.artifacts import artifact_store
        from adgen.model.versions import ModelRegistry
        from adgen.training.scheduler import TrainingJob

        settings = self._settings
        pin_torch_threads(settings.torch_threads)
        settings = gate_settings(settings, self.config)
        if settings.kafka_bootstrap is None:
            self._broker = EmbeddedBroker().start()
            settings = settings.model_copy(update={"kafka_bootstrap": self._broker.bootstrap})
        self.settings = settings
        bootstrap = settings.kafka_bootstrap
        assert bootstrap is not None  # set above when the embedded broker started
        self.engine = make_engine(settings.db_url)
        migrate.upgrade(settings.db_url)
        self.sessions = session_factory(self.engine)
        ensure_topic(bootstrap, settings.events_topic, settings.topic_partitions)
        self.registry = ModelRegistry(settings, artifact_store(settings, self.sessions))
        self.allocator = Allocator(self.sessions, settings, np.random.default_rng(self.config.seed))
        self.producer = EventProducer(bootstrap, settings.events_topic)
        self.consumer = IngestConsumer(settings, self.sessions)
        self._ingest_thread = threading.Thread(
            target=self._ingest, name="adgen-ingest", daemon=True
        )
        self._ingest_thread.start()
        self.simulator = TrafficSimulator(
            self.sessions,
            self.allocator,
            self.producer,
            self.audience,
            np.random.default_rng(self.config.seed + 1),
        )
        self.job = TrainingJob(settings, self.sessions, self.registry)
        return self

    def _ingest(self) -> None:
        try:
            self.consumer.run(self._stop)
        except BaseException as exc:  # reported by the traffic wait; the thread just ends
            self._ingest_error = exc

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._ingest_thread is not None:
            self._ingest_thread.join(timeout=30)
        self.producer.close()
        self.engine.dispose()
        if self._broker is not None:
            self._broker.stop()

    # --- the loop --------------------------------------------------------------------------
    def setup(self, progress: Callable[[int], None] | None = None) -> list[int]:
        """Create the campaigns and let each lineage's active version write their variants."""
        from adgen.generator import generate_and_store

        for brief in self.briefs:
            with transaction(self.sessions) as session:
                campaign_id = create_campaign(session, brief).id
            generate_and_store(
                self.sessions,
                self.registry,
                campaign_id,
                self.config.variants_per_campaign,
                rng_seed=self.config.seed + len(self.campaign_ids),
            )
            self.campaign_ids.append(campaign_id)
            if progress is not None:
                progress(1)
        self.allocator.refresh()
        return self.campaign_ids

    def run_round(self, number: int, progress: Callable[[int], None] | None = None) -> RoundReport:
        """Serve one round of traffic, then run the scheduled training job once."""
        serving = self._serving()
        candidates_before = self._candidate_versions()
        gate = GateBetweenBatches(
            self.job, gate_every(self.settings, self.config.impressions_per_round)
        )
        traffic = self.simulator.run(
            self.campaign_ids,
            self.config.impressions_per_round,
            self.config.batch_size,
            progress,
            between_batches=gate,
        )
        if self._ingest_error is not None:
            raise self._ingest_error
        self._accumulate(traffic)
        groups = served_groups(
            traffic.served,
            self._group_of(traffic.served, candidates_before),
            self.simulator.true_ctr,
        )
        written_before = self._last_variant_id()
        report = self.job()
        self._fresh_after = written_before
        decisions = gate.decisions + report.decisions
        promoted = [v for v, d in decisions if d == Decision.PROMOTE]
        rolled_back = [v for v, d in decisions if d == Decision.ROLLBACK]
        candidates = [c.candidate_version_id for c in report.cycles if c.candidate_version_id]
        training = [
            f"{c.base_model}: {c.status}" + (f" ({c.reason})" if c.reason else "")
            for c in report.cycles
        ]
        self.allocator.refresh()
        result = RoundReport(
            round=number,
            serving=serving,
            generated_true_ctr=self.true_ctr_of_versions(list(serving.values())),
            served_ctr=traffic.ctr,
            expected_ctr=traffic.expected_ctr,
            impressions=traffic.impressions,
            clicks=traffic.clicks,
            regret=traffic.regret,
            promoted=promoted,
            rolled_back=rolled_back,
            candidates=candidates,
            candidate_true_ctr=self.true_ctr_of_versions(candidates) if candidates else None,
            training=training,
            cycles=len(report.cycles) + report.failed_cycles,
            failed_cycles=report.failed_cycles,
            failures=gate.errors + list(report.errors),
            seconds=round_phases(traffic, report, gate.seconds),
            groups=groups,
        )
        self.rounds.append(result)
        return result

    def summary(self) -> LoopSummary:
        """What the loop learned: who serves each locale now, how good its texts are next to
        the base model's, and which candidates were rolled back and why."""
        serving = self._serving()
        with self.sessions() as s:
            first = {loc: self._base_of(s, v) for loc, v in serving.items()}
            decisions = s.execute(
                select(GateDecision.candidate_version_id, GateDecision.details)
                .where(GateDecision.decision == Decision.ROLLBACK)
                .order_by(GateDecision.id)
            ).all()
        lifts: dict[str, float | None] = {}
        for loc, version in serving.items():
            base = self.true_ctr_of_versions([first[loc]])
            now = self.true_ctr_of_versions([version])
            lifts[loc] = now / base - 1 if base > 0 and version != first[loc] else None
        rolled_back = [(v, str((d or {}).get("reason", "no reason given"))) for v, d in decisions]
        failed = sum(r.failed_cycles for r in self.rounds)
        cycles = sum(r.cycles for r in self.rounds)
        return LoopSummary(serving, first, lifts, rolled_back, cycles, failed)

    @staticmethod
    def _base_of(session: Session, version_id: int) -> int:
        """The root of ``version_id``'s lineage (its bare base version)."""
        version = session.get_one(ModelVersion, version_id)
        while version.parent_id is not None:
            version = session.get_one(ModelVersion, version.parent_id)
        return version.id

    def _accumulate(self, traffic: TrafficResult) -> None:
        for vid, (impressions, clicks) in traffic.served.items():
            total = self.served.setdefault(vid, [0, 0])
            total[0] += impressions
            total[1] += clicks

    def _group_of(self, variant_ids: Iterable[int], candidates: set[int]) -> dict[int, str]:
        """Each variant's group (``SERVED_GROUPS``) during the round now ending; a variant of
        a version that was a candidate when the round began stays ``candidate`` for the round
        even when the gate decided it during the traffic."""
        with self.sessions() as s:
            rows = s.execute(
                select(Variant.id, Variant.model_version_id).where(
                    Variant.id.in_(list(variant_ids))
                )
            ).all()
        return {
            vid: "candidate"
            if version in candidates
            else "fresh"
            if vid > self._fresh_after
            else "proven"
            for vid, version in rows
        }

    def _candidate_versions(self) -> set[int]:
        with self.sessions() as s:
            candidate = ModelVersion.status == VersionStatus.CANDIDATE
            return set(s.scalars(select(ModelVersion.id).where(candidate)))

    def _last_variant_id(self) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.max(Variant.id))) or 0)

    def _serving(self) -> dict[str, int]:
        """The active version of each lineage that has campaigns here."""
        with self.sessions() as s:
            locales = {
                loc
                for (loc,) in s.execute(
                    select(Campaign.locale).where(Campaign.id.in_(self.campaign_ids)).distinct()
                )
            }
            out: dict[str, int] = {}
            for locale in sorted(locales):
                out[locale] = active_version(s, lineage_of(self.settings, locale)).id
            return out

    def true_ctr_of_versions(self, version_ids: Sequence[int]) -> float:
        """Mean true CTR of the variants these versions wrote here (all that passed guardrails)."""
        with self.sessions() as s:
            rows = s.execute(
                select(Variant.text, Campaign.brand, Campaign.locale)
                .join(Campaign, Campaign.id == Variant.campaign_id)
                .join(ModelVersion, ModelVersion.id == Variant.model_version_id)
                .where(
                    Variant.model_version_id.in_(version_ids),
                    Variant.campaign_id.in_(self.campaign_ids),
                    Variant.status != VariantStatus.REJECTED,
                )
            ).all()
        if not rows:
            return float("nan")
        return float(np.mean([self.audience.true_ctr(t, b, loc) for t, b, loc in rows]))
