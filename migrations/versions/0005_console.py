"""Operator console: audit log, allocation snapshots (SRM), per-campaign traffic controls,
stored CTR intervals, one definition per figure in the analyst views.

- ``audit_log``: who changed what, when, with the state before and after.
- ``allocation_snapshots``: the serving probabilities of a campaign (after controls) each
  time the allocator rebuilt them; impressions carry the id (``events.snapshot_id``), so the
  expected count of each arm is the sum over snapshots of impressions x probability.
- ``campaigns.traffic_floor / traffic_cap / min_exploration``: NULL means the setting.
- ``arm_stats.ctr_ci95_low / ctr_ci95_high``: the exact Beta(1 + clicks, 1 + impressions -
  clicks) 95% interval, written by the application in the transaction that changes the
  counts (SQL cannot compute Beta quantiles); ``variant_performance`` reads them, so the
  view and the API give the same interval. ``cvr`` (conversions / clicks) becomes
  ``conversion_rate`` (conversions / impressions), as in the API.
- ``campaign_srm``: observed and expected impressions per arm, and each arm's chi-square term.

Revision ID: 0005_console
Revises: 0002
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision = "0005_console"
down_revision = "0004_artifacts"
branch_labels = None
depends_on = None

ANALYST_ROLE = "adgen_analyst"
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: Columns this revision adds to existing tables.
DROPPED_COLUMNS = (
    ("arm_stats", "ctr_ci95_high"), ("arm_stats", "ctr_ci95_low"), ("events", "snapshot_id"),
    ("campaigns", "min_exploration"), ("campaigns", "traffic_cap"),
    ("campaigns", "traffic_floor"),
)
#: Beta(1, 1) quantiles: the interval of a variant without impressions.
EMPTY_CI = (0.025, 0.975)

VARIANT_PERFORMANCE = """
CREATE VIEW variant_performance AS
SELECT v.id AS variant_id,
       v.campaign_id,
       c.name AS campaign_name,
       c.locale,
       v.model_version_id,
       v.status,
       v.source,
       v.text,
       COALESCE(s.impressions, 0) AS impressions,
       COALESCE(s.clicks, 0) AS clicks,
       COALESCE(s.conversions, 0) AS conversions,
       CASE WHEN COALESCE(s.impressions, 0) > 0
            THEN 1.0 * s.clicks / s.impressions END AS ctr,
       CASE WHEN COALESCE(s.impressions, 0) > 0
            THEN 1.0 * s.conversions / s.impressions END AS conversion_rate,
       (COALESCE(s.clicks, 0) + 1.0) / (COALESCE(s.impressions, 0) + 2.0) AS ctr_posterior_mean,
       COALESCE(s.ctr_ci95_low, 0.025) AS ctr_ci95_low,
       COALESCE(s.ctr_ci95_high, 0.975) AS ctr_ci95_high
FROM variants v
JOIN campaigns c ON c.id = v.campaign_id
LEFT JOIN arm_stats s ON s.variant_id = v.id
"""

# (snapshot, variant, probability) of every snapshot, per dialect (JSON arrays unnested).
_ARMS_POSTGRES = """
SELECT s.id AS snapshot_id, s.campaign_id,
       CAST(s.variant_ids ->> k AS integer) AS variant_id,
       CAST(s.probabilities ->> k AS double precision) AS probability
FROM allocation_snapshots s
CROSS JOIN LATERAL generate_series(0, json_array_length(s.variant_ids) - 1) AS k
"""
_ARMS_SQLITE = """
SELECT s.id AS snapshot_id, s.campaign_id,
       CAST(v.value AS integer) AS variant_id,
       CAST(p.value AS real) AS probability
FROM allocation_snapshots s
JOIN json_each(s.variant_ids) v
JOIN json_each(s.probabilities) p ON p.key = v.key
"""


def _campaign_srm(arms: str) -> str:
    return f"""
CREATE VIEW campaign_srm AS
WITH arms AS ({arms}),
served AS (
    SELECT snapshot_id, COUNT(*) AS n
    FROM events
    WHERE type = 'impression' AND snapshot_id IS NOT NULL
    GROUP BY snapshot_id
),
observed AS (
    SELECT campaign_id, variant_id, COUNT(*) AS n
    FROM events
    WHERE type = 'impression' AND snapshot_id IS NOT NULL
    GROUP BY campaign_id, variant_id
),
expected AS (
    SELECT a.campaign_id, a.variant_id, SUM(served.n * a.probability) AS n
    FROM arms a
    JOIN served ON served.snapshot_id = a.snapshot_id
    GROUP BY a.campaign_id, a.variant_id
)
SELECT e.campaign_id,
       e.variant_id,
       COALESCE(o.n, 0) AS observed,
       e.n AS expected,
       CASE WHEN e.n > 0
            THEN (COALESCE(o.n, 0) - e.n) * (COALESCE(o.n, 0) - e.n) / e.n END AS chi2_term
FROM expected e
LEFT JOIN observed o ON o.campaign_id = e.campaign_id AND o.variant_id = e.variant_id
"""


def _previous_views() -> ModuleType:
    """Revision 0002, whose ``variant_performance`` a downgrade puts back."""
    path = Path(__file__).with_name("0002_analyst_views.py")
    spec = importlib.util.spec_from_file_location("adgen_migration_0002", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_target", "audit_log", ["target_type", "target_id"])
    op.create_table(
        "allocation_snapshots",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("cell", sa.String(length=200), server_default="", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("variant_ids", sa.JSON(), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_allocation_snapshots_campaign", "allocation_snapshots", ["campaign_id", "created_at"]
    )
    op.add_column("campaigns", sa.Column("traffic_floor", sa.Float(), nullable=True))
    op.add_column("campaigns", sa.Column("traffic_cap", sa.Float(), nullable=True))
    op.add_column("campaigns", sa.Column("min_exploration", sa.Float(), nullable=True))
    op.add_column("events", sa.Column("snapshot_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "arm_stats",
        sa.Column("ctr_ci95_low", sa.Float(), server_default=str(EMPTY_CI[0]), nullable=False),
    )
    op.add_column(
        "arm_stats",
        sa.Column("ctr_ci95_high", sa.Float(), server_default=str(EMPTY_CI[1]), nullable=False),
    )
    _store_existing_intervals()
    op.execute("DROP VIEW IF EXISTS variant_performance")
    op.execute(VARIANT_PERFORMANCE)
    op.execute(_campaign_srm(_ARMS_POSTGRES if postgres else _ARMS_SQLITE))
    if postgres:
        op.execute(
            f"GRANT SELECT ON audit_log, allocation_snapshots, variant_performance, "
            f"campaign_srm TO {ANALYST_ROLE}"
        )


def _store_existing_intervals() -> None:
    """Fill the new interval columns of rows that already have impressions."""
    from scipy import special

    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT variant_id, impressions, clicks FROM arm_stats WHERE impressions > 0")
    ).all()
    params = []
    for variant_id, n, c in rows:
        s = min(int(c), int(n))
        params.append({
            "v": variant_id,
            "lo": float(special.betaincinv(1 + s, 1 + n - s, 0.025)),
            "hi": float(special.betaincinv(1 + s, 1 + n - s, 0.975)),
        })
    if params:
        bind.execute(
            sa.text(
                "UPDATE arm_stats SET ctr_ci95_low = :lo, ctr_ci95_high = :hi "
                "WHERE variant_id = :v"
            ),
            params,
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute("DROP VIEW IF EXISTS campaign_srm")
    op.execute("DROP VIEW IF EXISTS variant_performance")
    # plain ALTER TABLE (SQLite >= 3.35 has DROP COLUMN): a batch copy of the table would
    # trip over the views that read it
    for table, column in DROPPED_COLUMNS:
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.drop_index("ix_allocation_snapshots_campaign", table_name="allocation_snapshots")
    op.drop_table("allocation_snapshots")
    op.drop_index("ix_audit_log_target", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    previous = _previous_views()
    if postgres:
        op.execute(previous._variant_performance("GREATEST", "LEAST"))
    else:
        op.execute(previous._variant_performance("max", "min"))
