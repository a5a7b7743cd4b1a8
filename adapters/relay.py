"""The outbox relay: publishes committed alerts through the broker, then marks them published.

Alert rows are written in the business transaction (the outbox); this task turns them into
broker notifications. It runs in every server process and wakes when this process commits an
alert, and every `poll_seconds` anyway (for alerts written elsewhere: another process, the
CLI, a retry after a broker outage).

Publishing comes first and marking second, outside any transaction that waits on the network:
if the broker is down nothing is marked and the next pass publishes it again; if we die between
the two, a notification is repeated. Both are harmless because a notification only makes
subscribers re-read their inbox from their own cursor: alerts are delayed, never lost, and
never delivered twice. While the broker is down, each process's relay still rings its own
subscribers on every retry (see `RedisBroker.publish`), so only other processes wait.

Every process of a deployment must use the same broker: `published_at` is shared, so a process
on another broker would mark alerts published that the others never hear of (their
subscriptions would then find them only at their periodic re-check).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, object_session

from adapters.broker import AlertNote, Broker, BrokerUnavailable
from adapters.database import Database
from models.alert import Alert
from models.base import utcnow
from models.history import ALERTS_WRITTEN
from models.invoice import Invoice

log = logging.getLogger("carebill.relay")

_on_commit: set[Callable[[], None]] = set()
_hooks_installed = False


def _mark_session(_mapper: Any, _connection: Any, target: Alert) -> None:
    session = object_session(target)
    if session is not None:
        session.info[ALERTS_WRITTEN] = True


def _after_commit(session: Session) -> None:
    if session.info.pop(ALERTS_WRITTEN, False):
        for wake in list(_on_commit):
            wake()


def _after_rollback(session: Session) -> None:
    session.info.pop(ALERTS_WRITTEN, None)


def _install_hooks() -> None:
    """Know when this process commits alerts, so the relay need not wait for its next poll."""
    global _hooks_installed
    if not _hooks_installed:
        event.listen(Alert, "after_insert", _mark_session)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_soft_rollback", lambda s, _t: _after_rollback(s))
        _hooks_installed = True


class Relay:
    """Publishes pending alerts (`published_at IS NULL`) in commit order, in batches."""

    def __init__(
        self,
        db: Database,
        broker: Broker,
        *,
        poll_seconds: float = 1.0,
        batch: int = 500,
        max_backoff: float = 2.0,
    ) -> None:
        self.db = db
        self.broker = broker
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _on_commit(self) -> None:
        # Commit hooks run inside SQLAlchemy's greenlet, on the loop's thread; be safe anyway.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        _install_hooks()
        _on_commit.add(self._on_commit)
        self._task = asyncio.create_task(self._run(), name="carebill-alert-relay")

    async def stop(self) -> None:
        _on_commit.discard(self._on_commit)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            try:
                while await self.publish_pending() == self.batch:
                    pass
            except BrokerUnavailable as exc:
                backoff = min(max(backoff * 2, 0.1), self.max_backoff)
                log.warning("alerts pending: broker unavailable (%s); retry in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                self._wake.set()
                continue
            except Exception:
                # The database may be briefly away too; never let the relay die.
                log.exception("alert relay pass failed")
                await asyncio.sleep(self.max_backoff)
                continue
            backoff = 0.0

    async def publish_pending(self) -> int:
        """Publish one batch of pending alerts and mark it; how many alerts it held."""
        async with self.db.reader() as session:
            rows = (
                await session.execute(
                    select(Alert.id, Alert.practice_id, Alert.commit_seq, Invoice.client_id)
                    .join(Invoice, Invoice.id == Alert.invoice_id)
                    .where(Alert.published_at.is_(None), Alert.commit_seq.is_not(None))
                    .order_by(Alert.commit_seq)
                    .limit(self.batch)
                )
            ).all()
        if not rows:
            return 0
        latest: dict[int, int] = {}
        clients: dict[int, set[int]] = defaultdict(set)
        for _id, practice_id, seq, client_id in rows:
            assert seq is not None  # selected so
            latest[practice_id] = max(latest.get(practice_id, 0), seq)
            clients[practice_id].add(client_id)
        await self.broker.publish(
            [AlertNote(p, s, frozenset(clients[p])) for p, s in latest.items()]
        )
        async with self.db.writer() as session, session.begin():
            await session.execute(
                update(Alert)
                .where(Alert.id.in_([r[0] for r in rows]), Alert.published_at.is_(None))
                .values(published_at=utcnow())
            )
        return len(rows)
