"""Scheduled retraining: APScheduler runs the training job on an interval or a cron.

Each job first lets the gate evaluate every open candidate, then runs a training cycle
per lineage (base model of the locales that active campaigns use). Between jobs the gate
alone runs every ``gate_interval_s``, so that a losing candidate stops taking traffic
within minutes rather than at the next training job. One job at a time
(``max_instances=1``), missed runs coalesced into one, a run late by more than
``train_misfire_grace_s`` skipped; across processes and replicas the trainer lock of
``run_cycle`` keeps a second run from training. A job that fails is logged and recorded
in the job's history (and a failed cycle in ``training_runs``); the scheduler keeps going.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from adgen.db.engine import make_engine, session_factory, transaction
from adgen.errors import ConfigError, ConflictError
from adgen.model.versions import open_candidates
from adgen.settings import Settings
from adgen.training.cycle import CycleResult, run_cycle
from adgen.training.evidence import lineages
from adgen.training.gate import evaluate

logger = logging.getLogger(__name__)

JOB_ID = "adgen-train"
GATE_JOB_ID = "adgen-gate"
Cycle = Callable[..., CycleResult]


@dataclass
class JobReport:
    """What one scheduled job did."""

    started_at: datetime
    seconds: float = 0.0
    cycles: list[CycleResult] = field(default_factory=list)
    decisions: list[tuple[int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed_cycles: int = 0
    """Training cycles that raised (each also has a line in ``errors``)."""

    @property
    def ok(self) -> bool:
        """True when no step of the job failed."""
        return not self.errors


class TrainingJob:
    """The scheduled unit of work: the gate on open candidates, then a cycle per lineage.

    ``cycle`` is ``run_cycle`` unless a test injects another; ``history`` keeps the last
    reports.
    """

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        registry: Any,
        *,
        cycle: Cycle = run_cycle,
        history: int = 100,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.registry = registry
        self.cycle = cycle
        self.history: deque[JobReport] = deque(maxlen=history)
        self._gate_lock = threading.Lock()
        """One gate pass at a time in this process (the training job's and the interval's)."""

    def __call__(self) -> JobReport:
        """Run the job once; failures are logged and reported, never raised."""
        report = JobReport(started_at=datetime.now(UTC))
        start = time.perf_counter()
        try:
            self._gate(report)
            with transaction(self.sessions) as session:
                bases = lineages(session, self.settings)
            for base in bases:
                self._cycle(base, report)
        except Exception as exc:
            logger.exception("training job failed; the scheduler keeps going")
            report.errors.append(f"{type(exc).__name__}: {exc}")
        report.seconds = time.perf_counter() - start
        self.history.append(report)
        return report

    def gate_pass(self) -> JobReport:
        """The gate alone, between training jobs: every open candidate evaluated once, only
        decisions recorded. Failures are logged and reported, never raised."""
        report = JobReport(started_at=datetime.now(UTC))
        start = time.perf_counter()
        self._gate(report, record_continue=False)
        report.seconds = time.perf_counter() - start
        return report

    def _gate(self, report: JobReport, *, record_continue: bool = True) -> None:
        with self._gate_lock:
            with transaction(self.sessions) as session:
                waiting = [v.id for v in open_candidates(session)]
            for version_id in waiting:
                try:
                    with transaction(self.sessions) as session:
                        decision = evaluate(
                            session, version_id, self.settings, record_continue=record_continue
                        )
                    if decision is not None:
                        report.decisions.append((version_id, decision.decision))
                except ConflictError:
                    # another replica's gate decided it since open_candidates() read it
                    logger.info("v%d was decided elsewhere meanwhile", version_id)
                except Exception as exc:
                    logger.exception("gate evaluation of v%d failed", version_id)
                    report.errors.append(f"gate v{version_id}: {type(exc).__name__}: {exc}")

    def _cycle(self, base: str, report: JobReport) -> None:
        try:
            result = self.cycle(
                self.settings,
                self.sessions,
                self.registry,
                base,
                progress=False,
            )
            report.cycles.append(result)
        except Exception as exc:
            logger.exception("training cycle for %s failed", base)
            report.errors.append(f"cycle {base}: {type(exc).__name__}: {exc}")
            report.failed_cycles += 1


def make_trigger(settings: Settings) -> BaseTrigger:
    """The cron trigger of ``train_cron`` when set, else the ``train_interval_s`` interval."""
    if settings.train_cron:
        try:
            return CronTrigger.from_crontab(settings.train_cron, timezone=UTC)
        except ValueError as exc:
            raise ConfigError(
                f"ADGEN_TRAIN_CRON={settings.train_cron!r} is not a crontab expression "
                f"(five fields, e.g. '0 3 * * *'): {exc}"
            ) from exc
    if settings.train_interval_s:
        return IntervalTrigger(seconds=settings.train_interval_s, timezone=UTC)
    raise ConfigError(
        "set ADGEN_TRAIN_INTERVAL_S (seconds) or ADGEN_TRAIN_CRON to schedule training"
    )


def build_scheduler(
    settings: Settings,
    job: Callable[[], object],
    gate: Callable[[], object] | None = None,
) -> BlockingScheduler:
    """A blocking scheduler with the training job (an interval job also runs at start) and,
    when ``gate`` is given and ``gate_interval_s`` is set, the gate every
    ``gate_interval_s`` between the training jobs."""
    trigger = make_trigger(settings)
    scheduler = BlockingScheduler(timezone=UTC)
    first = datetime.now(UTC) if isinstance(trigger, IntervalTrigger) else None
    scheduler.add_job(
        job,
        trigger=trigger,
        id=JOB_ID,
        name="training cycle + gate",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=settings.train_misfire_grace_s,
        **({"next_run_time": first} if first is not None else {}),
    )
    if gate is not None and settings.gate_interval_s > 0:
        scheduler.add_job(
            gate,
            trigger=IntervalTrigger(seconds=settings.gate_interval_s, timezone=UTC),
            id=GATE_JOB_ID,
            name="gate",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(settings.gate_interval_s)),
        )
    return scheduler


def run_scheduler(scheduler: BlockingScheduler, stop: threading.Event) -> None:
    """Block in ``scheduler`` until ``stop`` is set; the job in hand is finished first."""

    def _watch() -> None:
        stop.wait()
        while not scheduler.running:  # a stop before start() got going
            time.sleep(0.05)
        logger.info("stopping the trainer after the job in hand")
        scheduler.shutdown(wait=True)

    threading.Thread(target=_watch, name="adgen-trainer-stop", daemon=True).start()
    scheduler.start()


def run_trainer(settings: Settings, stop: threading.Event) -> None:
    """The trainer service: wire the database, registry and job, then schedule until ``stop``."""
    from adgen.model.versions import ModelRegistry

    engine = make_engine(settings.db_url)
    try:
        job = TrainingJob(settings, session_factory(engine), ModelRegistry(settings))
        scheduler = build_scheduler(settings, job, job.gate_pass)
        logger.info("trainer scheduled: %s", scheduler.get_job(JOB_ID).trigger)
        run_scheduler(scheduler, stop)
    finally:
        engine.dispose()
