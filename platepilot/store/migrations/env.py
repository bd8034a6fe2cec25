"""Alembic's entry point: runs on the connection `platepilot.store.schema.migrate` hands it."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True)  # batch: SQLite cannot ALTER most things
with context.begin_transaction():
    context.run_migrations()
