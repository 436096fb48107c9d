"""Contextual allocation: campaign cells, per-cell results, the cell of every impression.

- ``campaigns.context_attributes`` (JSON list of attribute names, NULL = not contextual)
  and ``campaigns.max_cells`` (NULL = the setting): a campaign allocates per cell, one cell
  per combination of the values of these request-context attributes.
- ``events.cell``: the cell an impression counted for ('' or NULL = the campaign level).
  With ``events.snapshot_id`` (the probability vector it was drawn from, now stored per
  cell in ``allocation_snapshots.cell``) each impression carries its full decision.
- ``cell_stats``: impressions, clicks and conversions per (variant, cell), beside
  ``arm_stats`` and written in the same ingest transaction.
- ``cell_performance``: the analysts' per-cell results; ``cell_srm``: observed and
  expected impressions per cell and arm.

Revision ID: 0006_cells
Revises: 0005_console
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_cells"
down_revision = "0005_console"
branch_labels = None
depends_on = None

ANALYST_ROLE = "adgen_analyst"

CELL_PERFORMANCE = """
CREATE VIEW cell_performance AS
SELECT s.campaign_id,
       s.cell,
       s.variant_id,
       v.text,
       v.model_version_id,
       s.impressions,
       s.clicks,
       s.conversions,
       CASE WHEN s.impressions > 0 THEN 1.0 * s.clicks / s.impressions END AS ctr,
       CASE WHEN s.impressions > 0 THEN 1.0 * s.conversions / s.impressions END
           AS conversion_rate,
       (s.clicks + 1.0) / (s.impressions + 2.0) AS ctr_posterior_mean
FROM cell_stats s
JOIN variants v ON v.id = s.variant_id
"""

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


def _cell_srm(arms: str) -> str:
    return f"""
CREATE VIEW cell_srm AS
WITH arms AS ({arms}),
served AS (
    SELECT snapshot_id, COALESCE(cell, '') AS cell, COUNT(*) AS n
    FROM events
    WHERE type = 'impression' AND snapshot_id IS NOT NULL
    GROUP BY snapshot_id, COALESCE(cell, '')
),
observed AS (
    SELECT campaign_id, COALESCE(cell, '') AS cell, variant_id, COUNT(*) AS n
    FROM events
    WHERE type = 'impression' AND snapshot_id IS NOT NULL
    GROUP BY campaign_id, COALESCE(cell, ''), variant_id
),
expected AS (
    SELECT a.campaign_id, served.cell, a.variant_id, SUM(served.n * a.probability) AS n
    FROM arms a
    JOIN served ON served.snapshot_id = a.snapshot_id
    GROUP BY a.campaign_id, served.cell, a.variant_id
)
SELECT e.campaign_id,
       e.cell,
       e.variant_id,
       COALESCE(o.n, 0) AS observed,
       e.n AS expected,
       CASE WHEN e.n > 0
            THEN (COALESCE(o.n, 0) - e.n) * (COALESCE(o.n, 0) - e.n) / e.n END AS chi2_term
FROM expected e
LEFT JOIN observed o
  ON o.campaign_id = e.campaign_id AND o.cell = e.cell AND o.variant_id = e.variant_id
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column("campaigns", sa.Column("context_attributes", sa.JSON(), nullable=True))
    op.add_column("campaigns", sa.Column("max_cells", sa.Integer(), nullable=True))
    op.add_column("events", sa.Column("cell", sa.String(length=200), nullable=True))
    op.create_table(
        "cell_stats",
        sa.Column("variant_id", sa.Integer(), sa.ForeignKey("variants.id"), nullable=False),
        sa.Column("cell", sa.String(length=200), nullable=False),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("impressions", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("clicks", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("conversions", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("conversion_value", sa.Float(), server_default="0", nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("variant_id", "cell"),
    )
    op.create_index("ix_cell_stats_campaign", "cell_stats", ["campaign_id", "cell"])
    op.execute(CELL_PERFORMANCE)
    op.execute(_cell_srm(_ARMS_POSTGRES if postgres else _ARMS_SQLITE))
    if postgres:
        op.execute(f"GRANT SELECT ON cell_stats, cell_performance, cell_srm TO {ANALYST_ROLE}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS cell_srm")
    op.execute("DROP VIEW IF EXISTS cell_performance")
    op.drop_index("ix_cell_stats_campaign", table_name="cell_stats")
    op.drop_table("cell_stats")
    # plain ALTER TABLE (SQLite >= 3.35): a batch copy would trip over the views
    op.execute("ALTER TABLE events DROP COLUMN cell")
    op.execute("ALTER TABLE campaigns DROP COLUMN max_cells")
    op.execute("ALTER TABLE campaigns DROP COLUMN context_attributes")
