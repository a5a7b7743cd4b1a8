"""A database restart gives no client an error: connections the server closed (all of the
pool's, as a PostgreSQL restart or `pg_terminate_backend` closes them) are never used for a
request: a read finds out at once and reads again on a new connection, a writer's checkout
sees the closed socket. And a request takes one connection from the pool, its authentication
included."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from adapters.database import Database
from app import create_app
from models.enums import Role
from schema.node import encode_id
from schema.services import Services
from tests.api import Api
from tests.asgi import Running, running
from tests.factories import World, make_world

READ = """query($id: ID!) { viewer { role } invoice(id: $id) { id status amountDue { amount }
  payments { amount { amount } recordedBy { id } } history { action actor { id } } } }"""
PAY = """mutation($input: RecordPaymentInput!) { recordPayment(input: $input) {
  invoice { amountDue { amount } } errors { code } } }"""
# Set while the test's own request runs: the app's background tasks (the relay, the notifier)
# take connections of their own meanwhile, which the test does not count.
_MINE: ContextVar[bool] = ContextVar("mine", default=False)


@pytest.fixture
async def app_on_own_database(own_database: Services) -> AsyncIterator[tuple[Running, Api]]:
    """The app on a database of its own, whose every connection the test may close."""
    async with running(create_app(own_database.settings)) as served:
        transport = httpx.ASGITransport(app=served.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://carebill.test") as h:
            yield served, Api(h)


async def _close_every_connection_of(url: str) -> int:
    """What a restart does to the database's clients: the server ends every session (and
    this waits until they have ended)."""
    admin = create_async_engine(url, poolclass=NullPool)
    try:
        async with admin.connect() as connection:
            ended = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        await admin.dispose()
    return int(ended or 0)


def _close_every_connection_unnoticed(url: str) -> int:
    """The same, while this event loop does not run (another thread does it): the app has not
    read the news when its next request starts, and its connections still look open."""
    ended: list[int] = []
    worker = threading.Thread(
        target=lambda: ended.append(asyncio.run(_close_every_connection_of(url)))
    )
    worker.start()
    worker.join()
    return ended[0]


async def _given_a_pool_of_several(
    api: Api, world: World
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """An invoice's answer to its client, the client's token and the query's variables, after
    requests at once: the pool holds several connections."""
    invoice = await world.invoice(world.c1, paid=1_000)
    client = await world.token(world.c1, Role.CLIENT)
    variables = {"id": encode_id("Invoice", invoice)}
    answers = await asyncio.gather(*(api.data(READ, variables, client) for _ in range(4)))
    assert answers[0]["invoice"]["amountDue"] == {"amount": 9_000}
    return answers[0], client, variables


async def test_reads_right_after_the_server_closed_every_connection(
    own_database: Services, app_on_own_database: tuple[Running, Api]
) -> None:
    """Each read connection's first statement fails and runs again on a new connection."""
    _, api = app_on_own_database
    world = await make_world(own_database)
    before, client, variables = await _given_a_pool_of_several(api, world)
    provider = await world.token(world.provider, Role.PROVIDER)
    if not own_database.db.is_sqlite:  # an embedded database has no server to restart
        assert _close_every_connection_unnoticed(own_database.settings.database_url) >= 4
    after = await asyncio.gather(*(api.data(READ, variables, client) for _ in range(4)))
    assert after == [before] * 4
    payment = {"invoiceId": variables["id"], "amount": 500, "method": "CASH"}
    paid = await api.data(PAY, {"input": payment}, provider)
    assert paid["recordPayment"] == {"invoice": {"amountDue": {"amount": 8_500}}, "errors": []}


async def test_a_mutation_after_the_server_closed_every_connection(
    own_database: Services, app_on_own_database: tuple[Running, Api]
) -> None:
    """The pool sees the closed sockets when it hands out a connection, and opens another."""
    _, api = app_on_own_database
    world = await make_world(own_database)
    before, client, variables = await _given_a_pool_of_several(api, world)
    provider = await world.token(world.provider, Role.PROVIDER)
    if not own_database.db.is_sqlite:
        assert await _close_every_connection_of(own_database.settings.database_url) >= 4
    payment = {"invoiceId": variables["id"], "amount": 500, "method": "CASH"}
    paid = await api.data(PAY, {"input": payment}, provider)
    assert paid["recordPayment"] == {"invoice": {"amountDue": {"amount": 8_500}}, "errors": []}
    after = await api.data(READ, variables, client)
    assert after["invoice"]["amountDue"] == {"amount": 8_500}
    assert after["invoice"]["history"][:-1] == before["invoice"]["history"]


async def test_a_request_checks_out_one_connection(
    own_database: Services, app_on_own_database: tuple[Running, Api]
) -> None:
    """The token is checked on the request's one read connection, not on one of its own."""
    served, api = app_on_own_database
    world: World = await make_world(own_database)
    invoice = await world.invoice(world.c1, paid=1_000)
    client = await world.token(world.c1, Role.CLIENT)
    variables = {"id": encode_id("Invoice", invoice)}
    checkouts: list[object] = []

    def on_checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
        if _MINE.get():
            checkouts.append(record)

    pool = served.services.db.engine.sync_engine.pool
    event.listen(pool, "checkout", on_checkout)
    mine = _MINE.set(True)
    try:
        data = await api.data(READ, variables, client)
    finally:
        _MINE.reset(mine)
        event.remove(pool, "checkout", on_checkout)
    assert data["viewer"] == {"role": "CLIENT"}
    assert data["invoice"]["amountDue"] == {"amount": 9_000}
    assert len(checkouts) == 1


async def test_a_connection_idle_too_long_is_pinged_and_replaced_when_dead(
    own_database: Services,
) -> None:
    """Past the idle spell (here none) a checkout pings the connection; one that does not
    answer is replaced before anybody uses it."""
    url = own_database.settings.database_url
    db = Database(url, ping_after_idle=0.0)
    try:
        assert (await db.execute(text("SELECT 1"))).scalar() == 1
        if not db.is_sqlite:
            assert _close_every_connection_unnoticed(url) >= 1
        async with db.writer() as session, session.begin():  # no retry: the ping saw to it
            assert (await session.execute(text("SELECT 2"))).scalar() == 2
    finally:
        await db.dispose()
