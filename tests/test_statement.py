"""Client.statement: a client's balance and their invoices, payments and refunds over a period
(days in the practice's time zone) — for the client, their provider and an admin only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from schema.node import encode_id
from tests.api import Api
from tests.conftest import StatementCounter
from tests.factories import InvoiceSpec, Person, World, bulk_invoices, random_invoice_specs

STATEMENT = """
query Statement($id: ID!, $from: Date!, $to: Date!) {
  client(id: $id) {
    statement(from: $from, to: $to) {
      from to
      client { id name }
      balance { amount currency } invoiced { amount } invoicedCount
      outstanding { amount } paid { amount } refunded { amount }
      invoices { number status total { amount } amountDue { amount } }
      payments { payment { amount { amount } receivedAt } invoice { number } }
      refunds { refund { amount { amount } reason createdAt } invoice { number } }
    }
  }
}
"""

NEW_YORK = ZoneInfo("America/New_York")


def local(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK).astimezone(UTC)


def march(client: Person) -> dict[str, Any]:
    return {"id": encode_id("Client", client.id), "from": "2025-03-01", "to": "2025-03-31"}


def number(n: int) -> str:
    return f"INV-{n:06d}"


async def cleo_in_march(world: World) -> None:
    """Given c1's invoices, payments and refunds before, in and after March 2025 (New York)."""
    w = world
    await bulk_invoices(
        w,
        [
            # 1: sent in February, paid in February and March, part refunded in March
            InvoiceSpec(
                w.c1,
                w.provider,
                10_000,
                local(2025, 2, 20),
                payments=((4_000, local(2025, 2, 25)), (None, local(2025, 3, 5))),
                refunds=((2_000, local(2025, 3, 20)),),
            ),
            # 2: sent at the first local minute of March, part paid at its last minute
            InvoiceSpec(
                w.c1,
                w.provider,
                20_000,
                local(2025, 3, 1, 0, 0),
                payments=((5_000, local(2025, 3, 31, 23, 59)),),
            ),
            # 3: sent and voided in March
            InvoiceSpec(w.c1, w.provider, 7_000, local(2025, 3, 15), close="void"),
            # 4: sent in March, part paid in the first local minute of April
            InvoiceSpec(
                w.c1,
                w.provider,
                3_000,
                local(2025, 3, 20),
                payments=((1_000, local(2025, 4, 1, 0, 0)),),
            ),
            # 5 and 6: sent after and before March, unpaid (they count in the balance only)
            InvoiceSpec(w.c1, w.provider, 8_000, local(2025, 4, 1, 0, 0)),
            InvoiceSpec(w.c1, w.provider, 1_500, local(2025, 1, 10)),
            # 7: another client's invoice in March
            InvoiceSpec(
                w.c2, w.provider, 9_999, local(2025, 3, 10), payments=((9, local(2025, 3, 11)),)
            ),
        ],
    )


def cleo_statement(world: World) -> dict[str, Any]:
    return {
        "from": "2025-03-01",
        "to": "2025-03-31",
        "client": {"id": encode_id("Client", world.c1.id), "name": world.c1.name},
        "balance": {"amount": 15_000 + 2_000 + 8_000 + 1_500, "currency": "USD"},
        "invoiced": {"amount": 23_000},
        "invoicedCount": 2,
        "outstanding": {"amount": 17_000},
        "paid": {"amount": 11_000},
        "refunded": {"amount": 2_000},
        "invoices": [
            {
                "number": number(2),
                "status": "UNPAID",
                "total": {"amount": 20_000},
                "amountDue": {"amount": 15_000},
            },
            {
                "number": number(3),
                "status": "VOID",
                "total": {"amount": 7_000},
                "amountDue": {"amount": 0},
            },
            {
                "number": number(4),
                "status": "UNPAID",
                "total": {"amount": 3_000},
                "amountDue": {"amount": 2_000},
            },
        ],
        "payments": [
            {
                "payment": {
                    "amount": {"amount": 6_000},
                    "receivedAt": local(2025, 3, 5).isoformat(),
                },
                "invoice": {"number": number(1)},
            },
            {
                "payment": {
                    "amount": {"amount": 5_000},
                    "receivedAt": local(2025, 3, 31, 23, 59).isoformat(),
                },
                "invoice": {"number": number(2)},
            },
        ],
        "refunds": [
            {
                "refund": {
                    "amount": {"amount": 2_000},
                    "reason": "test",
                    "createdAt": local(2025, 3, 20).isoformat(),
                },
                "invoice": {"number": number(1)},
            }
        ],
    }


async def test_a_client_gets_their_statement(api: Api, world: World) -> None:
    await cleo_in_march(world)
    token = await world.token(world.c1, "CLIENT")

    data = await api.data(STATEMENT, march(world.c1), token)

    assert data == {"client": {"statement": cleo_statement(world)}}


async def test_their_provider_and_an_admin_get_the_same_statement(api: Api, world: World) -> None:
    await cleo_in_march(world)

    for person, role in ((world.provider, "PROVIDER"), (world.admin, "ADMIN")):
        data = await api.data(STATEMENT, march(world.c1), await world.token(person, role))
        assert data == {"client": {"statement": cleo_statement(world)}}, role


async def test_nobody_else_sees_the_statement(api: Api, world: World, other_world: World) -> None:
    # Given c1's statement exists
    await cleo_in_march(world)

    # When another client, a provider who is not theirs and another practice's admin ask
    for token in (
        await world.token(world.c2, "CLIENT"),
        await world.token(world.provider2, "PROVIDER"),
        await other_world.token(other_world.admin, "ADMIN"),
    ):
        body = await api.post(STATEMENT, march(world.c1), token)

        # Then the client does not exist for them
        assert body == {"data": {"client": None}}

    assert await api.error_codes(STATEMENT, march(world.c1)) == ["UNAUTHENTICATED"]


async def test_a_period_ending_before_it_starts_is_refused(api: Api, world: World) -> None:
    token = await world.token(world.c1, "CLIENT")
    variables = march(world.c1) | {"from": "2025-04-01"}

    body = await api.post(STATEMENT, variables, token)

    assert body["data"] == {"client": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["VALIDATION"]
    assert body["errors"][0]["path"] == ["client", "statement"]


async def test_the_number_of_statements_does_not_grow_with_the_invoices(
    api: Api,
    world: World,
    other_world: World,
    count_statements: Callable[[], StatementCounter],
) -> None:
    # Given c1 of one practice with a few invoices, and c1 of another with hundreds
    await cleo_in_march(world)
    o = other_world
    specs = [
        s
        for s in random_invoice_specs(o, 900, local(2025, 2, 1), local(2025, 4, 1))
        if s.client == o.c1
    ]
    await bulk_invoices(o, specs)
    small = (march(world.c1), await world.token(world.c1, "CLIENT"))
    large = (march(o.c1), await o.token(o.c1, "CLIENT"))
    await api.data(STATEMENT, *small)  # warm up

    # When each client asks for their March statement
    counter = count_statements()
    counted = []
    for variables, token in (small, large):
        counter.reset()
        data = await api.data(STATEMENT, variables, token)
        counted.append(len(counter.queries()))
        statement = data["client"]["statement"]
        assert all(statement[key] for key in ("invoices", "payments", "refunds"))

    # Then both take as many: the session, the client, the practice, the figures, the invoices,
    # the payments, the refunds, and the payments and refunds of the listed invoices
    assert counted == [9, 9]
    assert len(statement["invoices"]) > 100
