"""The database engine and its sessions, on SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

import asyncio
import copy
from typing import Any, Self

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

_IMMEDIATE = "carebill_immediate"


def _configure_sqlite(engine: AsyncEngine) -> None:
    """SQLite: enforce foreign keys, allow readers beside a writer (WAL), wait for locks, and let
    us issue BEGIN ourselves so that writing transactions take the write lock up front
    (BEGIN IMMEDIATE) — the SQLite counterpart of PostgreSQL's row locks."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: `journal_mode` takes a lock that another process (a second
        # server, a migration) may hold, and with only the driver's 5-second default it
        # fails with "database is locked" on a busy machine.
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# How many connections one request (one GraphQL operation, one socket's operations) holds at
# once. graphql-core resolves sibling root fields concurrently and each opens its own session:
# unbounded, one query with 30 aliased root fields held 30 connections, and a few such requests
# exhausted PostgreSQL's `max_connections` ("too many clients"). Past the bound, fields wait.
CONNECTIONS_PER_REQUEST = 4


class SessionPermits:
    """A request's permits to hold a session. Re-entrant per task: a task that already holds
    one and opens a nested session does not wait for a second (it could wait forever)."""

    def __init__(self, limit: int = CONNECTIONS_PER_REQUEST) -> None:
        self.limit = limit
        self._free = asyncio.Semaphore(limit)
        self._holders: dict[asyncio.Task[Any] | None, int] = {}
        self.held = 0
        self.most_held = 0

    async def acquire(self) -> None:
        task = asyncio.current_task()
        if self._holders.get(task):
            self._holders[task] += 1
            return
        await self._free.acquire()
        self._holders[task] = 1
        self.held += 1
        self.most_held = max(self.most_held, self.held)

    def release(self) -> None:
        task = asyncio.current_task()
        self._holders[task] -= 1
        if not self._holders[task]:
            del self._holders[task]
            self.held -= 1
            self._free.release()


class BoundedSession(AsyncSession):
    """An AsyncSession that, used as `async with`, holds one of its request's permits for its
    whole life (from before its first statement until it closes)."""

    def __init__(self, *args: Any, permits: SessionPermits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._permits = permits

    async def __aenter__(self) -> Self:
        if self._permits is not None:
            await self._permits.acquire()
        try:
            return await super().__aenter__()
        except BaseException:
            if self._permits is not None:
                self._permits.release()
            raise

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await super().__aexit__(*exc_info)
        finally:
            if self._permits is not None:
                self._permits.release()


class Database:
    """Owns the engine. Each unit of work opens its own short session: sibling GraphQL fields
    resolve concurrently and must never share one."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        options: dict[str, Any] = {"echo": echo}
        if not self.is_sqlite:
            options.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine = create_async_engine(url, **options)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._reader = async_sessionmaker(
            self.engine, class_=BoundedSession, expire_on_commit=False
        )
        self._writer = async_sessionmaker(
            self.engine.execution_options(**{_IMMEDIATE: True}),
            class_=BoundedSession,
            expire_on_commit=False,
        )
        self._permits: SessionPermits | None = None

    def bounded(self, permits: SessionPermits) -> Database:
        """This database as one request sees it: its sessions share `permits` (same engine)."""
        view = copy.copy(self)
        view._permits = permits
        return view

    def reader(self) -> AsyncSession:
        """A session for reading; on SQLite it does not block writers."""
        return self._reader(permits=self._permits)

    def writer(self) -> AsyncSession:
        """A session for one writing transaction; on SQLite it holds the write lock throughout."""
        return self._writer(permits=self._permits)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()
