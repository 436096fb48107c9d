"""``adgen export obp`` and ``adgen ope`` on a small campaign logged through the real
allocator (SQLite): OBP's layout, stable action ids, estimates near the known truth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from adgen.allocator import Allocator
from adgen.brief import Brief
from adgen.cli.main import app as cli
from adgen.db.campaigns import add_variants, create_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import Event, ModelVersion
from adgen.settings import Settings, get_settings

TRUE_CTR = (0.02, 0.05, 0.15)
ROUNDS = 6000


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


@pytest.fixture
def logged(engine: Engine, tmp_path: Path) -> tuple[int, list[int], int]:
    """A campaign of two hand-written variants and one of model version M, served
    uniformly by the allocator (no evidence yet) for ROUNDS impressions, clicked at
    TRUE_CTR; returns (campaign, variants, M)."""
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        c = create_campaign(session, Brief(name="c", product="shoes", brand="Acme",
                                           audience="runners"))
        version = ModelVersion(base_model="tiny", status="active")
        session.add(version)
        session.flush()
        vids = [v.id for v in add_variants(session, c.id, ["Run", "Walk"])]
        vids += [v.id for v in add_variants(session, c.id, ["Jog"], model_version_id=version.id)]
        cid, mid = c.id, version.id
    allocator = Allocator(sessions, Settings(var_dir=tmp_path / "v"), np.random.default_rng(2))
    assert allocator.refresh()
    rng = np.random.default_rng(9)
    now = datetime(2026, 11, 29, tzinfo=UTC)
    rows = []
    for i in range(ROUNDS):
        a = allocator.allocate(cid)
        rows.append(Event(event_id=f"i{i}", type="impression", impression_id=a.impression_id,
                          campaign_id=cid, variant_id=a.variant_id, propensity=a.propensity,
                          event_time=now, snapshot_id=a.snapshot_id))
        if rng.random() < TRUE_CTR[vids.index(a.variant_id)]:
            rows.append(Event(event_id=f"c{i}", type="click", impression_id=a.impression_id,
                              campaign_id=cid, variant_id=a.variant_id, event_time=now))
    rows.append(Event(event_id="lost", type="impression", impression_id="x", campaign_id=cid,
                      variant_id=vids[0], propensity=0.5, event_time=now))  # no snapshot
    with transaction(sessions) as session:
        session.add_all(rows)
    return cid, vids, mid


def _run(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_export_obp_writes_the_layout_with_stable_action_ids(
    runner: CliRunner, logged: tuple[int, list[int], int], tmp_path: Path
) -> None:
    cid, vids, mid = logged
    out = tmp_path / "log.npz"
    text = _run(runner, "export", "obp", str(cid), "--out", str(out))
    assert f"{ROUNDS} rounds" in text and "1 impressions without a snapshot" in text
    data = np.load(out)
    assert int(data["n_rounds"]) == ROUNDS and int(data["n_actions"]) == 3
    assert list(data["action_ids"]) == [f"v{vids[0]}@manual", f"v{vids[1]}@manual",
                                        f"v{vids[2]}@m{mid}"]
    assert data["action_dist"].shape == (ROUNDS, 3, 1)
    assert data["context"].shape == (ROUNDS, 1) and data["action_context"].shape == (3, 2)
    rows = np.arange(ROUNDS)
    np.testing.assert_allclose(data["action_dist"][rows, data["action"], 0], data["pscore"])
    np.testing.assert_allclose(data["action_dist"].sum(axis=1), 1.0)
    assert set(np.unique(data["reward"])) <= {0.0, 1.0} and (data["position"] == 0).all()


def test_ope_estimates_greedy_and_a_version_near_their_true_rates(
    runner: CliRunner, logged: tuple[int, list[int], int]
) -> None:
    cid, _, mid = logged
    greedy = json.loads(_run(runner, "ope", str(cid), "--policy", "greedy", "--json",
                             "--bootstrap", "200"))
    assert greedy["n_rounds"] == ROUNDS and greedy["support"] == pytest.approx(1.0)
    assert greedy["logged"]["value"] == pytest.approx(np.mean(TRUE_CTR), abs=0.015)
    for e in greedy["estimates"]:  # greedy always plays the 15% variant
        assert e["ci95_low"] < 0.15 < e["ci95_high"], e
    version = json.loads(_run(runner, "ope", str(cid), "--policy", f"version:{mid}", "--json",
                              "--bootstrap", "200"))
    assert [e["value"] for e in version["estimates"]][:2] == pytest.approx(
        [e["value"] for e in greedy["estimates"]][:2]
    )  # version M's only variant is the greedy choice
    table = _run(runner, "ope", str(cid), "--policy", "ts", "--bootstrap", "50")
    assert "SNIPW" in table and "logging policy" in table


def test_bad_policies_and_empty_campaigns_are_refused(
    runner: CliRunner, logged: tuple[int, list[int], int], engine: Engine, tmp_path: Path
) -> None:
    cid, _, _ = logged
    bad = runner.invoke(cli, ["ope", str(cid), "--policy", "best"])
    assert bad.exit_code != 0 and "unknown policy 'best'" in str(bad.exception or bad.output)
    missing = runner.invoke(cli, ["ope", str(cid), "--policy", "version:999"])
    assert missing.exit_code != 0 and "model version 999" in str(missing.exception)
    with transaction(session_factory(engine)) as session:
        empty = create_campaign(session, Brief(name="e", product="p", brand="b", audience="a")).id
    out = tmp_path / "empty.npz"
    nothing = runner.invoke(cli, ["export", "obp", str(empty), "--out", str(out)])
    assert "no impressions" in str(nothing.exception) and not out.exists()
