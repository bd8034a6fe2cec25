"""plate_events.state and state_confidence: the issuing state of each event (issue 17).

Existing rows get `unknown` with confidence 0: they were never classified.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from platepilot.store.migrations.columns import add_missing, drop_present

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_missing("plate_events", sa.Column("state", sa.String(16), nullable=False, server_default="unknown"))
    add_missing("plate_events", sa.Column("state_confidence", sa.Float, nullable=False, server_default="0"))
    indexes = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("plate_events")}
    if "ix_plate_events_state" not in indexes:
        op.create_index("ix_plate_events_state", "plate_events", ["state"])


def downgrade() -> None:
    op.drop_index("ix_plate_events_state", "plate_events")
    drop_present("plate_events", "state_confidence", "state")
