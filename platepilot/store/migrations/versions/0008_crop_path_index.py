"""An index on plate_events.crop_path: retention marks the events of the crops it deletes by path,
and without it each batch scanned the whole table while holding the write lock.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEX = "ix_plate_events_crop_path"


def upgrade() -> None:
    if INDEX not in {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("plate_events")}:
        op.create_index(INDEX, "plate_events", ["crop_path"])


def downgrade() -> None:
    op.drop_index(INDEX, "plate_events")
