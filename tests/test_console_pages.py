"""What the console's pages say about a broken split, dead letters and history (PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from adgen.api import create_app
from adgen.api.console import views
from adgen.db.engine import make_engine, session_factory
from adgen.db.models import (
    AllocationSnapshot,
    DeadLetter,
    Event,
    GateDecision,
    RewardModelRecord,
    TrainingRun,
)
from adgen.settings import Settings
from tests import seed_evidence as seed


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, rng=np.random.default_rng(5))) as c:
        token = settings.admin_token_value()
        assert c.post("/ui/login", data={"token": token}).status_code == 200
        yield c


def _impressions(
    session: Session, campaign_id: int, variant_id: int, n: int, snapshot_id: int
) -> None:
    now = datetime.now(UTC)
    session.execute(
        sa.insert(Event),
        [
            {
                "event_id": f"srm-{variant_id}-{i}", "type": "impression",
                "impression_id": f"srm-{variant_id}-{i}", "campaign_id": campaign_id,
                "variant_id": variant_id, "propensity": 0.5, "event_time": now,
                "snapshot_id": snapshot_id,
            }
            for i in range(n)
        ],
    )


def test_a_broken_split_is_red_with_the_reason(
    client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    with pg_sessions.begin() as session:
        cid = seed.campaign(session, name="Broken split")
        a, b = seed.arms(session, cid, [(seed.WINNERS[0], 0, 0), (seed.LOSERS[0], 0, 0)])
        snapshot = AllocationSnapshot(campaign_id=cid, variant_ids=[a, b], probabilities=[0.5, 0.5])
        session.add(snapshot)
        session.flush()
        # served 50/50, but a logging fault lost a third of b's impressions
        _impressions(session, cid, a, 300, snapshot.id)
        _impressions(session, cid, b, 200, snapshot.id)
    overview = client.get("/ui/").text
    health = re.search(r'<td class="health">(.*?)</td>', overview, re.S)
    assert health is not None and "red" in health.group(1)
    assert "sample-ratio mismatch" in health.group(1)
    page = client.get(f"/ui/campaigns/{cid}").text
    card = page[page.index('id="srm"'):]
    assert "mismatch" in card[:400] and "250.0" in card  # expected 250 each


def test_dead_letters_are_listed_escaped(
    client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    with pg_sessions.begin() as session:
        session.add(
            DeadLetter(
                topic="adgen.events", kafka_partition=0, kafka_offset=7,
                payload=b'{"type": "<script>alert(1)</script>"}', reason="not valid JSON",
            )
        )
    page = client.get("/ui/health").text
    assert "Dead letters (1)" in page and "not valid JSON" in page
    assert "adgen.events[0]@7" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_series_merges_hours_and_marks_version_changes(
    dialect: str, request: pytest.FixtureRequest
) -> None:
    if dialect == "sqlite":
        sessions = session_factory(make_engine(request.getfixturevalue("sqlite_url")))
    else:
        sessions = request.getfixturevalue("pg_sessions")
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=99)
    with sessions.begin() as session:
        version = seed.version(session, "series-base", "active")
        cid = seed.campaign(session)
        a, b = seed.arms(
            session, cid, [(seed.WINNERS[0], 0, 0), (seed.LOSERS[0], 0, 0)],
            version_id=version.id,
        )
        for hour in range(100):
            at = start + timedelta(hours=hour)
            seed.log(session, cid, a, 3, 1, at=at)
            seed.log(session, cid, b, 1, 0, at=at)
        session.add(
            GateDecision(
                candidate_version_id=version.id, decision="rollback", decided_by="operator",
                decided_at=start + timedelta(hours=50),
            )
        )
    with sessions() as session:
        series = views.series(session, cid)
    assert len(series.labels) == 34  # 100 hours in buckets of 3
    first, second = series.variants
    assert (first["id"], second["id"]) == (a, b)
    assert first["share"][0] == pytest.approx(0.75) and second["share"][-1] == pytest.approx(0.25)
    assert first["rate"][-1] == pytest.approx(1 / 3)
    assert first["low"][-1] < 1 / 3 < first["high"][-1]
    assert first["p_best"][-1] > 0.99
    assert series.markers == [{"index": 16, "label": f"rollback v{version.id}"}]


def test_versions_page_shows_reward_models_and_runs(
    client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    with pg_sessions.begin() as session:
        session.add(
            RewardModelRecord(
                path="", status="active", source="live", n_train=40,
                metrics={"pairwise_acc": 0.7125, "auc": 0.61, "primary_metric": "pairwise_acc",
                         "n_eval": 12},
            )
        )
        session.add(
            TrainingRun(trainer="kto", status="failed", base_model="b", duration_s=42.4,
                        error="out of memory")
        )
    page = client.get("/ui/versions").text
    assert "<strong>pairwise_acc 0.713</strong>, auc 0.610" in page
    assert "on 12 held-out arms" in page
    assert "42 s" in page and "out of memory" in page and "kto" in page


def test_ingest_figures_from_the_newest_events(pg_sessions: sessionmaker[Session]) -> None:
    now = datetime.now(UTC)
    with pg_sessions() as session:
        assert views.ingest_figures(session, now)["events"] == 0
    with pg_sessions.begin() as session:
        cid = seed.campaign(session)
        (vid,) = seed.arms(session, cid, [(seed.WINNERS[0], 0, 0)])
        session.execute(
            sa.insert(Event),
            [
                {
                    "event_id": f"lag-{i}", "type": "impression", "impression_id": f"lag-{i}",
                    "campaign_id": cid, "variant_id": vid, "propensity": 1.0,
                    "event_time": now - timedelta(seconds=120 - i + (30 if i == 119 else 2)),
                    "received_time": now - timedelta(seconds=120 - i),
                }
                for i in range(120)
            ],
        )
    with pg_sessions() as session:
        figures = views.ingest_figures(session, now)
    assert figures["events"] == 120
    assert figures["last_event_s"] == pytest.approx(1.0)
    assert (figures["lag_s"], figures["max_lag_s"]) == (pytest.approx(2.0), pytest.approx(30.0))
    assert figures["per_minute"] == pytest.approx(60.0 * 120 / 119)
