"""Two uvicorn processes sharing one database and one Redis: an alert committed through one
reaches subscribers of the other, exactly once and in the same order; a Redis outage delays
alerts but loses and doubles none."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from models import Alert
from schema.services import Services
from tests.factories import Person, World, make_world
from tests.lifecycle import client_gid
from tests.live_server import (
    RECORD,
    SEND,
    LiveServer,
    RedisServer,
    running_server,
    subscribed,
)

# Idle re-reads only every minute: in these tests alerts travel through the broker.
BROKER_ONLY = {"CAREBILL_ALERT_RECHECK_MS": "60000"}


@pytest.fixture
def two_servers(
    own_database: Services, redis_server: RedisServer
) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two processes alone on a database of their own (a third process on the same database
    but not on the same Redis would publish alerts that these two never hear of)."""
    settings = own_database.settings
    with (
        running_server(settings, redis_url=redis_server.url, env=BROKER_ONLY) as first,
        running_server(settings, redis_url=redis_server.url, env=BROKER_ONLY) as second,
    ):
        yield first, second


@pytest.fixture
async def world(own_database: Services) -> World:
    return await make_world(own_database)


async def send(server: LiveServer, world: World, client: Person) -> str:
    token = await world.token(world.provider, "PROVIDER")
    invoice = await server.change(
        SEND, token, clientId=client_gid(client), description="Session", amount=10_000
    )
    invoice_id: str = invoice["id"]
    return invoice_id


async def test_a_change_on_one_process_reaches_subscribers_of_the_other(
    two_servers: tuple[LiveServer, LiveServer], world: World
) -> None:
    a, b = two_servers
    admin = await world.token(world.admin, "ADMIN")
    c1, c2 = await world.token(world.c1, "CLIENT"), await world.token(world.c2, "CLIENT")
    provider = await world.token(world.provider, "PROVIDER")
    async with contextlib.AsyncExitStack() as stack:
        admin_on_a = await stack.enter_async_context(subscribed(a, admin))
        admin_on_b = await stack.enter_async_context(subscribed(b, admin))
        c1_on_a = await stack.enter_async_context(subscribed(a, c1))
        c2_on_a = await stack.enter_async_context(subscribed(a, c2))

        first = await send(b, world, world.c1)
        assert (await c1_on_a.next_alert())["invoice"]["id"] == first
        # Concurrent changes through both processes.
        invoices = await asyncio.gather(
            *(send(server, world, client) for server in (a, b) for client in (world.c1, world.c2))
        )
        await asyncio.gather(
            *(
                server.change(RECORD, provider, invoiceId=i, amount=10_000, method="CASH")
                for server, i in zip((b, a, b, a), invoices, strict=True)
            )
        )
        on_a = await admin_on_a.alerts(9)
        on_b = await admin_on_b.alerts(9)
        mine = await c1_on_a.alerts(4)
        theirs = await c2_on_a.alerts(4)
        for socket in (admin_on_a, admin_on_b, c1_on_a, c2_on_a):
            await socket.silence(0.5)

    assert [x["id"] for x in on_a] == [x["id"] for x in on_b]  # one commit order for all
    assert len({x["id"] for x in on_a}) == 9
    assert {x["id"] for x in mine} | {x["id"] for x in theirs} <= {x["id"] for x in on_a}
    assert {x["invoice"]["id"] for x in mine} == {invoices[0], invoices[2]}
    assert {x["invoice"]["id"] for x in theirs} == {invoices[1], invoices[3]}
    assert sorted(x["kind"] for x in mine) == ["INVOICE_PAID"] * 2 + ["INVOICE_SENT"] * 2


async def unpublished(world: World) -> int:
    async with world.db.reader() as session:
        statement = select(func.count()).where(
            Alert.practice_id == world.practice_id, Alert.published_at.is_(None)
        )
        return int((await session.execute(statement)).scalar_one())


async def test_redis_outage_delays_alerts_but_loses_and_doubles_none(
    two_servers: tuple[LiveServer, LiveServer], redis_server: RedisServer, world: World
) -> None:
    a, b = two_servers
    admin = await world.token(world.admin, "ADMIN")
    async with subscribed(a, admin) as far, subscribed(b, admin) as near:
        before = await send(b, world, world.c1)
        assert (await far.next_alert())["invoice"]["id"] == before
        assert (await near.next_alert())["invoice"]["id"] == before

        redis_server.stop()
        during = [await send(b, world, c) for c in (world.c1, world.c2, world.c1)]
        # The process that committed them rings its own subscribers at once; the other one's
        # relay finds them still unpublished in the shared database and rings its own.
        assert [x["invoice"]["id"] for x in await near.alerts(3)] == during
        assert [x["invoice"]["id"] for x in await far.alerts(3, within=20)] == during
        assert await unpublished(world) == 3  # kept pending while Redis is away

        redis_server.start()
        for _ in range(200):  # the relays publish what is pending once Redis is back
            if await unpublished(world) == 0:
                break
            await asyncio.sleep(0.05)
        assert await unpublished(world) == 0
        after = await send(a, world, world.c2)
        assert (await far.next_alert())["invoice"]["id"] == after
        assert (await near.next_alert(within=20))["invoice"]["id"] == after
        # Republishing the pending alerts woke everyone: nobody receives one twice.
        await far.silence(1.0)
        await near.silence(0.5)
