"""Alembic migrations of the broker store, run programmatically by ``store.db.migrate``."""
