"""The migrations build exactly the models' schema, on SQLite and on PostgreSQL, and go all the
way down and up again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from migrations.runner import downgrade, upgrade
from models import Base
from tests.databases import create_pg_database, drop_pg_database, sqlite_url


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database of each backend, without any table."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    url, name = await create_pg_database()
    yield url
    await drop_pg_database(name)


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "target_metadata": Base.metadata,
        },
    )
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _run(url: str, work: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


async def test_migrations_match_the_models(empty_database: str) -> None:
    await asyncio.to_thread(upgrade, empty_database)
    differences = await _run(empty_database, _differences)
    assert differences == [], (
        "the models and the migrations disagree; add a migration "
        "(alembic revision --autogenerate) for:\n" + "\n".join(map(str, differences))
    )


async def test_down_to_base_and_up_again(empty_database: str) -> None:
    await asyncio.to_thread(upgrade, empty_database)
    assert await _run(empty_database, _tables) >= set(Base.metadata.tables)
    await asyncio.to_thread(downgrade, empty_database, "base")
    assert await _run(empty_database, _tables) <= {"alembic_version"}
    await asyncio.to_thread(upgrade, empty_database)
    assert await _run(empty_database, _tables) == set(Base.metadata.tables) | {"alembic_version"}
    assert await _run(empty_database, _differences) == []


async def test_upgrading_twice_changes_nothing(empty_database: str) -> None:
    await asyncio.to_thread(upgrade, empty_database)
    await asyncio.to_thread(upgrade, empty_database)
    assert await _run(empty_database, _differences) == []
