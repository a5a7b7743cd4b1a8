"""One notification runner at a time: on PostgreSQL an advisory lock held on a connection of
its own decides it (another process takes over when the runner stops or dies); on SQLite a
deployment is one process, which always leads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import text

from adapters.database import Database
from adapters.leadership import Leadership
from schema.services import Services


async def test_one_runner_at_a_time_and_a_successor_when_it_goes(own_database: Services) -> None:
    url = own_database.settings.database_url
    first, second, third = Database(url), Database(url), Database(url)  # three "processes"
    try:
        runner, waiting, later = Leadership(first), Leadership(second), Leadership(third)
        assert await runner.hold() is True
        assert await runner.hold() is True  # still leading on the next pass
        if own_database.db.is_sqlite:
            assert await waiting.hold() is True
            return
        assert await waiting.hold() is False
        await runner.release()  # the runner stops
        assert await waiting.hold() is True
        assert await later.hold() is False
        # The new runner's process dies: its connection ends, and the lock with it.
        async with third.engine.connect() as admin:
            held = await admin.scalar(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND"
                    " database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            )
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": held})
        assert await eventually_true(later.hold)
        assert await waiting.hold() is False  # it notices it lost the lock, and waits
    finally:
        await runner.release()
        await waiting.release()
        await later.release()
        for db in (first, second, third):
            await db.dispose()


async def eventually_true(attempt: Callable[[], Awaitable[bool]], within: float = 30) -> bool:
    deadline = time.monotonic() + within
    while not await attempt():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True
