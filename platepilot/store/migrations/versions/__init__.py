"""One module per revision of the events schema, oldest first (0001 is the schema before Alembic)."""
