"""Column changes that tolerate a database already holding them (one created from the table definition
by a version of the runtime that predates its migration)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def add_missing(table: str, column: sa.Column) -> None:
    if column.name not in _columns(table):
        op.add_column(table, column)


def drop_present(table: str, *names: str) -> None:
    present = _columns(table)
    with op.batch_alter_table(table) as batch:
        for name in names:
            if name in present:
                batch.drop_column(name)
