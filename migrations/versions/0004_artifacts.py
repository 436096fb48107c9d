"""Content-addressed artifacts: adapters and reward models stored by sha256 in the database.

``artifacts`` holds each artifact's bytes once (a tar of a folder, or a file's bytes);
``model_versions.adapter_sha256`` and ``reward_models.artifact_sha256`` reference them, so a
version trained on one host can be served, or rolled back to, on any other.

Revision ID: 0004_artifacts
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_artifacts"
down_revision = "0003_counting"
branch_labels = None
depends_on = None

REFERENCES = (("model_versions", "adapter_sha256"), ("reward_models", "artifact_sha256"))


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("format IN ('tar', 'file')", name="ck_artifacts_format"),
        sa.CheckConstraint("size >= 0", name="ck_artifacts_size"),
    )
    for table, column in REFERENCES:
        op.add_column(table, sa.Column(column, sa.String(64), nullable=True))
        if op.get_bind().dialect.name != "sqlite":
            # SQLite cannot add a constraint to a table in place (and rebuilding these tables
            # breaks the analyst views on them); the ORM declares the reference there.
            op.create_foreign_key(f"fk_{table}_{column}", table, "artifacts", [column], ["sha256"])


def downgrade() -> None:
    for table, column in REFERENCES:
        if op.get_bind().dialect.name != "sqlite":
            op.drop_constraint(f"fk_{table}_{column}", table, type_="foreignkey")
        op.drop_column(table, column)
    op.drop_table("artifacts")
