"""Alembic migrations for every posgate table."""
