"""Idempotency keys on sendInvoice, recordPayment and refundInvoice: a retry returns the first
result and changes nothing; the same key with other input is a CONFLICT."""

from __future__ import annotations

import asyncio

from models import ClientBillingProvider, Membership, ProviderClient
from models.enums import Role
from tests.api import Api
from tests.factories import World
from tests.lifecycle import RECORD, REFUND, SEND, client_gid, gid, invoice_count, mutate, snapshot


async def test_send_retried_with_the_same_key_sends_once(api: Api, world: World) -> None:
    token = await world.token(world.provider, "PROVIDER")
    fields = {
        "clientId": client_gid(world.c1),
        "description": "Session",
        "amount": 5_000,
        "idempotencyKey": "send-1",
    }
    first = await mutate(api, SEND, token, **fields)
    second = await mutate(api, SEND, token, **fields)
    assert first["errors"] == second["errors"] == []
    assert second["invoice"] == first["invoice"]
    assert await invoice_count(world) == 1


async def test_same_key_with_other_input_is_a_conflict(api: Api, world: World) -> None:
    token = await world.token(world.provider, "PROVIDER")
    base = {"clientId": client_gid(world.c1), "description": "Session", "idempotencyKey": "k"}
    assert (await mutate(api, SEND, token, amount=5_000, **base))["errors"] == []
    other = await mutate(api, SEND, token, amount=6_000, **base)
    assert other["invoice"] is None
    assert [(e["code"], e["field"]) for e in other["errors"]] == [("CONFLICT", "idempotencyKey")]
    assert await invoice_count(world) == 1


async def test_keys_belong_to_their_user(api: Api, world: World) -> None:
    """The same key from another user is another request."""
    invoice_id = await world.invoice(amount=10_000)
    target = gid("Invoice", invoice_id)
    provider = await world.token(world.provider, "PROVIDER")
    admin = await world.token(world.admin, "ADMIN")
    fields = {"invoiceId": target, "amount": 1_000, "method": "CASH", "idempotencyKey": "same"}
    assert (await mutate(api, RECORD, provider, **fields))["errors"] == []
    assert (await mutate(api, RECORD, admin, **fields))["errors"] == []
    assert (await snapshot(world, invoice_id))["payments"] == 2


async def test_record_payment_retries_apply_once(api: Api, world: World) -> None:
    invoice_id = await world.invoice(amount=10_000)
    token = await world.token(world.provider, "PROVIDER")
    fields = {
        "invoiceId": gid("Invoice", invoice_id),
        "amount": 2_500,
        "method": "CASH",
        "idempotencyKey": "pay-1",
    }
    results = [await mutate(api, RECORD, token, **fields) for _ in range(3)]
    assert all(r["errors"] == [] for r in results)
    assert {r["invoice"]["amountPaid"]["amount"] for r in results} == {2_500}
    after = await snapshot(world, invoice_id)
    assert (after["payments"], after["events"], after["alerts"], after["keys"]) == (1, 2, 2, 1)


async def test_ten_identical_concurrent_payments_apply_once(api: Api, world: World) -> None:
    invoice_id = await world.invoice(amount=10_000)
    token = await world.token(world.provider, "PROVIDER")
    fields = {
        "invoiceId": gid("Invoice", invoice_id),
        "amount": 1_000,
        "method": "CASH",
        "idempotencyKey": "burst",
    }
    results = await asyncio.gather(*(mutate(api, RECORD, token, **fields) for _ in range(10)))
    assert all(r["errors"] == [] for r in results)
    assert (await snapshot(world, invoice_id))["payments"] == 1


async def test_refund_retries_refund_once(api: Api, world: World) -> None:
    invoice_id = await world.invoice(amount=8_000, paid=8_000)
    token = await world.token(world.provider, "PROVIDER")
    fields = {
        "invoiceId": gid("Invoice", invoice_id),
        "amount": 3_000,
        "reason": "late cancel",
        "idempotencyKey": "refund-1",
    }
    first = await mutate(api, REFUND, token, **fields)
    again = await mutate(api, REFUND, token, **fields)
    assert first["errors"] == again["errors"] == []
    assert again["invoice"]["amountRefunded"] == {"amount": 3_000}
    conflict = await mutate(api, REFUND, token, **{**fields, "amount": 1_000})
    assert [e["code"] for e in conflict["errors"]] == ["CONFLICT"]
    assert (await snapshot(world, invoice_id))["refunds"] == 1


async def test_refused_request_does_not_burn_its_key(api: Api, world: World) -> None:
    """A key is remembered only with a successful change: fixing the input and retrying works."""
    invoice_id = await world.invoice(amount=1_000)
    token = await world.token(world.provider, "PROVIDER")
    target = gid("Invoice", invoice_id)
    too_much = await mutate(
        api, RECORD, token, invoiceId=target, amount=5_000, method="CASH", idempotencyKey="k2"
    )
    assert [e["code"] for e in too_much["errors"]] == ["VALIDATION"]
    ok = await mutate(
        api, RECORD, token, invoiceId=target, amount=1_000, method="CASH", idempotencyKey="k2"
    )
    assert ok["errors"] == []
    assert ok["invoice"]["status"] == "PAID"


async def test_key_length_is_validated(api: Api, world: World) -> None:
    token = await world.token(world.provider, "PROVIDER")
    payload = await mutate(
        api,
        SEND,
        token,
        clientId=client_gid(world.c1),
        description="x",
        amount=1,
        idempotencyKey="k" * 256,
    )
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [
        ("VALIDATION", "idempotencyKey")
    ]


async def test_keys_belong_to_their_practice(api: Api, world: World, other_world: World) -> None:
    """The same person sending the same key and input in a second practice sends a second
    invoice there: the first practice's invoice is neither returned nor shown."""
    # Given a provider who also provides care, under Client Billing, in another practice, to
    # the same client
    async with world.db.writer() as session, session.begin():
        p, provider, client = other_world.practice_id, world.provider.id, world.c1.id
        session.add_all(
            [
                Membership(user_id=provider, practice_id=p, role=Role.PROVIDER),
                Membership(user_id=client, practice_id=p, role=Role.CLIENT),
                ProviderClient(practice_id=p, provider_id=provider, client_id=client),
                ClientBillingProvider(practice_id=p, user_id=provider),
            ]
        )
    here = await world.token(world.provider, "PROVIDER")
    there = await other_world.token(world.provider, "PROVIDER")
    fields = {
        "clientId": client_gid(world.c1),
        "description": "Session",
        "amount": 5_000,
        "idempotencyKey": "send-everywhere",
    }
    # When they send with the same key and input in each practice
    first = await mutate(api, SEND, here, **fields)
    second = await mutate(api, SEND, there, **fields)
    # Then each practice holds its own invoice, in its own currency
    assert first["errors"] == second["errors"] == []
    assert second["invoice"]["id"] != first["invoice"]["id"]
    assert first["invoice"]["subtotal"]["currency"] == "USD"
    assert second["invoice"]["subtotal"]["currency"] == "EUR"
    assert await invoice_count(world) == 1
    assert await invoice_count(other_world) == 1
    # And a retry in either practice still returns that practice's first result
    assert await mutate(api, SEND, here, **fields) == first
    assert await mutate(api, SEND, there, **fields) == second
