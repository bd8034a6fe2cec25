"""Baseline: the plate_events table as it was before Alembic managed the schema.

Databases created before Alembic have this table and no alembic_version: `migrate` stamps them at
this revision, so only the later revisions run on them.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("plate_events"):
        return
    op.create_table(
        "plate_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.String(32), nullable=False),
        sa.Column("track_id", sa.Integer, nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("text", sa.String(16), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("candidates", sa.Text, nullable=False),
        sa.Column("crop_path", sa.Text, nullable=False),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("reads", sa.Integer, nullable=False),
        sa.Column("format", sa.String(64), nullable=True),
    )
    for column in ("camera_id", "first_seen", "text"):
        op.create_index(f"ix_plate_events_{column}", "plate_events", [column])


def downgrade() -> None:
    op.drop_table("plate_events")
