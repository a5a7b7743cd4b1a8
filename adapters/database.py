"""The database engine and its sessions, on SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Self

from sqlalchemy import Executable, Result, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, DisconnectionError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger("carebill")
_IMMEDIATE = "carebill_immediate"
# A request's shared read connection: on SQLite no BEGIN (each statement is its own
# transaction), the counterpart of PostgreSQL's AUTOCOMMIT.
_AUTOCOMMIT = "carebill_autocommit"

# Connections a process keeps open (PostgreSQL, or a SQLite file). A request holds at most one
# at a time (its read connection, or its writer, see `RequestConnection`), so this many requests
# reach the database at once and the next ones wait for a connection (`pool_timeout`, 30 s).
# No overflow: an overflow connection is closed when it is given back, and a steady load just
# above the pool then opens and closes a connection for nearly every request.
POOL_SIZE = 30

# A pooled PostgreSQL connection idle longer than this is pinged before it is used again: what
# drops a connection silently (a firewall's or the server's idle timeout) drops idle ones. A
# connection used more recently only has its socket checked, which costs no round trip (see
# `_check_on_checkout`).
PING_AFTER_IDLE_SECONDS = 30.0
_IDLE_SINCE = "carebill_idle_since"


def _check_on_checkout(engine: AsyncEngine, ping_after_idle: float) -> None:
    """PostgreSQL: a connection the server closed (a restart, `pg_terminate_backend`) is never
    handed out. SQLAlchemy's `pool_pre_ping` pays a ping (BEGIN, a query, ROLLBACK: three round
    trips) at every checkout; here the socket's state is checked at each one, and a ping is paid
    only after an idle spell. A connection the server closed a moment before its checkout, before
    this process read the news, fails its first statement: a request's read connection then
    takes another and runs the statement again (`RequestConnection.execute`)."""
    sync = engine.sync_engine

    @event.listens_for(sync, "connect")
    def _on_connect(_dbapi: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(sync, "checkin")
    def _on_checkin(_dbapi: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(sync, "checkout")
    def _on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        driver = record.driver_connection
        if driver is None or driver.is_closed():
            raise DisconnectionError("the server closed this connection")
        idle_since = record.info.get(_IDLE_SINCE, 0.0)
        if time.monotonic() - idle_since <= ping_after_idle:
            return
        try:
            sync.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # whatever the driver raised: the pool takes another
            raise DisconnectionError("the connection did not answer a ping") from exc


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
        options = conn.get_execution_options()
        if options.get(_AUTOCOMMIT, False):
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(_IMMEDIATE, False) else "BEGIN")


# How many connections one operation over a websocket holds at once (an HTTP request holds one:
# `RequestConnection`). graphql-core resolves sibling root fields concurrently and each opens its
# own session: unbounded, one query with 30 aliased root fields held 30 connections, and a few
# such requests exhausted PostgreSQL's `max_connections` ("too many clients"). Past the bound,
# fields wait.
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


class RequestConnection:
    """The one connection an HTTP request reads through: taken from the pool at its first read,
    shared by every loader batch, root field and reading session of the request, given back by
    `release` (at the end of the request, or before the request opens a writer).

    graphql-core resolves sibling fields concurrently and a DataLoader batch runs in a task of
    its own, but a connection runs one statement at a time: a lock serialises them. A statement
    (`execute`) holds it only while it runs (its rows are buffered), so no task ever waits for
    the lock while holding it, whatever awaits what; a reading session (`session`) holds it
    from its start to its end, re-entrantly for its own task, and must not await other tasks
    meanwhile. Reads do not open a transaction (AUTOCOMMIT on PostgreSQL, no BEGIN on SQLite):
    each statement sees what was committed when it started, as in READ COMMITTED, and a request
    costs no BEGIN or ROLLBACK round trips."""

    def __init__(self, engine: AsyncEngine, is_sqlite: bool) -> None:
        self._engine = engine
        self._is_sqlite = is_sqlite
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self._depth = 0
        self._connection: AsyncConnection | None = None
        self._released = False
        # Whether the connection held has answered a statement since it was checked out.
        self._proven = False
        self.checkouts = 0

    async def _connect(self) -> AsyncConnection:
        connection = await self._engine.connect()
        try:
            if self._is_sqlite:
                await connection.execution_options(**{_AUTOCOMMIT: True})
            else:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
        except BaseException:
            await connection.close()
            raise
        return connection

    @asynccontextmanager
    async def _held(self) -> AsyncIterator[AsyncConnection]:
        """The connection, this task alone using it meanwhile."""
        task = asyncio.current_task()
        if self._owner is not None and self._owner is task:
            assert self._connection is not None
            self._depth += 1
            try:
                yield self._connection
            finally:
                self._depth -= 1
            return
        async with self._lock:
            self._owner, self._depth = task, 1
            try:
                if self._released:
                    # A straggler after the request ended (a batch still running when it was
                    # cancelled): a connection of its own, given back at once.
                    async with self._engine.connect() as own:
                        yield own
                    return
                if self._connection is None:
                    self._connection = await self._connect()
                    self._proven = False
                    self.checkouts += 1
                yield self._connection
            finally:
                self._owner, self._depth = None, 0

    async def execute(
        self, statement: Executable, parameters: dict[str, Any] | None = None
    ) -> Result[Any]:
        """Runs one statement; its rows are read before another statement may start."""
        async with self._held() as connection:
            if self._proven or connection is not self._connection:
                return await connection.execute(statement, parameters)
            try:
                result = await connection.execute(statement, parameters)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                # The server had closed the connection just handed out (a restart): nothing
                # ran, and a read may run again, on a connection the pool opens anew.
                log.info("a read connection was closed by the server; reading on a new one")
                await self._discard()
                self._connection = connection = await self._connect()
                self.checkouts += 1
                result = await connection.execute(statement, parameters)
            self._proven = True
            return result

    async def _discard(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except (SQLAlchemyError, OSError):
                log.debug("a dead read connection could not be closed", exc_info=True)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """An ORM session on this connection for a reading unit of work."""
        async with (
            self._held() as connection,
            AsyncSession(bind=connection, expire_on_commit=False) as session,
        ):
            yield session
            self._proven = self._proven or connection is self._connection

    async def release(self, *, final: bool = True) -> None:
        """Gives the connection back to the pool (waiting for a statement in flight). After the
        final release, reads still work but each takes and gives back a connection. Inside this
        task's own reading session the connection is in use and stays."""
        if self._owner is not None and self._owner is asyncio.current_task():
            return
        async with self._lock:
            self._released = self._released or final
            connection, self._connection = self._connection, None
            if connection is not None:
                try:
                    await connection.close()
                except (SQLAlchemyError, OSError):
                    # A connection the database dropped: the pool discards it; the request's
                    # answer (already made) must not turn into an error for it.
                    log.warning("a request's read connection could not be closed", exc_info=True)


class Database:
    """Owns the engine. Outside a request each unit of work opens its own short session; a
    request reads through its `RequestConnection` (`for_request`)."""

    def __init__(
        self, url: str, *, echo: bool = False, ping_after_idle: float = PING_AFTER_IDLE_SECONDS
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        options: dict[str, Any] = {"echo": echo}
        if not self.is_sqlite or ":memory:" not in url:
            # PostgreSQL or a SQLite file: a queue pool (an in-memory database has one).
            options.update(pool_size=POOL_SIZE, max_overflow=0)
        self.engine = create_async_engine(url, **options)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        else:
            _check_on_checkout(self.engine, ping_after_idle)
        self._reader = async_sessionmaker(
            self.engine, class_=BoundedSession, expire_on_commit=False
        )
        self._writer = async_sessionmaker(
            self.engine.execution_options(**{_IMMEDIATE: True}),
            class_=BoundedSession,
            expire_on_commit=False,
        )
        self._permits: SessionPermits | None = None
        self._shared: RequestConnection | None = None

    def bounded(self, permits: SessionPermits) -> Database:
        """This database as one operation sees it: its sessions share `permits` (same engine)."""
        view = copy.copy(self)
        view._permits = permits
        return view

    def request_connection(self) -> RequestConnection:
        return RequestConnection(self.engine, self.is_sqlite)

    def for_request(self, permits: SessionPermits, shared: RequestConnection) -> Database:
        """This database as one HTTP request sees it: every read through `shared`, a writer
        only once `shared` is given back (never two connections at once)."""
        view = self.bounded(permits)
        view._shared = shared
        return view

    def reader(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session for reading; on SQLite it does not block writers."""
        if self._shared is not None:
            return self._shared.session()
        return self._reader(permits=self._permits)

    def writer(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session for one writing transaction; on SQLite it holds the write lock throughout."""
        if self._shared is not None:
            return self._writing(self._shared)
        return self._writer(permits=self._permits)

    @asynccontextmanager
    async def _writing(self, shared: RequestConnection) -> AsyncIterator[AsyncSession]:
        await shared.release(final=False)  # reads after it take the connection again
        async with self._writer(permits=self._permits) as session:
            yield session

    async def execute(
        self, statement: Executable, parameters: dict[str, Any] | None = None
    ) -> Result[Any]:
        """Runs one reading statement (rows buffered): on the request's connection, or in a
        session of its own outside a request."""
        if self._shared is not None:
            return await self._shared.execute(statement, parameters)
        async with self._reader(permits=self._permits) as session:
            return await session.execute(statement, parameters)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()
