"""One runner of the background notification work across server processes.

On PostgreSQL the runner is whoever holds a session-level advisory lock, taken on a
connection kept for as long as the process leads: if the process dies, the connection closes
and the lock is free for another process, which tries again on its next pass. On SQLite a
deployment is one server process (the embedded database is one file on one machine), so that
process leads; the writes the runner makes are idempotent anyway (unique keys), so a second
process would repeat no email.
"""

from __future__ import annotations

import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.database import Database

log = logging.getLogger("carebill.leadership")

# pg_advisory_lock key of the notification runner: "CBNOTIFY" as a 64-bit integer.
NOTIFICATION_LOCK = 0x43424E4F54494659


class Leadership:
    def __init__(self, db: Database, key: int = NOTIFICATION_LOCK) -> None:
        self.db = db
        self.key = key
        self._connection: AsyncConnection | None = None

    async def hold(self) -> bool:
        """Whether this process leads now: keeps the lock it holds, or tries to take it."""
        if self.db.is_sqlite:
            return True
        if self._connection is not None:
            try:
                await self._connection.execute(text("SELECT 1"))
                # Never leave the held connection idle in a transaction.
                await self._connection.commit()
                return True
            except Exception:
                log.warning("lost the notification runner's lock connection")
                await self.release()
        connection = await self.db.engine.connect()
        try:
            taken = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            )
            # Leave no transaction open on the held connection.
            await connection.commit()
        except Exception:
            await connection.close()
            raise
        if taken:
            self._connection = connection
            return True
        await connection.close()
        return False

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                await connection.commit()
            with contextlib.suppress(Exception):
                await connection.close()
