"""What counts: ``events.count_status`` (one counted click and conversion per impression).

Every stored event keeps a ``count_status``: ``counted`` (in ``arm_stats``), ``repeat`` (its
impression already has a counted event of this type), ``held`` (a click or conversion
waiting for its impression) or ``orphan`` (its impression never came within the grace
period; dead-lettered, never counted). A partial unique index makes a second counted event
of one type per impression impossible. Existing rows are classified the same way and
``arm_stats`` is recomputed from the counted events; ``campaign_daily_totals`` sums counted
events only.

Revision ID: 0003_counting
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_counting"
down_revision = "0002"
branch_labels = None
depends_on = None

STATUSES = "'counted', 'repeat', 'held', 'orphan'"
_ORPHANS = """
UPDATE events SET count_status = 'orphan'
WHERE type <> 'impression' AND NOT EXISTS (
    SELECT 1 FROM events i WHERE i.impression_id = events.impression_id
                             AND i.type = 'impression' AND i.variant_id = events.variant_id)
"""
_REPEATS = """
UPDATE events SET count_status = 'repeat'
WHERE count_status = 'counted' AND id NOT IN (
    SELECT MIN(id) FROM events WHERE count_status = 'counted' GROUP BY impression_id, type)
"""


def _count(kind: str, what: str = "COUNT(*)") -> str:
    return (f"(SELECT COALESCE({what}, 0) FROM events e WHERE e.variant_id = arm_stats.variant_id"
            f" AND e.type = '{kind}' AND e.count_status = 'counted')")


_RECOUNT = f"""
UPDATE arm_stats SET impressions = {_count('impression')}, clicks = {_count('click')},
                     conversions = {_count('conversion')},
                     conversion_value = {_count('conversion', 'SUM(e.value)')}
"""


def _daily_totals(day: str, counted_only: bool) -> str:
    where = "WHERE e.count_status = 'counted'\n" if counted_only else ""
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
{where}GROUP BY e.campaign_id, {day}
"""


def _day() -> str:
    postgres = op.get_bind().dialect.name == "postgresql"
    return "CAST(e.event_time AS DATE)" if postgres else "date(e.event_time)"


def upgrade() -> None:
    op.execute(
        "ALTER TABLE events ADD COLUMN count_status VARCHAR(16) DEFAULT 'counted' NOT NULL "
        f"CONSTRAINT ck_events_count_status CHECK (count_status IN ({STATUSES}))"
    )
    op.execute(_ORPHANS)
    op.execute(_REPEATS)
    op.execute(_RECOUNT)
    op.create_index(
        "uq_events_counted", "events", ["impression_id", "type"], unique=True,
        postgresql_where=sa.text("count_status = 'counted'"),
        sqlite_where=sa.text("count_status = 'counted'"),
    )
    op.create_index(
        "ix_events_held", "events", ["received_time"],
        postgresql_where=sa.text("count_status = 'held'"),
        sqlite_where=sa.text("count_status = 'held'"),
    )
    op.execute("DROP VIEW campaign_daily_totals")
    op.execute(_daily_totals(_day(), counted_only=True))


def downgrade() -> None:
    op.execute("DROP VIEW campaign_daily_totals")
    op.execute(_daily_totals(_day(), counted_only=False))
    op.drop_index("ix_events_held", table_name="events")
    op.drop_index("uq_events_counted", table_name="events")
    op.execute("ALTER TABLE events DROP COLUMN count_status")  # its CHECK goes with it
