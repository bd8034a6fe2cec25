"""The events database's schema version: Alembic revisions in `store/migrations`, applied on open.

A database is brought to the newest revision whenever the runtime or a command opens it, keeping its
rows. One created before Alembic (a `plate_events` table, no `alembic_version`) is first stamped at
the baseline revision, which describes it. Add a revision with
`alembic -c <ini naming script_location = platepilot/store/migrations> revision -m "..."`, or by
copying the newest file in `versions/` and chaining `down_revision`.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"
TABLE = "plate_events"


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if head is None:
        raise RuntimeError(f"{MIGRATIONS}: no migration revisions")
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine) -> None:
    """Bring the database to the newest revision (nothing to do when it is there already)."""
    head = head_revision()
    with engine.begin() as connection:
        current = current_revision(connection)
        if current == head:
            return
        config = _config(connection)
        if current is None and sa.inspect(connection).has_table(TABLE):
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")
