"""Alembic migrations; `carebill migrate` applies them (see migrations/runner.py)."""
