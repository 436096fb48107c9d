"""The training scheduler: jobs run on the trigger, a failing job does not stop the next one."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
import seed_evidence as seed
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from adgen.db.models import GateDecision, ModelVersion
from adgen.errors import ConfigError
from adgen.settings import Settings
from adgen.training import scheduler as scheduler_module
from adgen.training.cycle import CycleResult
from adgen.training.scheduler import (
    GATE_JOB_ID,
    JOB_ID,
    TrainingJob,
    build_scheduler,
    make_trigger,
    run_scheduler,
)

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


def _lineage(
    pg_sessions: sessionmaker[Session],
) -> tuple[int, ModelVersion, int, int, datetime]:
    """A campaign with one text of the active base version and one of its candidate: the
    campaign, the candidate, the two texts' ids, and a moment after the candidate's birth."""
    with pg_sessions.begin() as session:
        cid = seed.campaign(session)
        base = seed.version(session, BASE, "active")
        base_ids = seed.arms(session, cid, [("Acme running shoes", 0, 0)], version_id=base.id)
        cand = seed.version(session, BASE, "candidate", parent_id=base.id)
        cand_ids = seed.arms(session, cid, [("Save 30% on Acme", 0, 0)], version_id=cand.id)
        return cid, cand, base_ids[0], cand_ids[0], cand.created_at + timedelta(seconds=1)


def test_a_failing_job_is_recorded_and_the_next_one_still_runs(
    pg_url: str, pg_sessions: sessionmaker[Session], tmp_path: Any
) -> None:
    cid, cand, base_text, cand_text, after = _lineage(pg_sessions)
    with pg_sessions.begin() as session:
        seed.log(session, cid, base_text, 2000, 40, at=after)
        seed.log(session, cid, cand_text, 500, 30, at=after)

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


def test_the_gate_between_jobs_records_decisions_only(
    pg_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    cid, cand, base_text, cand_text, after = _lineage(pg_sessions)
    with pg_sessions.begin() as session:  # too little to tell
        seed.log(session, cid, base_text, 60, 2, at=after)
        seed.log(session, cid, cand_text, 50, 2, at=after)
    job = TrainingJob(Settings(), pg_sessions, registry=None, cycle=FlakyCycle())

    unsure = job.gate_pass()
    assert unsure.ok and unsure.decisions == [] and unsure.seconds > 0
    with pg_sessions() as session:  # a "continue" every few minutes would flood the table
        assert session.query(GateDecision).count() == 0

    with pg_sessions.begin() as session:  # the candidate's text now clearly wins
        seed.log(session, cid, base_text, 2000, 40, at=after)
        seed.log(session, cid, cand_text, 500, 30, at=after)
    decided = job.gate_pass()
    assert decided.ok and decided.decisions == [(cand.id, "promote")]
    with pg_sessions() as session:
        assert [d.decision for d in session.query(GateDecision)] == ["promote"]
        assert session.get_one(ModelVersion, cand.id).status == "active"

    # another replica's gate decided it after this one listed the open candidates: skipped,
    # not an error, and nothing recorded twice
    monkeypatch.setattr(scheduler_module, "open_candidates", lambda session: [cand])
    late = job.gate_pass()
    assert late.ok and late.decisions == []
    with pg_sessions() as session:
        assert session.query(GateDecision).count() == 1


def test_the_gate_runs_on_its_own_interval_beside_the_training_job() -> None:
    settings = Settings(train_interval_s=3600, gate_interval_s=120)
    scheduler = build_scheduler(settings, print, print)
    gate = scheduler.get_job(GATE_JOB_ID)
    assert isinstance(gate.trigger, IntervalTrigger)
    assert gate.trigger.interval.total_seconds() == 120 and gate.max_instances == 1
    assert scheduler.get_job(JOB_ID) is not None
    off = build_scheduler(settings.model_copy(update={"gate_interval_s": 0}), print, print)
    assert [j.id for j in off.get_jobs()] == [JOB_ID]
    assert [j.id for j in build_scheduler(settings, print).get_jobs()] == [JOB_ID]
