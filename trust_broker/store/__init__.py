"""Persistence of the broker: SQLAlchemy 2 models, a repository interface and its SQL implementation."""
