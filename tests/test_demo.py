"""A short closed loop on the real broker, real PostgreSQL and the real bundled model:
the round table agrees with the database."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adgen.audience import load_audience
from adgen.brief import Brief
from adgen.cli.demo_cmd import demo_settings
from adgen.cli.demo_report import (
    OneLine,
    failure_line,
    no_traceback,
    round_line,
    summary_lines,
)
from adgen.db.models import ArmStats, Event, GateDecision, ModelVersion, TrainingRun, Variant
from adgen.errors import ModelError
from adgen.loop import (
    BRIEFS_EN,
    ClosedLoop,
    DemoConfig,
    GateBetweenBatches,
    LoopSummary,
    RoundReport,
    gate_every,
    gate_settings,
    load_briefs,
    one_round_gate_max,
    round_phases,
    served_groups,
)
from adgen.settings import Settings
from adgen.simulation import TrafficResult
from adgen.training.cycle import CycleResult
from adgen.training.scheduler import JobReport


def test_short_demo_round_table_matches_the_database(settings: Settings) -> None:
    briefs = [b for b in load_briefs() if b.locale == "en"][:1] + [
        b for b in load_briefs() if b.locale == "zh"
    ]
    settings = settings.model_copy(
        update={
            "train_steps": 2,
            "train_batch_size": 2,
            "min_pairs": 1,
            "pair_threshold": 0.6,
            "rm_samples": 4,
            "train_locales": ["en"],
            "gate_max_impressions": 400,
        }
    )
    config = DemoConfig(
        rounds=2, impressions_per_round=600, batch_size=200, variants_per_campaign=3
    )
    with ClosedLoop(settings, load_audience(), config, briefs) as loop:
        campaigns = loop.setup()
        for number in (1, 2):
            loop.run_round(number)
        rounds, served = loop.rounds, loop.served
        with loop.sessions() as s:
            stats = {a.variant_id: (a.impressions, a.clicks) for a in s.scalars(select(ArmStats))}
            impressions = s.scalar(
                select(func.count()).select_from(Event).where(Event.type == "impression")
            )
            runs = list(s.scalars(select(TrainingRun).order_by(TrainingRun.id)))
            versions = list(s.scalars(select(ModelVersion).order_by(ModelVersion.id)))
            decisions = list(s.scalars(select(GateDecision)))
            zh_variants = s.scalars(
                select(Variant).where(
                    Variant.campaign_id == campaigns[-1], Variant.status == "active"
                )
            ).all()

    assert len(campaigns) == 2 and [r.round for r in rounds] == [1, 2]
    # every served impression and click the simulator counted is in arm_stats, and nothing else
    assert {v: tuple(c) for v, c in served.items()} == {
        v: c for v, c in stats.items() if c != (0, 0)
    }
    assert sum(r.impressions for r in rounds) == impressions == 1200
    assert sum(r.clicks for r in rounds) == sum(c for _, c in stats.values())
    for r in rounds:
        assert 0 <= r.served_ctr <= 1 and 0 < r.generated_true_ctr < 1 and r.regret >= 0
        assert 0 < r.expected_ctr < 1
        assert set(r.serving) == {"en", "zh"}
    # the expected CTR is the served variants' true CTR, weighted by their impressions
    expected = sum(n * loop.simulator.true_ctr(v) for v, (n, _) in served.items())
    assert sum(r.expected_ctr * r.impressions for r in rounds) == pytest.approx(expected)
    # who served: the setup's variants are all new in round 1; round 1's job rolled out a
    # candidate, whose variants serve in round 2 beside the serving version's fresh ones
    for r in rounds:
        assert sum(n for n, _ in r.groups.values()) == r.impressions
        earned = sum(n * p for n, p in r.groups.values())
        assert earned == pytest.approx(r.expected_ctr * r.impressions)
    assert set(rounds[0].groups) == {"fresh"}
    assert "candidate" in rounds[1].groups and "proven" in rounds[1].groups
    # the trainer's job ran once per round for the English lineage only, and said what it did:
    # round 1 trained a candidate; round 2 gated it, and trained no new one while it waited
    assert [run.status for run in runs][:1] == ["succeeded"] and len(runs) == 2
    assert runs[1].status in {"succeeded", "skipped"}
    assert all(run.reason for run in runs if run.status == "skipped")
    en_base = loop.registry.base_name_for_locale("en")
    assert {run.base_model for run in runs} == {en_base}
    candidates = [v for v in versions if v.parent_id is not None]
    assert all(v.base_model == en_base for v in candidates)
    assert rounds[0].candidates == [runs[0].candidate_version_id]
    assert any(d.candidate_version_id == runs[0].candidate_version_id for d in decisions)
    # a round stands for a training interval, so the gate also ran during round 2's traffic
    # (every 50 impressions' batch here) and decided the candidate there, before the job
    first = runs[0].candidate_version_id
    assert [d.decision for d in decisions if d.candidate_version_id == first] in (
        ["promote"], ["rollback"]
    )
    assert first in rounds[1].promoted + rounds[1].rolled_back
    assert rounds[1].groups["candidate"][0] > 0  # counted as the candidate's all round
    assert zh_variants, "the Chinese campaign got variants from its own lineage"


def test_demo_settings_use_a_fresh_sqlite_file_and_keep_zh_out_of_training(
    tmp_path: Path,
) -> None:
    db = tmp_path / "demo.db"
    db.write_text("old")
    base = Settings(var_dir=tmp_path)
    fresh = demo_settings(base, train_steps=3, include_zh=False, keep=False)
    assert fresh.db_url == f"sqlite:///{db.as_posix()}" and not db.exists()
    assert fresh.train_steps == 3 and fresh.train_locales == ["en"]
    assert fresh.rm_samples == 16 < base.rm_samples  # the demo ranks fewer fresh samples
    db.write_text("old")
    kept = demo_settings(base, train_steps=None, include_zh=True, keep=True)
    assert db.exists() and kept.train_locales == ["en", "zh"]
    pg = Settings(var_dir=tmp_path, database_url="postgresql://x@127.0.0.1/db")
    assert demo_settings(pg, train_steps=None, include_zh=False, keep=False).db_url == pg.db_url


def test_briefs_file_is_valid() -> None:
    briefs = load_briefs()
    assert {b.locale for b in briefs} == {"en", "zh"}
    assert all(isinstance(b, Brief) for b in briefs)


def test_the_benchmark_briefs_are_eight_distinct_english_products() -> None:
    briefs = load_briefs(BRIEFS_EN)
    assert len(briefs) >= 8 and {b.locale for b in briefs} == {"en"}
    assert len({b.brand for b in briefs}) == len(briefs)
    assert len({b.audience for b in briefs}) == len(briefs)


def test_round_phases_split_the_job_into_gate_and_cycle_phases() -> None:
    traffic = TrafficResult(send_s=3.0, ingest_s=1.5)
    metrics = {"reward_model_s": 2.0, "load_s": 0.5, "sample_s": 4.0, "train_seconds": 10.0,
               "rollout_s": 3.0}
    cycle = CycleResult(1, "succeeded", "m", metrics=metrics, duration_s=21.0)
    job = JobReport(started_at=datetime.now(UTC), seconds=22.25, cycles=[cycle])
    phases = round_phases(traffic, job)
    assert phases == {"traffic": 3.0, "ingest": 1.5, "gate": 1.25, "reward_model": 2.0,
                      "model_load": 0.5, "rm_sampling": 4.0, "dpo": 10.0, "rollout": 3.0,
                      "training_other": 1.5}
    skipped = JobReport(started_at=datetime.now(UTC), seconds=0.5)
    assert round_phases(traffic, skipped)["gate"] == 0.5
    assert round_phases(traffic, skipped)["dpo"] == 0.0
    # the gate's passes during the traffic count as the gate's too
    assert round_phases(traffic, skipped, gate_between_s=0.25)["gate"] == 0.75


def test_a_round_is_a_training_interval_and_the_gate_runs_on_its_own_interval_within_it(
) -> None:
    assert gate_every(Settings(train_interval_s=3600, gate_interval_s=300), 20_000) == 1_667
    assert gate_every(Settings(train_interval_s=3600, gate_interval_s=300), 6) == 1
    off = [
        Settings(gate_interval_s=0),
        Settings(train_interval_s=600, gate_interval_s=600),
        Settings(train_cron="0 3 * * *", gate_interval_s=300),
    ]
    assert [gate_every(s, 20_000) for s in off] == [None, None, None]


class _GateOnly:
    """A stand-in for the TrainingJob (the loop's neighbour): each pass decides one version."""

    def __init__(self) -> None:
        self.passes = 0

    def gate_pass(self) -> JobReport:
        self.passes += 1
        return JobReport(
            started_at=datetime.now(UTC), seconds=0.5, decisions=[(self.passes, "rollback")]
        )


def test_the_gate_runs_after_each_batch_that_crosses_its_interval() -> None:
    job = _GateOnly()
    gate = GateBetweenBatches(job, every=1_667)  # type: ignore[arg-type]
    for served in (1_000, 2_000, 3_000, 4_000, 20_000):
        gate(served)
    # passes after 2,000 (crossed 1,667), 4,000 (crossed 3,334) and 20,000: one per batch
    # however many intervals the batch crossed
    assert job.passes == 3 and gate.seconds == 1.5
    assert gate.decisions == [(1, "rollback"), (2, "rollback"), (3, "rollback")]
    never = GateBetweenBatches(job, every=None)  # type: ignore[arg-type]
    never(20_000)
    assert job.passes == 3 and never.decisions == []


def test_served_groups_weigh_each_variant_by_its_impressions() -> None:
    served = {1: [300, 9], 2: [100, 2], 3: [50, 0], 4: [0, 0]}
    group_of = {1: "proven", 2: "proven", 3: "candidate", 4: "fresh"}
    true = {1: 0.04, 2: 0.02, 3: 0.05, 4: 0.9}
    groups = served_groups(served, group_of, true.__getitem__)
    assert groups == {"candidate": [50, 0.05], "proven": [400, pytest.approx(0.035)]}
    with pytest.raises(KeyError):  # a served variant of no known group is a bug, not a zero
        served_groups({9: [1, 0]}, group_of, true.__getitem__)


@pytest.mark.parametrize("bad", [{"rounds": 0}, {"impressions_per_round": 0}, {"batch_size": -1}])
def test_demo_config_refuses_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        DemoConfig(**bad)


def test_the_loop_decides_each_candidate_on_traffic_one_round_surely_gives_it() -> None:
    """The candidate is guaranteed its floor of every round: the gate's sample size stays
    below it (a candidate the bandit starves is still decided within a round)."""
    settings = Settings(candidate_traffic_floor=0.05, candidate_traffic_cap=0.2)
    assert one_round_gate_max(settings, 100_000) == 4_500
    assert one_round_gate_max(settings.model_copy(update={"gate_max_impressions": 3000}),
                              100_000) == 3_000
    no_floor = settings.model_copy(update={"candidate_traffic_floor": 0.0})
    assert one_round_gate_max(no_floor, 100_000) == 9_000
    assert one_round_gate_max(settings, 10) == 1


def test_the_demo_settles_at_its_one_round_budget_by_expected_loss() -> None:
    """The demo squeezes the gate's budget into one round, so it settles a candidate left
    unsure there by the smaller expected loss: the production rule (keep the incumbent)
    would roll back every candidate one round cannot prove, and the demo would never show a
    promotion. Without ``decide_in_one_round`` the production settings stay."""
    production = Settings(candidate_traffic_floor=0.05, candidate_traffic_cap=0.2)
    demo = gate_settings(production, DemoConfig(impressions_per_round=20_000))
    assert (demo.gate_max_impressions, demo.gate_budget_rule) == (900, "lower_loss")
    assert production.gate_budget_rule == "keep_incumbent"
    assert gate_settings(production, DemoConfig(decide_in_one_round=False)) is production


def _report(number: int, **extra: object) -> RoundReport:
    figures: dict[str, Any] = dict(
        round=number, serving={"en": 1, "zh": 2}, generated_true_ctr=0.031,
        served_ctr=0.029, expected_ctr=0.03, impressions=20_000, clicks=580, regret=12.5,
    )
    return RoundReport(**{**figures, **extra})


def test_one_line_per_round_and_a_summary_in_words() -> None:
    line = round_line(_report(2, candidates=[3], candidate_true_ctr=0.04, rolled_back=[3]))
    assert "\n" not in line and line.startswith("round 2: serving en:v1, zh:v2")
    assert "new candidate v3 (true CTR 0.04)" in line and "rolled back v3" in line

    learned = LoopSummary(
        serving={"en": 5, "zh": 2}, base={"en": 1, "zh": 2}, lift={"en": 0.25, "zh": None},
        rolled_back=[(3, "P(better) 0.0100 <= 0.05")], cycles=4, failed_cycles=1,
    )
    lines = summary_lines(learned)
    assert lines[0] == "en: v5 serves; its texts' true CTR is +25.0% against the base model's (v1)."
    assert lines[1] == "zh: the base model (v2) still serves."
    assert "v3 was rolled back: P(better) 0.0100 <= 0.05." in lines
    assert lines[-1] == "1 of 4 training cycles failed." and not learned.could_not_learn
    failed = LoopSummary({"en": 1}, {"en": 1}, {"en": None}, [], cycles=2, failed_cycles=2)
    assert failed.could_not_learn
    assert not LoopSummary({}, {}, {}, [], cycles=0, failed_cycles=0).could_not_learn


def test_console_log_lines_are_one_line_and_tracebacks_stay_in_the_file(
    tmp_path: Path,
) -> None:
    warning = logging.LogRecord(
        "adgen.model.locales", logging.WARNING, __file__, 1, "zh falls back to %s\nmore",
        ("smollm2",), None,
    )
    assert OneLine().format(warning) == "warning: zh falls back to smollm2"
    assert no_traceback(warning)
    try:
        raise ModelError("LoRA adapter folder x has no adapter_config.json")
    except ModelError:
        failed = logging.LogRecord(
            "adgen.training.cycle", logging.ERROR, __file__, 1, "cycle failed", (),
            sys.exc_info(),
        )
    assert not no_traceback(failed)  # the demo prints its own line for a failed cycle
    assert failure_line(1, "cycle smollm2: ModelError: boom", tmp_path / "demo.log") == (
        f"round 1: cycle smollm2: ModelError: boom (details in {tmp_path / 'demo.log'})"
    )
