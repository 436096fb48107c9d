"""Embedded mode is SQLite and the bundled broker only; short secrets refused outside it;
read commands never create a database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from adgen.errors import ConfigError
from adgen.settings import EMBEDDED_ADMIN_TOKEN, MIN_SECRET_LENGTH, Settings

PG = "postgresql://u@127.0.0.1/db"
ROOT = Path(__file__).resolve().parents[1]


def test_embedded_means_sqlite_and_the_bundled_broker() -> None:
    assert Settings().embedded
    assert not Settings(database_url=PG).embedded
    assert not Settings(kafka_bootstrap="127.0.0.1:9092").embedded
    assert Settings().admin_token_value() == EMBEDDED_ADMIN_TOKEN


@pytest.mark.parametrize(
    "settings",
    [Settings(database_url=PG), Settings(kafka_bootstrap="127.0.0.1:9092")],
    ids=["postgres-without-kafka", "sqlite-with-kafka"],
)
def test_default_admin_token_refused_outside_embedded(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="ADGEN_ADMIN_TOKEN is not set"):
        settings.admin_token_value()


def test_short_secrets_refused_outside_embedded() -> None:
    short = "x" * (MIN_SECRET_LENGTH - 1)
    settings = Settings(database_url=PG, admin_token=SecretStr(short),
                        token_secret=SecretStr(short))
    with pytest.raises(ConfigError, match=f"ADGEN_ADMIN_TOKEN is {len(short)} characters"):
        settings.admin_token_value()
    with pytest.raises(ConfigError, match="ADGEN_TOKEN_SECRET is .* at least 32"):
        settings.token_secret_value()
    ok = "y" * MIN_SECRET_LENGTH
    long_enough = settings.model_copy(update={"admin_token": SecretStr(ok)})
    assert long_enough.admin_token_value() == ok


def test_short_secret_is_fine_when_embedded() -> None:
    assert Settings(admin_token=SecretStr("demo")).admin_token_value() == "demo"


@pytest.mark.parametrize("args", [["db", "current"], ["campaigns", "list"]])
def test_read_commands_never_create_a_database(tmp_path: Path, args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADGEN_")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-m", "adgen.cli.main", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode != 0
    assert "no database at var/adgen.db" in out.stdout + out.stderr
    assert not (tmp_path / "var").exists()
