"""64-bit row ids on PostgreSQL: a fleet stores about 630 M events a year (docs/fleet.md), and every
replayed event skipped as a duplicate still takes a value of the id sequence, so a 32-bit `serial`
runs out within a few years and the collector then refuses every event. SQLite's integer ids are 64-bit
already. Rewrites both tables once (a long lock on a big database: run it at a quiet hour).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("plate_events", "plate_alerts")


def upgrade() -> None:
    _id_type("BIGINT")


def downgrade() -> None:
    _id_type("INTEGER")


def _id_type(sql_type: str) -> None:
    """The id column of each table, and the sequence that numbers it, as `sql_type` (PostgreSQL only; a
    partitioned table's days follow their parent)."""
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table in TABLES:
        if not sa.inspect(conn).has_table(table):
            continue
        conn.execute(sa.text(f'ALTER TABLE "{table}" ALTER COLUMN id TYPE {sql_type}'))
        sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar_one()
        if sequence is not None:
            conn.execute(sa.text(f"ALTER SEQUENCE {sequence} AS {sql_type}"))
