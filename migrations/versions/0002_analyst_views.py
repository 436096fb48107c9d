"""Analyst views (variant, model-version and daily campaign performance) and the read-only role.

The credible interval in ``variant_performance`` is the normal approximation to the
Beta(1 + clicks, 1 + impressions - clicks) posterior, clipped to [0, 1]; the API and
``adgen.stats`` give exact Beta quantiles.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ANALYST_ROLE = "adgen_analyst"


def _variant_performance(clip_low: str, clip_high: str) -> str:
    mean = "((COALESCE(s.clicks, 0) + 1.0) / (COALESCE(s.impressions, 0) + 2.0))"
    half = f"(1.959964 * sqrt({mean} * (1.0 - {mean}) / (COALESCE(s.impressions, 0) + 3.0)))"
    return f"""
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
       CASE WHEN COALESCE(s.clicks, 0) > 0
            THEN 1.0 * s.conversions / s.clicks END AS cvr,
       {mean} AS ctr_posterior_mean,
       {clip_low}(0.0, {mean} - {half}) AS ctr_ci95_low,
       {clip_high}(1.0, {mean} + {half}) AS ctr_ci95_high
FROM variants v
JOIN campaigns c ON c.id = v.campaign_id
LEFT JOIN arm_stats s ON s.variant_id = v.id
"""


MODEL_VERSION_PERFORMANCE = """
CREATE VIEW model_version_performance AS
SELECT mv.id AS model_version_id,
       mv.base_model,
       mv.parent_id,
       mv.status,
       COUNT(v.id) AS variants,
       COALESCE(SUM(s.impressions), 0) AS impressions,
       COALESCE(SUM(s.clicks), 0) AS clicks,
       COALESCE(SUM(s.conversions), 0) AS conversions,
       CASE WHEN COALESCE(SUM(s.impressions), 0) > 0
            THEN 1.0 * SUM(s.clicks) / SUM(s.impressions) END AS ctr,
       (COALESCE(SUM(s.clicks), 0) + 1.0) / (COALESCE(SUM(s.impressions), 0) + 2.0)
           AS ctr_posterior_mean
FROM model_versions mv
LEFT JOIN variants v ON v.model_version_id = mv.id
LEFT JOIN arm_stats s ON s.variant_id = v.id
GROUP BY mv.id, mv.base_model, mv.parent_id, mv.status
"""


def _campaign_daily_totals(day: str) -> str:
    return f"""
CREATE VIEW campaign_daily_totals AS
SELECT e.campaign_id,
       {day} AS day,
       SUM(CASE WHEN e.type = 'impression' THEN 1 ELSE 0 END) AS impressions,
       SUM(CASE WHEN e.type = 'click' THEN 1 ELSE 0 END) AS clicks,
       SUM(CASE WHEN e.type = 'conversion' THEN 1 ELSE 0 END) AS conversions,
       SUM(CASE WHEN e.type = 'conversion' THEN COALESCE(e.value, 0) ELSE 0 END)
           AS conversion_value
FROM events e
GROUP BY e.campaign_id, {day}
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(_variant_performance("GREATEST", "LEAST"))
        op.execute(_campaign_daily_totals("CAST(e.event_time AS DATE)"))
    else:
        op.execute(_variant_performance("max", "min"))
        op.execute(_campaign_daily_totals("date(e.event_time)"))
    op.execute(MODEL_VERSION_PERFORMANCE)
    if postgres:
        op.execute(
            f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ANALYST_ROLE}') THEN
        CREATE ROLE {ANALYST_ROLE} NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another database's migration created it at the same moment
END
$$;
"""
        )
        op.execute(f"GRANT USAGE ON SCHEMA public TO {ANALYST_ROLE}")
        op.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {ANALYST_ROLE}")
        op.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {ANALYST_ROLE}"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM {ANALYST_ROLE}"
        )
        op.execute(f"REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM {ANALYST_ROLE}")
        op.execute(f"REVOKE USAGE ON SCHEMA public FROM {ANALYST_ROLE}")
    op.execute("DROP VIEW IF EXISTS campaign_daily_totals")
    op.execute("DROP VIEW IF EXISTS model_version_performance")
    op.execute("DROP VIEW IF EXISTS variant_performance")
