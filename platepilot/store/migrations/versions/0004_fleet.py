"""plate_events.event_id, device_id and synced_at: fleets (issue 19).

`event_id` is unique (the collector's inserts skip known ids); rows from before it keep NULL, which
never conflicts, and are not sent to the collector. `synced_at` is when the collector acknowledged an
edge event (NULL: not yet), or when the collector stored it.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from platepilot.store.migrations.columns import add_missing, drop_present

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEXES = {"event_id": True, "device_id": False, "synced_at": False}  # column: unique


def upgrade() -> None:
    add_missing("plate_events", sa.Column("event_id", sa.String(200), nullable=True))
    add_missing("plate_events", sa.Column("device_id", sa.String(64), nullable=False, server_default=""))
    add_missing("plate_events", sa.Column("synced_at", sa.Float, nullable=True))
    present = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("plate_events")}
    for column, unique in INDEXES.items():
        if f"ix_plate_events_{column}" not in present:
            op.create_index(f"ix_plate_events_{column}", "plate_events", [column], unique=unique)


def downgrade() -> None:
    for column in INDEXES:
        op.drop_index(f"ix_plate_events_{column}", "plate_events")
    drop_present("plate_events", "synced_at", "device_id", "event_id")
