"""Alembic migrations of the events database (applied by `platepilot.store.schema.migrate`)."""
