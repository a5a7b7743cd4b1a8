"""Fresh, migrated test databases on SQLite and PostgreSQL.

PostgreSQL is required: when it cannot be reached the tests fail, they never skip."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import asyncpg

from migrations.runner import upgrade

PG_ADMIN_DSN = os.environ.get(
    "CAREBILL_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _pg_url(name: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


async def create_pg_database() -> tuple[str, str]:
    """(async SQLAlchemy URL, database name) of a new empty PostgreSQL database."""
    name = f"carebill_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(
            f"PostgreSQL is required by the tests and unreachable at {PG_ADMIN_DSN}: {exc}. "
            "Start it (see .ci/run) — these tests never skip."
        ) from exc
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _pg_url(name), name


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / f'carebill-{uuid.uuid4().hex[:8]}.db'}"


async def migrate(url: str) -> None:
    # Alembic's env runs its own event loop: keep it off ours.
    await asyncio.to_thread(upgrade, url)
