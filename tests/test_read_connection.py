"""An HTTP request reads through one connection, whatever its shape: every sibling root field,
every loader batch and every reading session of the request share it (statements one at a
time), a writer is opened only once it is given back, and it goes back to the pool when the
request ends, however it ends. The pool keeps its connections: a steady load opens none."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from models.enums import Role
from schema.node import encode_id
from tests.api import Api
from tests.asgi import Running
from tests.factories import World
from tests.test_connections_per_request import _MINE, HeldConnections

# Sibling root fields, each with nested lists the loaders batch (payments, refunds, history,
# people, roles, balances, providers, the practice), reading sessions (notification
# preferences, the practice's settings) and the alert inbox.
WIDE = """query($invoice: ID!, $client: ID!) {
  viewer { role user { id roles } notificationPreferences { emailEnabled } practice { id } }
  practice { id clientBilling { providers { id } } reminders { daysBeforeDue } }
  a: invoices(first: 20) { totalCount edges { node { id overdue canPay
    client { id balance { amount } providers { id } } provider { id roles }
    payments { id recordedBy { id } } refunds { id } history { action actor { id } } } } }
  b: invoices(first: 2, filter: {overdue: false}) { edges { node { id amountDue { amount } } } }
  clients(first: 10) { totalCount edges { node { id invoices(first: 2) { totalCount } } } }
  invoice(id: $invoice) { id payments { id } history { action } }
  client(id: $client) { id invoices { edges { node { id } } } }
  node(id: $invoice) { id }
  alerts(first: 5) { totalCount }
  billingReport(from: "2025-01-01", to: "2028-01-01") { __typename }
}"""

RECORD_TWICE = """mutation($a: RecordPaymentInput!, $b: RecordPaymentInput!) {
  first: recordPayment(input: $a) { invoice { id amountPaid { amount } history { action
    actor { id name } } payments { id } } errors { code } }
  second: recordPayment(input: $b) { invoice { id amountDue { amount } client { id balance {
    amount } } } errors { code } }
}"""


@contextmanager
def held_by_this_test(served: Running) -> Iterator[HeldConnections]:
    pool = served.services.db.engine.sync_engine.pool
    held = HeldConnections()
    event.listen(pool, "checkout", held.checkout)
    event.listen(pool, "checkin", held.checkin)
    token = _MINE.set(True)
    try:
        yield held
    finally:
        _MINE.reset(token)
        event.remove(pool, "checkout", held.checkout)
        event.remove(pool, "checkin", held.checkin)


async def test_a_wide_request_holds_one_connection(served: Running, api: Api, world: World) -> None:
    for n in range(6):
        await world.invoice(
            (world.c1, world.c2)[n % 2], days_ago=n, amount=2_000, paid=2_000, refunded=500
        )
    token = await world.token(world.admin, Role.ADMIN)
    variables = {
        "invoice": encode_id("Invoice", await world.invoice(world.c1, paid=100)),
        "client": encode_id("Client", world.c1.id),
    }
    await api.data(WIDE, variables, token)  # the authentication's session comes first, alone
    with held_by_this_test(served) as held:
        data = await api.data(WIDE, variables, token)
    assert data["a"]["totalCount"] == 7
    assert len(data["a"]["edges"][-1]["node"]["history"]) == 3
    assert held.most == 1
    assert held.mine == set()


async def test_a_mutation_never_holds_a_reader_and_a_writer(
    served: Running, api: Api, world: World
) -> None:
    """The first payload reads; the second mutation's writer waits until that connection is
    given back."""
    first, second = await world.invoice(world.c1), await world.invoice(world.c2)
    token = await world.token(world.provider, Role.PROVIDER)

    def pay(invoice: int) -> dict[str, Any]:
        return {"invoiceId": encode_id("Invoice", invoice), "amount": 1_000, "method": "CASH"}

    with held_by_this_test(served) as held:
        data = await api.data(RECORD_TWICE, {"a": pay(first), "b": pay(second)}, token)
    assert data["first"]["errors"] == data["second"]["errors"] == []
    assert data["first"]["invoice"]["amountPaid"] == {"amount": 1_000}
    assert data["second"]["invoice"]["amountDue"] == {"amount": 9_000}
    assert held.most == 1
    assert held.mine == set()


async def test_a_failed_request_gives_its_connection_back(
    served: Running, api: Api, world: World
) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    with held_by_this_test(served) as held:
        body = await api.post(
            "{ invoices(first: 1) { totalCount } practice { paymentProcessors { id } } }",
            token=token,
        )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert held.most == 1
    assert held.mine == set()


async def test_a_steady_load_opens_no_connection(served: Running, api: Api, world: World) -> None:
    """Rounds of 16 clients at once: the pool keeps every connection it opens (none is closed
    on its way back, as an overflow connection is), so once it holds what 16 requests at once
    need, a round opens none."""
    for n in range(4):
        await world.invoice(world.c1, days_ago=n, paid=1_000)
    token = await world.token(world.admin, Role.ADMIN)
    query = """{ invoices(first: 10) { totalCount edges { node { id client { id name }
      provider { id } payments { id } history { action actor { id } } } } } }"""
    pool = served.services.db.engine.sync_engine.pool
    opened: list[object] = []
    closed: list[object] = []

    def on_connect(_dbapi: Any, record: Any) -> None:
        opened.append(record)

    def on_close(_dbapi: Any, record: Any) -> None:
        closed.append(record)

    async def round_of(clients: int) -> int:
        """The connections the pool opened during one round."""
        before = len(opened)
        answers = await asyncio.gather(*(api.data(query, token=token) for _ in range(clients)))
        assert all(a["invoices"]["totalCount"] == 4 for a in answers)
        return len(opened) - before

    event.listen(pool, "connect", on_connect)
    event.listen(pool, "close", on_close)
    try:
        # The pool grows to the most requests ever at once (the first rounds), then stays.
        rounds = [await round_of(16) for _ in range(3)]
        while rounds[-1] and len(rounds) < 12:
            rounds.append(await round_of(16))
    finally:
        event.remove(pool, "connect", on_connect)
        event.remove(pool, "close", on_close)
    assert rounds[-1] == 0, rounds
    assert closed == []
