"""Artifacts whose bytes live in an S3-compatible store: ``artifacts.bytes`` may be NULL.

With ``ADGEN_ARTIFACT_STORE=s3`` the object ``<prefix><sha256>`` holds the bytes and the
``artifacts`` row keeps only sha256, kind, format and size, so the references from
``model_versions.adapter_sha256`` and ``reward_models.artifact_sha256`` still hold.

Revision ID: 0007_artifact_bytes_elsewhere
Revises: 0006_cells
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_artifact_bytes_elsewhere"
down_revision = "0006_cells"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("artifacts") as batch_op:
        batch_op.alter_column("bytes", existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    elsewhere = op.get_bind().scalar(sa.text("SELECT count(*) FROM artifacts WHERE bytes IS NULL"))
    if elsewhere:
        raise RuntimeError(
            f"{elsewhere} artifacts keep their bytes in an S3-compatible store; the schema "
            f"before 0007 needs them in the database: copy them in or delete them first"
        )
    with op.batch_alter_table("artifacts") as batch_op:
        batch_op.alter_column("bytes", existing_type=sa.LargeBinary(), nullable=False)
