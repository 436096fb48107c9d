"""Contextual allocation on SQLite: cells pooled towards the campaign, fallback to the
campaign level, the cap on cells, SRM per cell, the CLI; naming cells from a request
context (adgen.cells)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from adgen.allocator import Allocator
from adgen.brief import Brief
from adgen.cells import cell_key, cell_name, check_attributes, parse_cell
from adgen.cli.main import app as cli
from adgen.db import migrate
from adgen.db.campaigns import add_variants, create_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import ArmStats, CellStats, Event
from adgen.errors import NotFoundError
from adgen.settings import Settings, get_settings
from adgen.srm import cell_srm


def test_cell_keys_names_and_fallbacks() -> None:
    attrs = ("placement", "device")
    assert cell_key({"device": "ios", "placement": "search", "x": 1}, attrs) == ("search", "ios")
    assert cell_key({"device": True, "placement": 3}, attrs) == ("3", "true")
    for missing in ({"device": "ios"}, {"device": "ios", "placement": None},
                    {"device": "ios", "placement": ""}, {"device": "a|b", "placement": "x"},
                    {"device": ["list"], "placement": "x"}, None):
        assert cell_key(missing, attrs) is None
    name = cell_name(attrs, ("search", "ios"))
    assert name == "placement=search|device=ios"
    assert parse_cell(name, attrs) == ("search", "ios")
    assert parse_cell(name, ("device",)) is None  # a cell of other attributes
    with pytest.raises(ValueError, match="distinct"):
        check_attributes(["a", "a"])
    with pytest.raises(ValueError, match="at most 4"):
        check_attributes(["a", "b", "c", "d", "e"])


def _allocator(tmp_path: Path, cells: dict[str, list[tuple[int, int]]], **kw: object) -> tuple[
    Allocator, int, list[int]
]:
    """One campaign on ``device`` with three variants and ``cells``: name -> per-variant
    (impressions, clicks); arm_stats hold their sums."""
    url = f"sqlite:///{tmp_path / 'ctx.db'}"
    migrate.upgrade(url)
    sessions = session_factory(make_engine(url))
    with transaction(sessions) as session:
        c = create_campaign(session, Brief(name="c", product="shoes", brand="Acme",
                                           audience="runners"))
        c.context_attributes = ["device"]
        c.max_cells = kw.get("max_cells", 3)  # type: ignore[assignment]
        vids = [v.id for v in add_variants(session, c.id, ["Run", "Walk", "Jog"])]
        for i, vid in enumerate(vids):
            stats = session.get(ArmStats, vid)
            assert stats is not None
            stats.impressions = sum(rows[i][0] for rows in cells.values())
            stats.clicks = sum(rows[i][1] for rows in cells.values())
        for name, rows in cells.items():
            for vid, (n, k) in zip(vids, rows, strict=True):
                session.add(CellStats(variant_id=vid, cell=name, campaign_id=c.id,
                                      impressions=n, clicks=k))
        cid = c.id
    settings = Settings(var_dir=tmp_path / "var", propensity_samples=4000)
    allocator = Allocator(sessions, settings, np.random.default_rng(0))
    assert allocator.refresh()
    return allocator, cid, vids


def _share(allocator: Allocator, cid: int, context: dict | None, vid: int, n: int = 3000) -> float:
    return sum(allocator.allocate(cid, context).variant_id == vid for _ in range(n)) / n


def test_disagreeing_cells_follow_their_own_evidence(tmp_path: Path) -> None:
    allocator, cid, vids = _allocator(tmp_path, {
        "device=ios": [(2000, 120), (2000, 40), (2000, 40)],
        "device=android": [(2000, 40), (2000, 120), (2000, 40)],
    })
    # rates 6% vs 2% around 4%: between-cell variance ~0.0004 of p(1-p) = 0.0384, so
    # tau ~ 1/0.0104 - 1 less binomial noise: far below each cell's own 2,000 impressions
    strength = allocator.cells(cid)[1]
    assert strength is not None and 5.0 <= strength < 200.0
    assert _share(allocator, cid, {"device": "ios"}, vids[0]) > 0.95
    assert _share(allocator, cid, {"device": "android"}, vids[1]) > 0.95
    ios = allocator.allocate(cid, {"device": "ios"})
    assert ios.cell == "device=ios"
    # the campaign level sees arms 0 and 1 tied: it splits between them
    top = _share(allocator, cid, None, vids[0])
    assert 0.3 < top < 0.7


def test_a_new_cell_is_admitted_and_served_from_the_campaign_until_the_refresh(
    tmp_path: Path
) -> None:
    allocator, cid, vids = _allocator(tmp_path, {
        "device=ios": [(3000, 300), (3000, 60), (3000, 60)],
    }, max_cells=2)
    first = allocator.allocate(cid, {"device": "web"})
    assert first.cell == "device=web"
    campaign_level = allocator.allocate(cid, {})
    assert first.snapshot_id == campaign_level.snapshot_id  # the campaign's policy
    assert allocator.allocate(cid, {"device": "tv"}).cell is None  # over the cap of 2
    assert allocator.cells(cid)[0] == ["device=ios", "device=web"]
    assert allocator.refresh()
    built = allocator.allocate(cid, {"device": "web"})
    assert built.cell == "device=web" and built.snapshot_id != campaign_level.snapshot_id
    # an empty cell starts from the campaign's evidence, not from nothing
    web = {a.variant_id: a for a in allocator.arms(cid, "device=web")}
    assert web[vids[0]].trials > 0 and web[vids[0]].probability > 0.9


def test_identical_cells_pool_strongly(tmp_path: Path) -> None:
    rows = [(2000, 100), (2000, 80), (2000, 60)]
    allocator, cid, _ = _allocator(tmp_path, {"device=ios": rows, "device=android": rows})
    assert allocator.cells(cid)[1] == pytest.approx(Settings().cell_prior_max)


def test_an_unknown_cell_name_is_not_found(tmp_path: Path) -> None:
    allocator, cid, _ = _allocator(tmp_path, {})
    with pytest.raises(NotFoundError, match="no cell"):
        allocator.arms(cid, "device=vr")


def test_cli_shows_cells_and_changes_attributes_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allocator, cid, vids = _allocator(tmp_path, {"device=ios": [(100, 9), (50, 1), (10, 0)]})
    monkeypatch.setenv("ADGEN_DATABASE_URL", f"sqlite:///{tmp_path / 'ctx.db'}")
    get_settings.cache_clear()
    runner = CliRunner(env={"COLUMNS": "200"})
    try:
        shown = runner.invoke(cli, ["campaigns", "cells", str(cid), "--json"])
        assert shown.exit_code == 0, shown.output
        body = json.loads(shown.output)
        assert body["context_attributes"] == ["device"] and body["max_cells"] == 3
        ios = body["cells"][0]
        assert ios["cell"] == "device=ios" and ios["impressions"] == 160 and ios["clicks"] == 10
        assert [v["variant_id"] for v in ios["variants"]] == vids
        changed = runner.invoke(cli, ["campaigns", "cells", str(cid), "-a", "device", "-a",
                                      "placement", "--max-cells", "5"])
        assert changed.exit_code == 0, changed.output
        assert "device, placement" in changed.output and "at most 5 cells" in changed.output
        bad = runner.invoke(cli, ["campaigns", "cells", str(cid), "-a", "a|b"])
        assert bad.exit_code != 0 and "must not contain" in str(bad.exception)
        off = runner.invoke(cli, ["campaigns", "cells", str(cid), "--off", "--json"])
        assert json.loads(off.output)["context_attributes"] is None
        audit = runner.invoke(cli, ["audit", "--json"])
        assert [e["action"] for e in json.loads(audit.output)].count("campaign.cells") == 2
    finally:
        get_settings.cache_clear()
    assert allocator.refresh()
    assert allocator.allocate(cid, {"device": "ios"}).cell is None  # no longer contextual


def test_srm_runs_per_cell_and_catches_a_fault_in_one_cell(tmp_path: Path) -> None:
    even = [(20, 1), (20, 1), (20, 1)]
    allocator, cid, vids = _allocator(tmp_path, {"device=ios": even, "device=android": even})
    now = datetime(2026, 11, 29, tzinfo=UTC)
    rows, dropped = [], 0
    for i in range(6000):
        device = "ios" if i % 2 else "android"
        a = allocator.allocate(cid, {"device": device})
        assert a.cell == f"device={device}" and a.snapshot_id is not None
        if device == "ios" and a.variant_id == vids[0] and dropped < 200:
            dropped += 1  # a logging fault loses these impressions of one arm in one cell
            continue
        rows.append(Event(event_id=f"e{i}", type="impression", impression_id=a.impression_id,
                          campaign_id=cid, variant_id=a.variant_id, propensity=a.propensity,
                          event_time=now, snapshot_id=a.snapshot_id, cell=a.cell))
    sessions = session_factory(make_engine(f"sqlite:///{tmp_path / 'ctx.db'}"))
    with transaction(sessions) as session:
        session.add_all(rows)
    with sessions() as session:
        result = cell_srm(session, cid)
    assert set(result) == {"device=ios", "device=android"}
    assert result["device=ios"].ready and result["device=ios"].flagged
    assert result["device=android"].ready and not result["device=android"].flagged
