"""plate_alerts: the watchlist alerts `platepilot collect` gathers from the devices (issue 19).

One row per alert, unique on its event's `event_id` (a device raises at most one alert per event), so
redeliveries are skipped as for events.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INDEXES = {"event_id": True, "device_id": False, "first_seen": False, "text": False}  # column: unique


def upgrade() -> None:
    op.create_table(
        "plate_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("camera_id", sa.String(32), nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("text", sa.String(16), nullable=False),
        sa.Column("list_name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("entry", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("matched_text", sa.String(64), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    for column, unique in INDEXES.items():
        op.create_index(f"ix_plate_alerts_{column}", "plate_alerts", [column], unique=unique)


def downgrade() -> None:
    op.drop_table("plate_alerts")
