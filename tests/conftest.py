"""Common fixtures: a throwaway PostgreSQL database per test, SQLite, the real broker.

``bench/`` goes on the import path: the synthetic campaigns and the throwaway-database
helper live in ``bench/_fixtures.py``, one home for the benchmarks and the tests.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from api_support import ADMIN_TOKEN
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adgen.api import create_app
from adgen.bus.broker import EmbeddedBroker
from adgen.db import migrate
from adgen.db.engine import make_engine, session_factory
from adgen.settings import Settings

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from _fixtures import PG_ADMIN_URL, throwaway_database  # noqa: E402  (bench/, just above)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a new, migrated PostgreSQL database, dropped after the test."""
    with throwaway_database(PG_ADMIN_URL, prefix="adgen_test") as url:
        yield url


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """An engine on the throwaway PostgreSQL database."""
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_sessions(pg_engine: Engine) -> sessionmaker[Session]:
    """A sessionmaker on the throwaway PostgreSQL database."""
    return session_factory(pg_engine)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a migrated SQLite file in the test's temporary folder."""
    url = f"sqlite:///{tmp_path / 'adgen.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """One real Kafka-protocol broker (Tansu) for the whole session; use unique topics."""
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def topic() -> str:
    """A topic name no other test uses."""
    return f"adgen.test.{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(tmp_path: Path, pg_url: str, broker: EmbeddedBroker, topic: str) -> Settings:
    """Settings wired to the test's PostgreSQL database, the broker and a fresh topic."""
    return Settings(
        var_dir=tmp_path / "var",
        database_url=pg_url,
        kafka_bootstrap=broker.bootstrap,
        events_topic=topic,
        consumer_group=f"g-{uuid.uuid4().hex[:8]}",
        ingest_max_poll_interval_ms=3000,
        ingest_session_timeout_ms=6000,
        ingest_retry_initial_s=0.05,
        admin_token=ADMIN_TOKEN,
        token_secret="test-token-secret-0123456789abcdef",
    )


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """The API on the test's settings, its allocator seeded."""
    return create_app(settings, rng=np.random.default_rng(1))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client of ``app``, started (lifespan run) for the test."""
    with TestClient(app) as c:
        yield c
