"""plate_events.source_file: the photo (a folder of photos) or video file an event was seen in.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa

from platepilot.store.migrations.columns import add_missing, drop_present

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_missing("plate_events", sa.Column("source_file", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    drop_present("plate_events", "source_file")
