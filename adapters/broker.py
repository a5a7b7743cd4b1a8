"""The alert broker: tells every server process that a practice has new alerts.

A notification carries only "something new in practice P" (with two hints: up to which
position, and for which clients' invoices). It is a doorbell, never the alert itself: a
subscriber that hears it re-reads its own inbox from the database after its cursor, so the
database alone decides what it may see, a lost or repeated notification can delay an alert but
never drop or double it, and catch-up and live delivery are one code path. The clients hint only
spares the other clients of the practice a useless re-read; a subscriber it wrongly skipped
still finds the alert at its next periodic re-check.

Two implementations: `InProcessBroker` (one server process; the default) and `RedisBroker`
(several processes, through Redis pub/sub, when `CAREBILL_REDIS_URL` is set). Both deliver to
the process's `Fanout`, which rings the doorbells of that practice (one per view's feed, see
resolvers/alert_feed.py) without ever waiting on them, so a slow listener cannot hold up the
others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger("carebill.broker")

CHANNEL = "carebill:alerts"


class BrokerUnavailable(RuntimeError):
    """The broker could not take a notification; the caller keeps it pending and retries."""


@dataclass(frozen=True, slots=True)
class AlertNote:
    """Practice `practice_id` has alerts committed up to position `commit_seq`, on invoices of
    `client_ids` (None: of anyone). Both are hints for waking, never for what is shown."""

    practice_id: int
    commit_seq: int
    client_ids: frozenset[int] | None = None

    def concerns(self, client_id: int | None) -> bool:
        """Whether a subscriber acting as client `client_id` (None: staff) should re-read."""
        return client_id is None or self.client_ids is None or client_id in self.client_ids

    def encode(self) -> str:
        clients = None if self.client_ids is None else sorted(self.client_ids)
        return json.dumps(
            {"practice": self.practice_id, "seq": self.commit_seq, "clients": clients}
        )

    @classmethod
    def decode(cls, raw: str | bytes) -> AlertNote | None:
        """The note in `raw`, or None when it is not one (it is then ignored)."""
        try:
            data = json.loads(raw)
            practice, seq = data["practice"], data["seq"]
            clients = data.get("clients")
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        if not isinstance(practice, int) or not isinstance(seq, int):
            return None
        valid_clients = isinstance(clients, list) and all(isinstance(c, int) for c in clients)
        return cls(practice, seq, frozenset(clients) if valid_clients else None)


class Doorbell:
    """One listener's wake-up: rings coalesce into one bit, so it never queues up; `on_ring`,
    when given, is also called at each ring (it must not block)."""

    def __init__(
        self,
        fanout: Fanout,
        practice_id: int,
        client_id: int | None,
        on_ring: Callable[[], None] | None = None,
    ) -> None:
        self._fanout = fanout
        self.practice_id = practice_id
        self.client_id = client_id
        self._rung = asyncio.Event()
        self._on_ring = on_ring

    def ring(self) -> None:
        self._rung.set()
        if self._on_ring is not None:
            self._on_ring()

    async def wait(self, within: float) -> bool:
        """Whether it rang (since the last wait) within `within` seconds."""
        try:
            await asyncio.wait_for(self._rung.wait(), within)
        except TimeoutError:
            return False
        self._rung.clear()
        return True

    def close(self) -> None:
        self._fanout.discard(self)


class Fanout:
    """The doorbells of this process's subscribers, by practice."""

    def __init__(self) -> None:
        self._by_practice: dict[int, set[Doorbell]] = defaultdict(set)

    def doorbell(
        self,
        practice_id: int,
        client_id: int | None = None,
        on_ring: Callable[[], None] | None = None,
    ) -> Doorbell:
        bell = Doorbell(self, practice_id, client_id, on_ring)
        self._by_practice[practice_id].add(bell)
        return bell

    def discard(self, bell: Doorbell) -> None:
        bells = self._by_practice.get(bell.practice_id)
        if bells is not None:
            bells.discard(bell)
            if not bells:
                del self._by_practice[bell.practice_id]

    def deliver(self, note: AlertNote) -> None:
        for bell in self._by_practice.get(note.practice_id, ()):
            if note.concerns(bell.client_id):
                bell.ring()

    def ring_all(self) -> None:
        """Wake everyone: notifications may have been missed (e.g. the broker was away)."""
        for bells in self._by_practice.values():
            for bell in bells:
                bell.ring()

    @property
    def subscriber_count(self) -> int:
        return sum(len(bells) for bells in self._by_practice.values())


class Broker(Protocol):
    """Publishes alert notifications to every process and rings local subscribers."""

    fanout: Fanout

    async def start(self) -> None: ...

    async def publish(self, notes: Sequence[AlertNote]) -> None:
        """Deliver `notes` to every process; raises `BrokerUnavailable` when it cannot."""
        ...

    def subscribe(
        self,
        practice_id: int,
        client_id: int | None = None,
        on_ring: Callable[[], None] | None = None,
    ) -> Doorbell:
        """A doorbell rung when practice `practice_id` may have new alerts (for a subscriber
        acting as client `client_id`: on that client's invoices); close it when done."""
        ...

    async def close(self) -> None: ...


class InProcessBroker:
    """One process: publishing is ringing the local doorbells."""

    def __init__(self) -> None:
        self.fanout = Fanout()

    async def start(self) -> None:
        return None

    async def publish(self, notes: Sequence[AlertNote]) -> None:
        for note in notes:
            self.fanout.deliver(note)

    def subscribe(
        self,
        practice_id: int,
        client_id: int | None = None,
        on_ring: Callable[[], None] | None = None,
    ) -> Doorbell:
        return self.fanout.doorbell(practice_id, client_id, on_ring)

    async def close(self) -> None:
        return None


class RedisBroker:
    """Several processes: notifications go through one Redis pub/sub channel.

    Redis pub/sub is fire-and-forget, so a process that was disconnected may have missed some:
    each time the listener (re)subscribes it rings every local doorbell, and the subscribers
    re-read the database. Automatic reconnects inside redis-py are disabled for the listener
    for exactly that reason: every reconnect must be seen here."""

    def __init__(self, url: str, *, channel: str = CHANNEL, max_backoff: float = 2.0) -> None:
        self.fanout = Fanout()
        self.channel = channel
        self.max_backoff = max_backoff
        # Publishing retries once at once (a pooled connection may have died while Redis
        # restarted); beyond that the relay keeps the alerts pending and retries later.
        self._publisher = Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=2, retry=Retry(NoBackoff(), 1)
        )
        self._listener_client = Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=None, retry=Retry(NoBackoff(), 0)
        )
        self._listener: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="carebill-redis-listener")

    async def publish(self, notes: Sequence[AlertNote]) -> None:
        # Local subscribers need not wait for the round trip (nor for Redis to be up).
        for note in notes:
            self.fanout.deliver(note)
        try:
            async with self._publisher.pipeline(transaction=False) as pipe:
                for note in notes:
                    pipe.publish(self.channel, note.encode())
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc

    def subscribe(
        self,
        practice_id: int,
        client_id: int | None = None,
        on_ring: Callable[[], None] | None = None,
    ) -> Doorbell:
        return self.fanout.doorbell(practice_id, client_id, on_ring)

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            # Typed loosely: redis-py's PubSub methods are not annotated.
            pubsub: Any = self._listener_client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if backoff > 0.1:
                    log.warning("alert broker: reconnected to redis")
                backoff = 0.1
                self.connected.set()
                # Anything published while we were away was lost to us: re-read.
                self.fanout.ring_all()
                await self._relay_messages(pubsub)
            except (RedisError, OSError, TimeoutError) as exc:
                if self.connected.is_set() or backoff == 0.1:
                    log.warning("alert broker: redis unavailable (%s); retrying", exc)
                self.connected.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    async def _relay_messages(self, pubsub: Any, idle: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while True:
            # Bounded waits and a ping when idle: a silently dead connection is noticed within
            # about 3 * idle seconds instead of never.
            message = await pubsub.get_message(timeout=idle)
            if message is None:
                if loop.time() - heard > 3 * idle:
                    raise TimeoutError("no answer from redis to our pings")
                await pubsub.ping()
                continue
            heard = loop.time()
            if message.get("type") != "message":
                continue
            note = AlertNote.decode(message["data"])
            if note is not None:
                self.fanout.deliver(note)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._publisher.aclose()
        await self._listener_client.aclose()


def create_broker(redis_url: str | None) -> Broker:
    """Redis when a URL is configured, else in-process."""
    return RedisBroker(redis_url) if redis_url else InProcessBroker()
