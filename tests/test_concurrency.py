"""Requests racing on one invoice, run concurrently against a live uvicorn server: one wins,
the others are refused (INVALID_STATE, VALIDATION or CONFLICT), never both applied."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.factories import World
from tests.lifecycle import INVOICE, RECORD, REFUND, SEND, VOID, client_gid, gid, snapshot
from tests.live_server import LiveServer

REFUSALS = {"INVALID_STATE", "VALIDATION", "CONFLICT"}


async def race(
    server: LiveServer, *requests: tuple[str, str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Send all requests at once; the payload of each."""

    async def one(operation: str, token: str, fields: dict[str, Any]) -> dict[str, Any]:
        data = await server.data(operation, {"input": fields}, token=token)
        payload: dict[str, Any] = next(iter(data.values()))
        return payload

    return list(await asyncio.gather(*(one(*r) for r in requests)))


def outcome(payloads: list[dict[str, Any]]) -> tuple[int, set[str]]:
    """(number of successes, codes of the refusals)."""
    wins = sum(1 for p in payloads if not p["errors"])
    codes = {e["code"] for p in payloads for e in p["errors"]}
    return wins, codes


async def test_void_against_record_payment(live_server: LiveServer, world: World) -> None:
    for _ in range(5):
        invoice_id = await world.invoice(amount=5_000)
        target = gid("Invoice", invoice_id)
        admin = await world.token(world.admin, "ADMIN")
        provider = await world.token(world.provider, "PROVIDER")
        payloads = await race(
            live_server,
            (VOID, admin, {"invoiceId": target}),
            (RECORD, provider, {"invoiceId": target, "amount": 1_000, "method": "CASH"}),
        )
        wins, codes = outcome(payloads)
        assert wins == 1
        assert codes <= REFUSALS
        state = await snapshot(world, invoice_id)
        # either voided with no payment, or unpaid with one payment — never both
        assert (state["status"], state["payments"]) in {("VOID", 0), ("UNPAID", 1)}
        assert state["events"] == 2


async def test_two_payments_exceeding_the_total(live_server: LiveServer, world: World) -> None:
    invoice_id = await world.invoice(amount=10_000)
    target = gid("Invoice", invoice_id)
    admin = await world.token(world.admin, "ADMIN")
    provider = await world.token(world.provider, "PROVIDER")
    payloads = await race(
        live_server,
        (RECORD, admin, {"invoiceId": target, "amount": 7_000, "method": "CASH"}),
        (RECORD, provider, {"invoiceId": target, "amount": 6_000, "method": "CHECK"}),
    )
    wins, codes = outcome(payloads)
    assert wins == 1
    assert codes <= REFUSALS
    assert (await snapshot(world, invoice_id))["payments"] == 1


async def test_two_refunds_exceeding_what_was_paid(live_server: LiveServer, world: World) -> None:
    invoice_id = await world.invoice(amount=10_000, paid=10_000)
    target = gid("Invoice", invoice_id)
    admin = await world.token(world.admin, "ADMIN")
    provider = await world.token(world.provider, "PROVIDER")
    payloads = await race(
        live_server,
        (REFUND, admin, {"invoiceId": target, "amount": 6_000, "reason": "a"}),
        (REFUND, provider, {"invoiceId": target, "amount": 6_000, "reason": "b"}),
    )
    wins, codes = outcome(payloads)
    assert wins == 1
    assert codes <= REFUSALS
    data = await live_server.data(INVOICE, {"id": target}, token=admin)
    assert data["invoice"]["amountRefunded"] == {"amount": 6_000}
    assert data["invoice"]["status"] == "PAID"


async def test_ten_identical_full_payments_at_once(live_server: LiveServer, world: World) -> None:
    """Without an idempotency key each is a new request: only one fits in what is due."""
    invoice_id = await world.invoice(amount=4_000)
    target = gid("Invoice", invoice_id)
    provider = await world.token(world.provider, "PROVIDER")
    fields = {"invoiceId": target, "amount": 4_000, "method": "CASH"}
    payloads = await race(live_server, *[(RECORD, provider, fields)] * 10)
    wins, codes = outcome(payloads)
    assert wins == 1
    assert codes <= REFUSALS
    state = await snapshot(world, invoice_id)
    assert (state["status"], state["payments"], state["events"]) == ("PAID", 1, 2)


async def test_ten_identical_keyed_payments_at_once(live_server: LiveServer, world: World) -> None:
    invoice_id = await world.invoice(amount=4_000)
    target = gid("Invoice", invoice_id)
    provider = await world.token(world.provider, "PROVIDER")
    fields = {"invoiceId": target, "amount": 1_000, "method": "CASH", "idempotencyKey": "same"}
    payloads = await race(live_server, *[(RECORD, provider, fields)] * 10)
    assert all(p["errors"] == [] for p in payloads)
    assert {p["invoice"]["amountPaid"]["amount"] for p in payloads} == {1_000}
    assert (await snapshot(world, invoice_id))["payments"] == 1


async def test_concurrent_sends_number_gap_free(live_server: LiveServer, world: World) -> None:
    provider = await world.token(world.provider, "PROVIDER")
    requests = [
        (SEND, provider, {"clientId": client_gid(world.c1), "description": f"#{i}", "amount": 100})
        for i in range(10)
    ]
    payloads = await race(live_server, *requests)
    assert all(p["errors"] == [] for p in payloads)
    numbers = sorted(p["invoice"]["number"] for p in payloads)
    assert numbers == [f"INV-{n:06d}" for n in range(1, 11)]
