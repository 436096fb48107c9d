"""``variants.rollout_of``: the candidate a serving version's texts were written beside.

A training cycle that makes a candidate also lets the serving version write the same number
of texts for the same campaigns, from the same reward model; those texts point at the
candidate, so the gate can compare the candidate with what the incumbent writes now rather
than with every text it ever wrote (older texts were ranked by older reward models, or not
at all). NULL everywhere else, and on every variant written before this revision.

Revision ID: 0008_rollout_counterparts
Revises: 0007_artifact_bytes_elsewhere
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_rollout_counterparts"
down_revision = "0007_artifact_bytes_elsewhere"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("variants", sa.Column("rollout_of", sa.Integer(), nullable=True))
    # SQLite cannot add a constraint in place, and its batch mode would rebuild ``variants``
    # under the views that read it: there the column goes without one.
    if op.get_bind().dialect.name != "sqlite":
        op.create_foreign_key(
            "fk_variants_rollout_of", "variants", "model_versions", ["rollout_of"], ["id"]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE variants DROP COLUMN rollout_of")
        return
    op.drop_constraint("fk_variants_rollout_of", "variants", type_="foreignkey")
    op.drop_column("variants", "rollout_of")
