"""sendInvoice: who may send, to whom, validation, tax frozen at send time, numbering."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from models.enums import SalesTaxMode
from schema.services import Services
from tests.api import Api
from tests.factories import World, make_world
from tests.lifecycle import SEND, client_gid, gid, invoice_count, mutate


async def test_provider_sends_invoice_to_own_client(api: Api, world: World) -> None:
    token = await world.token(world.provider, "PROVIDER")
    due = (date.today() + timedelta(days=30)).isoformat()

    payload = await mutate(
        api,
        SEND,
        token,
        clientId=client_gid(world.c1),
        description="  Video consultation  ",
        amount=12_345,
        dueDate=due,
    )

    assert payload["errors"] == []
    invoice = payload["invoice"]
    assert invoice["number"].startswith("INV-")
    assert invoice == {
        "id": invoice["id"],
        "number": invoice["number"],
        "description": "Video consultation",
        "status": "UNPAID",
        "client": {"id": client_gid(world.c1), "name": world.c1.name},
        "provider": {"id": gid("User", world.provider.id), "name": world.provider.name},
        "subtotal": {"amount": 12_345, "currency": "USD"},
        "tax": {"amount": 0},
        "total": {"amount": 12_345, "formatted": "$123.45"},
        "amountPaid": {"amount": 0},
        "amountRefunded": {"amount": 0},
        "amountDue": {"amount": 12_345},
        "refundableAmount": {"amount": 0},
        "canPay": False,
        "canRecordPayment": True,
        "canForgive": True,
        "canVoid": True,
        "canRefund": False,
        "payments": [],
        "refunds": [],
        "history": [
            {
                "action": "SENT",
                "actor": {"name": world.provider.name},
                "amount": {"amount": 12_345},
                "note": None,
            }
        ],
        "dueDate": due,
    }


@pytest.mark.parametrize(
    ("mode", "rate", "amount", "subtotal", "tax", "total"),
    [
        (SalesTaxMode.EXCLUSIVE, 825, 1_999, 1_999, 165, 2_164),
        (SalesTaxMode.INCLUSIVE, 2_000, 100, 83, 17, 100),
        (SalesTaxMode.NONE, 0, 500, 500, 0, 500),
    ],
)
async def test_tax_is_computed_and_frozen_at_send_time(
    api: Api,
    services: Services,
    mode: SalesTaxMode,
    rate: int,
    amount: int,
    subtotal: int,
    tax: int,
    total: int,
) -> None:
    world = await make_world(services, tax=(mode, rate))
    token = await world.token(world.provider, "PROVIDER")
    sent = await mutate(
        api, SEND, token, clientId=client_gid(world.c1), description="x", amount=amount
    )
    assert sent["errors"] == []
    assert (sent["invoice"]["subtotal"]["amount"], sent["invoice"]["tax"]["amount"]) == (
        subtotal,
        tax,
    )
    assert sent["invoice"]["total"]["amount"] == total

    # when the admin changes the rule, the invoice already sent keeps its own
    admin = await world.token(world.admin, "ADMIN")
    changed = await api.data(
        "mutation { setSalesTax(input: {mode: EXCLUSIVE, rateBasisPoints: 5000})"
        " { errors { code } } }",
        token=admin,
    )
    assert changed["setSalesTax"]["errors"] == []
    again = await api.data(
        "query($id: ID!) { invoice(id: $id)"
        " { tax { amount } total { amount } taxRateBasisPoints } }",
        {"id": sent["invoice"]["id"]},
        token=token,
    )
    assert again["invoice"] == {
        "tax": {"amount": tax},
        "total": {"amount": total},
        "taxRateBasisPoints": rate,
    }


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"description": "   "}, "VALIDATION", "description"),
        ({"description": "x" * 1001}, "VALIDATION", "description"),
        ({"amount": 0}, "VALIDATION", "amount"),
        ({"amount": -5}, "VALIDATION", "amount"),
        ({"amount": 100_000_000}, "VALIDATION", "amount"),
        ({"dueDate": (date.today() - timedelta(days=2)).isoformat()}, "VALIDATION", "dueDate"),
        ({"clientId": "not-an-id"}, "NOT_FOUND", "clientId"),
        ({"clientId": gid("Invoice", 1)}, "NOT_FOUND", "clientId"),
        ({"clientId": gid("Client", 999_999_999)}, "NOT_FOUND", "clientId"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_written(
    api: Api, world: World, fields: dict[str, object], code: str, field: str
) -> None:
    token = await world.token(world.provider, "PROVIDER")
    before = await invoice_count(world)
    variables = {
        "clientId": client_gid(world.c1),
        "description": "Session",
        "amount": 1_000,
        **fields,
    }
    payload = await mutate(api, SEND, token, **variables)
    assert payload["invoice"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert await invoice_count(world) == before


async def test_who_may_send(api: Api, world: World, other_world: World) -> None:
    cases = [
        (world.admin, "ADMIN", world.c1, "FORBIDDEN"),
        (world.admin, "PROVIDER", world.c1, "FORBIDDEN"),  # not assigned to Client Billing
        (world.provider2, "PROVIDER", world.c3, "FORBIDDEN"),  # not assigned to Client Billing
        (world.c1, "CLIENT", world.c1, "FORBIDDEN"),
        (world.provider, "PROVIDER", world.c3, "NOT_FOUND"),  # another provider's client
        (world.provider, "PROVIDER", other_world.c1, "NOT_FOUND"),  # another practice
    ]
    for person, role, client, code in cases:
        token = await world.token(person, role)
        before = await invoice_count(world)
        payload = await mutate(
            api, SEND, token, clientId=client_gid(client), description="x", amount=100
        )
        assert payload["invoice"] is None, (person, role)
        assert [e["code"] for e in payload["errors"]] == [code], (person, role)
        assert await invoice_count(world) == before


async def test_disabled_client_billing_is_not_configured(api: Api, services: Services) -> None:
    world = await make_world(services, billing_enabled=False)
    token = await world.token(world.provider, "PROVIDER")
    payload = await mutate(
        api, SEND, token, clientId=client_gid(world.c1), description="x", amount=100
    )
    assert [e["code"] for e in payload["errors"]] == ["NOT_CONFIGURED"]
    assert await invoice_count(world) == 0


async def test_unauthenticated_send_is_a_top_level_error(api: Api, world: World) -> None:
    codes = await api.error_codes(
        SEND, {"input": {"clientId": client_gid(world.c1), "description": "x", "amount": 1}}
    )
    assert codes == ["UNAUTHENTICATED"]


async def test_numbers_are_sequential_and_gap_free_under_concurrent_sends(
    api: Api, world: World
) -> None:
    token = await world.token(world.provider, "PROVIDER")

    async def send(i: int) -> str:
        payload = await mutate(
            api,
            SEND,
            token,
            clientId=client_gid(world.c1 if i % 2 else world.c2),
            description=f"#{i}",
            amount=100 + i,
        )
        assert payload["errors"] == []
        number: str = payload["invoice"]["number"]
        return number

    numbers = await asyncio.gather(*(send(i) for i in range(12)))
    assert sorted(numbers) == [f"INV-{n:06d}" for n in range(1, 13)]


async def test_a_client_may_be_named_by_its_user_id(api: Api, world: World) -> None:
    """addMember answers with a User: its id names the same client."""
    token = await world.token(world.provider, "PROVIDER")
    sent = await mutate(
        api, SEND, token, clientId=gid("User", world.c1.id), description="x", amount=100
    )
    assert sent["errors"] == []
    assert sent["invoice"]["client"]["id"] == client_gid(world.c1)
    listed = await api.data(
        "query($c: ID) { invoices(filter: {clientId: $c}) { totalCount } }",
        {"c": gid("User", world.c1.id)},
        token=token,
    )
    assert listed["invoices"]["totalCount"] == 1
