"""What the benchmarks share: their secret key, percentiles, a fresh migrated database, the CPU
of server processes and their children (/proc), PostgreSQL's session count, and a counter of
the SQL statements run on behalf of one request."""

from __future__ import annotations

import asyncio
import math
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.databases import (
    PG_ADMIN_DSN,
    create_pg_database,
    drop_pg_database,
    migrate,
    sqlite_url,
)
from tests.live_server import LiveServer

SECRET = "bench-secret-key-0123456789abcdef"


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@asynccontextmanager
async def database(kind: str, tmp: Path, *, prefix: str | None = None) -> AsyncIterator[str]:
    """The URL of a fresh migrated database: a PostgreSQL database dropped at exit (named
    `prefix` + a random tail when given, else as the tests name theirs), or a SQLite file in
    `tmp`."""
    if kind == "sqlite":
        url = sqlite_url(tmp)
        await migrate(url)
        yield url
        return
    if prefix is None:
        url, name = await create_pg_database()
    else:
        name = f"{prefix}{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        url = f"{base}/{name}"
    try:
        await migrate(url)
        yield url
    finally:
        await drop_pg_database(name)


# --- processes: their CPU, their children, the machine, PostgreSQL's sessions --------------------


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU of each live process of `pids`."""
    ticks, found = os.sysconf("SC_CLK_TCK"), {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return found


def machine_ticks() -> tuple[int, int, int]:
    """(all, idle + iowait, steal) CPU ticks of the machine so far (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(values), values[3] + values[4], values[7]


def descendants(pid: int) -> list[int]:
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                children = [int(c) for c in (task / "children").read_text().split()]
                found += children
                pending += children
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def stop(server: LiveServer, *, keep_log: bool = False) -> None:
    """Stops the server, then any of its worker processes still alive (ours, by pid); removes
    its log unless asked to keep it."""
    children = descendants(server.process.pid)
    server.stop()
    for pid in children:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            continue
    if keep_log:
        print(f"server log: {server.log_path}", file=sys.stderr)
    else:
        server.log_path.unlink(missing_ok=True)


async def pg_sessions(url: str, conn: asyncpg.Connection | None = None) -> int | None:
    """How many sessions PostgreSQL has opened to the database of `url` so far (asked over
    `conn` when given, else over a connection of its own)."""
    if not url.startswith("postgresql"):
        return None
    own = conn is None
    if conn is None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        count = await conn.fetchval(
            "SELECT sessions FROM pg_stat_database WHERE datname = $1", url.rsplit("/", 1)[1]
        )
    finally:
        if own:
            await conn.close()
    return int(count)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def wait_until_idle(pids: list[int], *, quiet: float = 0.2, within: float = 30) -> None:
    """Waits until `pids` together use less than a tenth of `quiet` seconds of CPU in `quiet`
    seconds (a server that finished its last requests and its clean-up), or `within` passed."""
    deadline = time.monotonic() + within
    before = sum(cpu_seconds(pids).values())
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        now = sum(cpu_seconds(pids).values())
        if now - before < quiet / 10:
            return
        before = now


# --- statements ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the engine did on behalf of one piece of code."""

    statements: list[str] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)  # each statement's start, end
    checkouts: int = 0  # connections taken from the pool (sessions)
    # PostgreSQL: the round trips asyncpg makes besides the statements (the pool's pre-ping, in
    # its own BEGIN and ROLLBACK, then BEGIN and ROLLBACK or COMMIT around each session's work).
    # On SQLite BEGIN and COMMIT are statements (in `statements`, not in `queries()`).
    round_trips: int = 0

    def queries(self) -> list[str]:
        """The statements without transaction brackets (SQLite's explicit BEGIN and friends)."""
        brackets = ("BEGIN", "COMMIT", "ROLLBACK")
        return [s for s in self.statements if not s.lstrip().upper().startswith(brackets)]

    def other_round_trips(self) -> int:
        """BEGIN, ROLLBACK, COMMIT and pings: asyncpg's, or SQLite's bracket statements."""
        return self.round_trips + len(self.statements) - len(self.queries())

    def sql_seconds(self) -> float:
        """Wall time with at least one statement in flight (concurrent ones counted once)."""
        total, end = 0.0, float("-inf")
        for start, stop in sorted(self.spans):
            if stop > end:
                total += stop - max(start, end)
                end = stop
        return total


_TALLY: ContextVar[Tally | None] = ContextVar("bench_tally", default=None)


class StatementCounter:
    """Counts what `engine` runs inside `counting()`, as tests/conftest.py's count_statements
    does: tasks started there (a request's resolvers and loaders) inherit its context, background
    tasks started before (the alert relay's polling) do not. With `round_trips`, it also counts
    asyncpg's other round trips (a query logger on every connection: a little overhead)."""

    def __init__(self, engine: AsyncEngine, *, round_trips: bool = False) -> None:
        sync = engine.sync_engine
        self.round_trips = round_trips
        event.listen(sync, "before_cursor_execute", self._before)
        event.listen(sync, "after_cursor_execute", self._after)
        event.listen(sync, "connect", self._attach)
        event.listen(sync, "checkout", self._checkout)

    @staticmethod
    def _before(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        tally = _TALLY.get()
        if tally is not None:
            tally.statements.append(statement)
            conn.info["bench_started"] = time.perf_counter()

    @staticmethod
    def _after(conn: Any, *_: Any) -> None:
        started = conn.info.pop("bench_started", None)
        tally = _TALLY.get()
        if tally is not None and started is not None:
            tally.spans.append((started, time.perf_counter()))

    def _attach(self, _dbapi: Any, record: Any, *_: Any) -> None:
        """asyncpg reports the queries it sends outside prepared statements (BEGIN, ROLLBACK,
        COMMIT, the ping) to its query loggers, soon after each one, in the caller's context."""
        driver = record.driver_connection
        if self.round_trips and not record.info.get("bench_logged"):
            if hasattr(driver, "add_query_logger"):
                driver.add_query_logger(StatementCounter._logged)
            record.info["bench_logged"] = True

    def _checkout(self, _dbapi: Any, record: Any, *_: Any) -> None:
        self._attach(_dbapi, record)  # a connection opened before the counter
        tally = _TALLY.get()
        if tally is not None:
            tally.checkouts += 1

    @staticmethod
    def _logged(_query: Any) -> None:
        tally = _TALLY.get()
        if tally is not None:
            tally.round_trips += 1

    @contextmanager
    def counting(self) -> Iterator[Tally]:
        """The tally of the code run inside; asyncpg's reports of its last round trips arrive at
        the event loop's next turn (`await asyncio.sleep(0)` before reading them)."""
        tally = Tally()
        token = _TALLY.set(tally)
        try:
            yield tally
        finally:
            _TALLY.reset(token)
