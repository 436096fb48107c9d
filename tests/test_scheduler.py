"""The training scheduler: jobs run on the trigger, a failing job does not stop the next one."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import seed_evidence as seed
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from adgen.db.models import ModelVersion
from adgen.errors import ConfigError
from adgen.settings import Settings
from adgen.training.cycle import CycleResult
from adgen.training.scheduler import TrainingJob, build_scheduler, make_trigger, run_scheduler

BASE = "smollm2-135m-instruct"


class FlakyCycle:
    """A stand-in for run_cycle (the scheduler's neighbour): fails on its first call."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(
        self, settings: Settings, sessions: Any, registry: Any, base: str, **kw: Any
    ) -> CycleResult:
        self.calls.append(base)
        if len(self.calls) == 1:
            raise RuntimeError("injected failure")
        return CycleResult(
            run_id=len(self.calls), status="skipped", base_model=base, reason="nothing new"
        )


def test_a_failing_job_is_recorded_and_the_next_one_still_runs(
    pg_url: str, pg_sessions: sessionmaker[Session], tmp_path: Any
) -> None:
    with pg_sessions.begin() as session:
        cid = seed.campaign(session)
        base = seed.version(session, BASE, "active")
        base_ids = seed.arms(session, cid, [("Acme running shoes", 0, 0)], version_id=base.id)
        cand = seed.version(session, BASE, "candidate", parent_id=base.id)
        cand_ids = seed.arms(session, cid, [("Save 30% on Acme", 0, 0)], version_id=cand.id)
        after = cand.created_at + timedelta(seconds=1)
    with pg_sessions.begin() as session:
        seed.log(session, cid, base_ids[0], 2000, 40, at=after)
        seed.log(session, cid, cand_ids[0], 500, 30, at=after)

    settings = Settings(database_url=pg_url, var_dir=tmp_path, train_interval_s=0.2)
    cycle = FlakyCycle()
    job = TrainingJob(settings, pg_sessions, registry=None, cycle=cycle)
    scheduler = build_scheduler(settings, job)
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(scheduler, stop), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while len(job.history) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive() and not scheduler.running

    first, second = job.history[0], job.history[1]
    assert not first.ok and "RuntimeError: injected failure" in first.errors[0]
    assert second.ok and second.cycles[0].reason == "nothing new"
    assert cycle.calls[:2] == [BASE, BASE]  # one lineage: the English base model
    # the gate ran before the cycle in the first job, and promoted the winning candidate
    assert first.decisions == [(cand.id, "promote")] and second.decisions == []
    with pg_sessions() as session:
        assert session.get_one(ModelVersion, cand.id).status == "active"


def test_trigger_from_settings() -> None:
    assert isinstance(make_trigger(Settings(train_interval_s=60)), IntervalTrigger)
    assert isinstance(make_trigger(Settings(train_cron="0 3 * * *")), CronTrigger)
    with pytest.raises(ConfigError, match="not a crontab expression"):
        make_trigger(Settings(train_cron="every night"))
    with pytest.raises(ConfigError, match="ADGEN_TRAIN_INTERVAL_S"):
        make_trigger(Settings(train_interval_s=None))
    scheduler = build_scheduler(Settings(train_interval_s=60, train_misfire_grace_s=30), print)
    job = scheduler.get_jobs()[0]
    assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 30)
