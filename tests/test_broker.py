"""The broker and the relay: doorbells that coalesce and never block, Redis pub/sub between
processes that survives an outage, and a relay that marks alerts published only once the
broker took them."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select

from adapters.broker import AlertNote, BrokerUnavailable, Fanout, InProcessBroker, RedisBroker
from adapters.database import Database
from adapters.relay import Relay
from models import Alert
from schema.services import Services
from tests.factories import make_world
from tests.live_server import RedisServer


async def test_doorbells_ring_per_practice_and_coalesce() -> None:
    fanout = Fanout()
    mine, neighbour, elsewhere = fanout.doorbell(1), fanout.doorbell(1), fanout.doorbell(2)
    for seq in range(1, 1001):  # nobody is waiting: delivering never blocks nor queues
        fanout.deliver(AlertNote(practice_id=1, commit_seq=seq))
    assert await mine.wait(0.1) is True
    assert await mine.wait(0.05) is False  # a thousand rings were one
    assert await neighbour.wait(0.1) is True
    assert await elsewhere.wait(0.05) is False
    fanout.ring_all()
    assert [await b.wait(0.1) for b in (mine, neighbour, elsewhere)] == [True, True, True]
    assert fanout.subscriber_count == 3
    for bell in (mine, neighbour, elsewhere):
        bell.close()
    bell.close()  # closing twice is harmless
    assert fanout.subscriber_count == 0


async def test_a_clients_doorbell_rings_only_for_its_own_invoices() -> None:
    fanout = Fanout()
    staff, mine, theirs = fanout.doorbell(1), fanout.doorbell(1, 10), fanout.doorbell(1, 11)
    fanout.deliver(AlertNote(1, 5, frozenset({10})))
    assert [await b.wait(0.05) for b in (staff, mine, theirs)] == [True, True, False]
    fanout.deliver(AlertNote(1, 6))  # no hint: everyone re-reads
    assert [await b.wait(0.05) for b in (staff, mine, theirs)] == [True, True, True]


def test_notes_round_trip_and_garbage_is_ignored() -> None:
    for note in (AlertNote(12, 3456), AlertNote(12, 3457, frozenset({4, 9}))):
        assert AlertNote.decode(note.encode()) == note
        assert AlertNote.decode(note.encode().encode()) == note
    hint_garbage = b'{"practice": 1, "seq": 2, "clients": ["x"]}'
    assert AlertNote.decode(hint_garbage) == AlertNote(1, 2, None)  # wakes everyone
    for garbage in (b"", b"null", b"[]", b'{"practice": "1", "seq": 2}', b'{"seq": 2}', b"\xff"):
        assert AlertNote.decode(garbage) is None


async def test_in_process_broker_rings_local_doorbells() -> None:
    broker = InProcessBroker()
    await broker.start()
    bell = broker.subscribe(5)
    await broker.publish([AlertNote(5, 1), AlertNote(6, 2)])
    assert await bell.wait(0.1) is True
    bell.close()
    await broker.close()


async def test_redis_carries_notes_between_processes_and_survives_an_outage(
    redis_server: RedisServer,
) -> None:
    sender, receiver = RedisBroker(redis_server.url), RedisBroker(redis_server.url)
    await sender.start()
    await receiver.start()
    try:
        await asyncio.wait_for(receiver.connected.wait(), 5)
        bell, quiet = receiver.subscribe(7), receiver.subscribe(8)
        await sender.publish([AlertNote(7, 1)])
        assert await bell.wait(5) is True
        assert await quiet.wait(0.3) is False

        redis_server.stop()
        with pytest.raises(BrokerUnavailable):
            await sender.publish([AlertNote(7, 2)])
        await wait_until(lambda: not receiver.connected.is_set())

        redis_server.start()
        await asyncio.wait_for(receiver.connected.wait(), 10)
        # Back: every local subscriber is woken, since notes may have been lost meanwhile.
        assert await bell.wait(1) is True
        assert await quiet.wait(1) is True
        await sender.publish([AlertNote(8, 3)])
        assert await quiet.wait(5) is True
        assert await bell.wait(0.3) is False
    finally:
        await sender.close()
        await receiver.close()


async def wait_until(condition: Callable[[], bool | Awaitable[bool]], within: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        outcome = condition()
        if await outcome if inspect.isawaitable(outcome) else outcome:
            return
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


async def pending_is_zero(db: Database) -> bool:
    return await pending(db) == 0


async def pending(db: Database) -> int:
    async with db.reader() as session:
        statement = select(func.count()).where(Alert.published_at.is_(None))
        return int((await session.execute(statement)).scalar_one())


async def test_relay_marks_alerts_published_only_once_the_broker_took_them(
    own_database: Services,
) -> None:
    world = await make_world(own_database)
    await world.invoice(world.c1)
    await world.invoice(world.c2, paid=10_000)
    db = own_database.db
    assert await pending(db) == 3

    redis = RedisServer()  # not started yet: the broker is down
    down = RedisBroker(redis.url)
    with pytest.raises(BrokerUnavailable):
        await Relay(db, down).publish_pending()
    assert await pending(db) == 3  # nothing lost

    redis.start()
    listener = RedisBroker(redis.url)
    try:
        await listener.start()
        await asyncio.wait_for(listener.connected.wait(), 5)
        bell = listener.subscribe(world.practice_id)
        assert await Relay(db, down).publish_pending() == 3
        assert await bell.wait(5) is True
        assert await pending(db) == 0
        assert await Relay(db, down).publish_pending() == 0  # nothing is published twice
        assert await bell.wait(0.3) is False
    finally:
        await down.close()
        await listener.close()
        redis.stop()


async def test_relay_wakes_when_this_process_commits_an_alert(own_database: Services) -> None:
    world = await make_world(own_database)
    broker = InProcessBroker()
    relay = Relay(own_database.db, broker, poll_seconds=60)  # its poll will not be what wakes it
    relay.start()
    try:
        bell = broker.subscribe(world.practice_id)
        await asyncio.sleep(0.1)  # its first pass (nothing pending) is over
        await world.invoice(world.c1)
        assert await bell.wait(5) is True
        await wait_until(lambda: pending_is_zero(own_database.db))
    finally:
        await relay.stop()
