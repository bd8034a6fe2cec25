"""plate_events partitioned by day on PostgreSQL (`platepilot.store.partitions`); SQLite unchanged.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import time

from alembic import op

from platepilot.store.partitions import partition_by_day, partitioned, unpartition

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql" and not partitioned(conn):
        partition_by_day(conn, time.time())


def downgrade() -> None:
    conn = op.get_bind()
    if partitioned(conn):
        unpartition(conn)
