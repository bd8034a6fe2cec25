"""plate_events.crop_note: why an event has no crop (not written, or pruned).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa

from platepilot.store.migrations.columns import add_missing, drop_present

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_missing("plate_events", sa.Column("crop_note", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    drop_present("plate_events", "crop_note")
