"""The schema through Alembic on PostgreSQL and SQLite: round trips, views, role, constraints."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, ProgrammingError

from adgen.brief import Brief
from adgen.db import migrate
from adgen.db.campaigns import add_variants, create_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import Base

TABLES = set(Base.metadata.tables)
VIEWS = {
    "variant_performance", "model_version_performance", "campaign_daily_totals", "campaign_srm",
    "cell_performance", "cell_srm",
}


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated database of each kind."""
    return str(request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _relations(engine: Engine) -> tuple[set[str], set[str]]:
    inspector = sa.inspect(engine)
    return set(inspector.get_table_names()) - {"alembic_version"}, set(inspector.get_view_names())


def test_upgrade_downgrade_upgrade(db_url: str, engine: Engine) -> None:
    assert _relations(engine) == (TABLES, VIEWS)
    assert migrate.current_revision(engine) == "0008_rollout_counterparts"

    migrate.downgrade(db_url, "base")
    engine.dispose()
    assert _relations(engine) == (set(), set())
    assert migrate.current_revision(engine) is None

    migrate.upgrade(db_url)
    engine.dispose()
    assert _relations(engine) == (TABLES, VIEWS)
    assert migrate.current_revision(engine) == "0008_rollout_counterparts"


def _seed(engine: Engine) -> tuple[int, list[int]]:
    """A campaign with two variants and some events / stats; returns (campaign, variants)."""
    with transaction(session_factory(engine)) as session:
        campaign = create_campaign(
            session, Brief(name="c", product="shoes", brand="Acme", audience="runners")
        )
        variants = add_variants(session, campaign.id, ["Run faster", "Run further"])
        cid, vids = campaign.id, [v.id for v in variants]
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE arm_stats SET impressions = 98, clicks = 8 WHERE variant_id = :v"),
            {"v": vids[0]},
        )
        conn.execute(
            sa.text(
                "INSERT INTO events (event_id, type, impression_id, campaign_id, variant_id, "
                "propensity, value, event_time) VALUES (:e, :t, 'i1', :c, :v, :p, :val, :ts)"
            ),
            [
                {"e": "e1", "t": "impression", "c": cid, "v": vids[0], "p": 0.5, "val": None,
                 "ts": datetime(2026, 3, 1, 10, tzinfo=UTC)},
                {"e": "e2", "t": "click", "c": cid, "v": vids[0], "p": None, "val": None,
                 "ts": datetime(2026, 3, 1, 11, tzinfo=UTC)},
                {"e": "e3", "t": "conversion", "c": cid, "v": vids[0], "p": None, "val": 12.5,
                 "ts": datetime(2026, 3, 2, 9, tzinfo=UTC)},
            ],
        )
    return cid, vids


def test_views_answer(engine: Engine) -> None:
    cid, vids = _seed(engine)
    with engine.connect() as conn:
        perf = {
            r.variant_id: r
            for r in conn.execute(sa.text("SELECT * FROM variant_performance")).mappings()
        }
        daily = conn.execute(
            sa.text("SELECT * FROM campaign_daily_totals ORDER BY day")
        ).mappings().all()
        versions = conn.execute(sa.text("SELECT * FROM model_version_performance")).all()

    first, second = perf[vids[0]], perf[vids[1]]
    assert (first["impressions"], first["clicks"]) == (98, 8)
    assert float(first["ctr"]) == pytest.approx(8 / 98)
    assert float(first["ctr_posterior_mean"]) == pytest.approx(9 / 100)
    assert 0 <= float(first["ctr_ci95_low"]) < 9 / 100 < float(first["ctr_ci95_high"]) <= 1
    assert second["impressions"] == 0 and second["ctr"] is None
    assert float(second["ctr_posterior_mean"]) == pytest.approx(0.5)
    assert float(second["ctr_ci95_low"]) >= 0 and float(second["ctr_ci95_high"]) <= 1

    assert [(r["campaign_id"], r["impressions"], r["clicks"], r["conversions"]) for r in daily] \
        == [(cid, 1, 1, 0), (cid, 0, 0, 1)]
    assert float(daily[1]["conversion_value"]) == pytest.approx(12.5)
    assert versions == []  # no model version yet


def test_analyst_role_reads_but_cannot_write(pg_engine: Engine) -> None:
    _, vids = _seed(pg_engine)
    with pg_engine.connect() as conn:
        with conn.begin():
            conn.execute(sa.text("SET LOCAL ROLE adgen_analyst"))
            for relation in sorted(TABLES | VIEWS):
                conn.execute(sa.text(f"SELECT * FROM {relation} LIMIT 1")).all()
            assert conn.execute(sa.text("SELECT count(*) FROM events")).scalar() == 3

        writes = [
            "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, reason) "
            "VALUES ('t', 0, 0, 'x')",
            f"UPDATE arm_stats SET clicks = clicks + 1 WHERE variant_id = {vids[0]}",
            "DELETE FROM events",
            "UPDATE variants SET status = 'paused'",
        ]
        for statement in writes:
            with pytest.raises(ProgrammingError, match="permission denied"), conn.begin():
                conn.execute(sa.text("SET LOCAL ROLE adgen_analyst"))
                conn.execute(sa.text(statement))

        assert conn.execute(sa.text("SELECT count(*) FROM events")).scalar() == 3
        assert conn.execute(sa.text("SELECT count(*) FROM dead_letters")).scalar() == 0


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        ("UPDATE arm_stats SET clicks = -1", "ck_arm_stats_clicks"),
        ("UPDATE arm_stats SET impressions = -5", "ck_arm_stats_impressions"),
        ("UPDATE variants SET status = 'deleted'", "ck_variants_status"),
        ("UPDATE campaigns SET status = 'running'", "ck_campaigns_status"),
        ("UPDATE events SET type = 'view'", "ck_events_type"),
        ("UPDATE events SET propensity = 0 WHERE event_id = 'e1'", "ck_events_propensity"),
        ("INSERT INTO events (event_id, type, impression_id, campaign_id, variant_id, "
         "event_time) SELECT 'e1', 'click', 'i9', campaign_id, variant_id, event_time "
         "FROM events WHERE event_id = 'e2'", "event_id"),
        ("UPDATE events SET variant_id = 999999", "foreign key"),
    ],
)
def test_constraints_refuse_bad_rows(engine: Engine, statement: str, constraint: str) -> None:
    _seed(engine)
    with pytest.raises(IntegrityError) as info, engine.begin() as conn:
        conn.execute(sa.text(statement))
    message = str(info.value.orig).lower()
    if engine.dialect.name == "postgresql" or constraint in ("event_id", "foreign key"):
        assert constraint.lower() in message or (
            constraint == "event_id" and "unique" in message
        )
    else:  # SQLite names the CHECK constraint it failed
        assert "check constraint failed" in message and constraint in message
    with engine.connect() as conn:
        fewest_clicks = conn.execute(sa.text("SELECT min(clicks) FROM arm_stats")).scalar()
        assert fewest_clicks is not None and fewest_clicks >= 0
        assert conn.execute(sa.text("SELECT count(*) FROM events")).scalar() == 3


def test_counting_migration_classifies_stored_events(db_url: str, engine: Engine) -> None:
    cid, vids = _seed(engine)  # i1: an impression, a click, a conversion; arm_stats says 98/8
    migrate.downgrade(db_url, "0002")
    engine.dispose()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO events (event_id, type, impression_id, campaign_id, variant_id, "
                "event_time) VALUES (:e, 'click', :i, :c, :v, :ts)"
            ),
            [{"e": e, "i": i, "c": cid, "v": vids[0], "ts": datetime(2026, 3, 1, 12, tzinfo=UTC)}
             for e, i in (("again1", "i1"), ("again2", "i1"), ("lonely", "nowhere"))],
        )
    migrate.upgrade(db_url)
    engine.dispose()
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT event_id, count_status FROM events")).all()
        statuses: dict[str, str] = {event_id: status for event_id, status in rows}
        stats = conn.execute(sa.text(
            "SELECT impressions, clicks, conversions, conversion_value FROM arm_stats "
            "WHERE variant_id = :v"), {"v": vids[0]}).one()
    assert statuses == {"e1": "counted", "e2": "counted", "e3": "counted", "again1": "repeat",
                        "again2": "repeat", "lonely": "orphan"}
    assert tuple(stats) == (1, 1, 1, pytest.approx(12.5))
