"""The operator's CLI (pause, resume, controls, audit, --json, grant-analyst), campaign
health and per-campaign controls in the allocator, against a migrated SQLite database (and
PostgreSQL for analyst logins)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from typer.testing import CliRunner

from adgen import operations
from adgen.allocator import Allocator
from adgen.brief import Brief
from adgen.cli.main import app as cli
from adgen.db.campaigns import add_variants, create_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import AllocationSnapshot, ArmStats, Event, ModelVersion, Variant
from adgen.errors import ConflictError, NotFoundError, ValidationError
from adgen.health import campaign_health
from adgen.settings import Settings, get_settings

TEXT = "Grip that holds on wet rock when the trail turns to mud and the rain keeps coming"


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(sqlite_url)
    yield eng
    eng.dispose()


@pytest.fixture
def runner(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("ADGEN_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    yield CliRunner(env={"COLUMNS": "200"})
    get_settings.cache_clear()


def _campaign(engine: Engine) -> tuple[int, list[int]]:
    with transaction(session_factory(engine)) as session:
        c = create_campaign(
            session, Brief(name="Spring", product="shoes", brand="Acme", audience="runners")
        )
        vids = [v.id for v in add_variants(session, c.id, [TEXT, "Run further"])]
        return c.id, vids


def _ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_pause_resume_controls_and_the_audit_log(runner: CliRunner, engine: Engine) -> None:
    cid, vids = _campaign(engine)
    assert "is paused" in _ok(runner, "variants", "pause", str(vids[0]))
    again = runner.invoke(cli, ["variants", "pause", str(vids[0])])
    assert isinstance(again.exception, ConflictError)
    assert "only active variants can be paused" in str(again.exception)
    assert isinstance(runner.invoke(cli, ["variants", "pause", "9999"]).exception, NotFoundError)
    _ok(runner, "variants", "resume", str(vids[0]))
    _ok(runner, "campaigns", "pause", str(cid))
    assert json.loads(_ok(runner, "campaigns", "list", "--json", "--status", "paused"))[0]["id"] \
        == cid
    _ok(runner, "campaigns", "resume", str(cid))

    served = json.loads(_ok(runner, "campaigns", "controls", str(cid), "--cap", "0.4",
                            "--min-exploration", "0.2", "--json"))
    assert served == {"campaign_id": cid, "floor": 0.05, "cap": 0.4, "min_exploration": 0.2}
    bad = runner.invoke(cli, ["campaigns", "controls", str(cid), "--floor", "0.6"])
    assert isinstance(bad.exception, ValidationError) and "exceed cap" in str(bad.exception)

    log = json.loads(_ok(runner, "audit", "--json"))
    assert [e["action"] for e in log] == [
        "campaign.controls", "campaign.resume", "campaign.pause", "variant.resume",
        "variant.pause",
    ]
    assert all(e["actor"].endswith("(cli)") for e in log)
    detail = json.loads(_ok(runner, "campaigns", "show", str(cid), "--json"))
    assert detail["controls"]["cap"] == 0.4
    assert sum(v["prob_best"] for v in detail["variants"]) == pytest.approx(1.0)


def test_tables_wrap_text_in_a_narrow_terminal(sqlite_url: str, engine: Engine,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cid, _ = _campaign(engine)
    monkeypatch.setenv("ADGEN_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    output = _ok(CliRunner(env={"COLUMNS": "60"}), "campaigns", "show", str(cid))
    get_settings.cache_clear()
    # too narrow for the table: one block per variant, every field there, the text folded
    # over whole lines instead of squeezed into a few characters
    assert all(len(line) <= 60 for line in output.splitlines())
    for field in ("impressions", "95% CI", "P(best)", "Run further"):
        assert field in output
    assert "Grip that holds on wet rock when" in output
    assert "…" not in output
    wide = _ok(CliRunner(env={"COLUMNS": "200"}), "campaigns", "show", str(cid))
    assert "┃ text" in wide and "Grip that holds on wet rock" in wide


def test_promote_and_rollback_from_the_cli_are_audited(runner: CliRunner, engine: Engine) -> None:
    with transaction(session_factory(engine)) as session:
        base = ModelVersion(base_model="m", status="active")
        session.add(base)
        session.flush()
        candidate = ModelVersion(base_model="m", parent_id=base.id, status="candidate")
        session.add(candidate)
        session.flush()
        ids = (base.id, candidate.id)
    _ok(runner, "models", "promote", str(ids[1]))
    _ok(runner, "models", "rollback", str(ids[1]))
    log = json.loads(_ok(runner, "audit", "--json"))
    assert [e["action"] for e in log] == ["model.rollback", "model.promote"]
    promote = log[1]
    assert promote["before"] == {str(ids[0]): "active", str(ids[1]): "candidate"}
    assert promote["after"] == {str(ids[0]): "retired", str(ids[1]): "active"}
    assert log[0]["after"][str(ids[1])] == "rolled_back"


def test_campaign_health_says_why(engine: Engine) -> None:
    cid, vids = _campaign(engine)
    sessions = session_factory(engine)
    with sessions() as session:
        assert campaign_health(session, cid).status == "amber"
        assert campaign_health(session, cid).reasons == ["no traffic yet"]
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        snapshot = AllocationSnapshot(campaign_id=cid, variant_ids=vids, probabilities=[0.5, 0.5])
        session.add(snapshot)
        session.flush()
        session.execute(sa.insert(Event), [
            {"event_id": f"e{i}", "type": "impression", "impression_id": f"i{i}",
             "campaign_id": cid, "variant_id": vids[0] if i % 2 else vids[1], "propensity": 0.5,
             "event_time": now, "received_time": now, "snapshot_id": snapshot.id}
            for i in range(200)
        ])
    with sessions() as session:
        assert campaign_health(session, cid).status == "green"
        later = campaign_health(session, cid, now=now + timedelta(hours=2))
        assert later.status == "amber" and later.reasons[0].startswith("no traffic since")
    with transaction(sessions) as session:  # a logging fault: one arm's impressions lost
        session.execute(sa.insert(Event), [
            {"event_id": f"f{i}", "type": "impression", "impression_id": f"j{i}",
             "campaign_id": cid, "variant_id": vids[0], "propensity": 0.5,
             "event_time": now, "received_time": now, "snapshot_id": snapshot.id}
            for i in range(120)
        ])
        session.get_one(Variant, vids[1]).status = "rejected"
    with sessions() as session:
        health = campaign_health(session, cid)
    assert health.status == "red"
    assert health.reasons[0].startswith("sample-ratio mismatch")
    assert "1 variant(s) refused by the guardrails" in health.reasons


def test_grant_analyst_creates_a_read_only_login(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADGEN_DATABASE_URL", pg_url)
    get_settings.cache_clear()
    runner = CliRunner()
    name = f"analyst_{uuid.uuid4().hex[:8]}"
    engine = make_engine(pg_url)
    try:
        assert "created login" in _ok(runner, "db", "grant-analyst", name, "--password", "s3cret")
        assert "granted" in _ok(runner, "db", "grant-analyst", name)  # idempotent
        with engine.connect() as conn:
            login, member = conn.execute(sa.text(
                "SELECT rolcanlogin, pg_has_role(:n, 'adgen_analyst', 'MEMBER') "
                "FROM pg_roles WHERE rolname = :n"), {"n": name}).one()
        assert login and member
        bad = runner.invoke(cli, ["db", "grant-analyst", "Robert'); DROP TABLE x"])
        assert isinstance(bad.exception, ValidationError)
        assert "must be lower-case" in str(bad.exception)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {name}"))
        engine.dispose()
        get_settings.cache_clear()


def test_the_allocator_serves_each_campaigns_own_controls(
    tmp_path: Path, sqlite_url: str, engine: Engine
) -> None:
    cid, (strong, weak) = _campaign(engine)
    other, (other_strong, other_weak) = _campaign(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        evidence = ((strong, 100), (weak, 5), (other_strong, 100), (other_weak, 5))
        for vid, clicks in evidence:
            session.execute(sa.update(ArmStats).where(ArmStats.variant_id == vid)
                            .values(impressions=1000, clicks=clicks))
    allocator = Allocator(sessions, Settings(var_dir=tmp_path, database_url=sqlite_url),
                          np.random.default_rng(0))
    assert allocator.refresh()
    share = {a.variant_id: a.probability for a in allocator.arms(cid)}
    assert share[weak] < 0.01  # the bandit alone starves it

    with transaction(sessions) as session:
        operations.set_campaign_controls(session, cid, "test", min_exploration=0.5)
    assert allocator.reload_campaign(cid)
    share = {a.variant_id: a.probability for a in allocator.arms(cid)}
    assert share[weak] == pytest.approx(0.25, abs=0.01)  # half the traffic spread evenly
    others = {a.variant_id: a.probability for a in allocator.arms(other)}
    assert others[other_weak] < 0.01  # another campaign keeps the settings

    with transaction(sessions) as session:
        operations.pause_variant(session, strong, "test")
    assert allocator.reload_campaign(cid)
    assert {allocator.allocate(cid).variant_id for _ in range(200)} == {weak}
