"""Apply the migrations programmatically (used by `carebill migrate` and by the tests)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(HERE / "versions"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
    _write_ahead_log(database_url)


def _write_ahead_log(database_url: str) -> None:
    """Leave an SQLite database in WAL mode (it persists in the file). Every connection of the
    server asks for WAL; switching a file into it needs the database to itself, so when the
    first connections of a starting server (requests, the relay, the notifier) all ask at once,
    one of them can fail with "database is locked" whatever the busy timeout. Switched here,
    before any server runs, their request is a no-op."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    with contextlib.closing(sqlite3.connect(url.database, timeout=30)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
