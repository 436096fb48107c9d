"""``adgen campaigns create|list|show`` against a migrated SQLite database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from adgen.cli.main import app as cli
from adgen.db.campaigns import add_variants
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import ArmStats, Campaign
from adgen.errors import ValidationError
from adgen.settings import get_settings


@pytest.fixture
def runner(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("ADGEN_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    yield CliRunner(env={"COLUMNS": "200"})
    get_settings.cache_clear()


def test_create_from_options_and_file_then_list_and_show(
    runner: CliRunner, sqlite_url: str, tmp_path: Path
) -> None:
    result = runner.invoke(cli, ["campaigns", "create", "--name", "Spring", "--product", "shoes",
                                 "--brand", "Acme", "--audience", "runners",
                                 "--benefit", "grip", "--benefit", "dry"])
    assert result.exit_code == 0, result.output
    assert "created campaign 1" in result.output
    brief = tmp_path / "brief.json"
    brief.write_text(json.dumps({"name": "Autumn", "product": "boots", "brand": "Acme",
                                 "audience": "hikers", "reward": "conversion"}))
    result = runner.invoke(cli, ["campaigns", "create", "-f", str(brief), "--name", "Fall"])
    assert result.exit_code == 0, result.output

    engine = make_engine(sqlite_url)
    with transaction(session_factory(engine)) as session:
        campaigns = session.scalars(sa.select(Campaign))
        stored = {c.id: (c.name, c.benefits, c.reward) for c in campaigns}
        (vid,) = [v.id for v in add_variants(session, 1, ["Grip that holds"])]
        session.execute(sa.update(ArmStats).where(ArmStats.variant_id == vid)
                        .values(impressions=100, clicks=7))
    engine.dispose()
    assert stored == {1: ("Spring", ["grip", "dry"], "click"), 2: ("Fall", [], "conversion")}

    result = runner.invoke(cli, ["campaigns", "list"])
    assert result.exit_code == 0, result.output
    assert "Spring" in result.output and "Fall" in result.output
    result = runner.invoke(cli, ["campaigns", "show", "1"])
    assert result.exit_code == 0, result.output
    assert "Grip that holds" in result.output and "0.07" in result.output  # the CTR
    assert "0.0784" in result.output  # posterior mean (1 + 7) / (2 + 100)


def test_bad_briefs_are_refused_with_the_reason_and_nothing_stored(
    runner: CliRunner, sqlite_url: str, tmp_path: Path
) -> None:
    result = runner.invoke(cli, ["campaigns", "create", "--name", "x"])
    assert isinstance(result.exception, ValidationError)
    assert "product: Field required" in str(result.exception)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    result = runner.invoke(cli, ["campaigns", "create", "-f", str(bad)])
    assert isinstance(result.exception, ValidationError)
    assert "JSON object" in str(result.exception)
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM campaigns")).scalar() == 0
    engine.dispose()
    result = runner.invoke(cli, ["campaigns", "show", "99"])
    assert "campaign 99 does not exist" in str(result.exception)
