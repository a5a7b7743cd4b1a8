"""Thirty slow refunds don't starve the server: while the processor holds thirty refunds' answers,
nothing of the database is held for them (no connection, no lock), so a login, another
practice's sendInvoice and a read all succeed meanwhile — no internal error, no "database is
locked", no pool timeout — and the thirty settle once the processor answers."""

from __future__ import annotations

import asyncio
from typing import Any

from schema.node import encode_id
from settings import Settings
from tests.api import Api
from tests.books import assert_books_match
from tests.factories import PASSWORD, World
from tests.lifecycle import SEND, client_gid, mutate
from tests.stripe_proxy import FaultyStripe
from tests.stripe_server import LocalStripe, enable_cards, pay_by_card
from tests.test_processor_down import app_with
from tests.test_refund_faults import refund

SLOW_REFUNDS = 30
# Longer than the proxy holds an answer: the test releases them, no call times out.
PATIENT = 120.0
# Generous: the thirty requests need only reach the processor (a busy machine may be slow).
WITHIN = 90.0

READ = "query($id: ID!) { invoice(id: $id) { status amountRefunded { amount } } }"


async def card_paid_invoices(
    api: Api, world: World, localstripe: LocalStripe, count: int
) -> list[int]:
    await enable_cards(api, world)
    invoices = []
    for _ in range(count):
        invoice_id = await world.invoice(amount=10_000)
        payload = await pay_by_card(api, world, invoice_id, localstripe.create_payment_method())
        assert payload["errors"] == [], payload
        invoices.append(invoice_id)
    return invoices


async def all_held(proxy: FaultyStripe, refunding: list[asyncio.Task[Any]]) -> None:
    """Until every refund waits at the processor; a refund that ended first says why."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN
    while proxy.holding < SLOW_REFUNDS:
        ended = [task for task in refunding if task.done()]
        if ended or loop.time() > deadline:
            told = [repr(t.exception()) if t.exception() else t.result() for t in ended[:3]]
            raise AssertionError(f"{proxy.holding} refunds at the processor; ended: {told}")
        await asyncio.sleep(0.05)


async def test_thirty_slow_refunds_leave_the_server_to_everyone_else(
    api: Api,
    world: World,
    other_world: World,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    invoices = await card_paid_invoices(api, world, localstripe, SLOW_REFUNDS)
    faulty_stripe.hold("/v1/refunds", times=SLOW_REFUNDS)
    async with app_with(
        settings, stripe_api_base=faulty_stripe.url, processor_timeout_seconds=PATIENT
    ) as served:
        refunding = [
            asyncio.create_task(refund(served, world, invoice_id, 4_000, key=f"slow-{n}"))
            for n, invoice_id in enumerate(invoices)
        ]
        try:
            await all_held(faulty_stripe, refunding)
            # Meanwhile, on the same server: a login, another practice's write, a read
            token = await served.login(other_world.admin.email, PASSWORD, "ADMIN")
            provider = await other_world.token(other_world.provider, "PROVIDER")
            sent = await mutate(
                served,
                SEND,
                provider,
                clientId=client_gid(other_world.c1),
                description="Session",
                amount=5_000,
            )
            assert sent["errors"] == [], sent
            read = await served.data(
                READ,
                {"id": encode_id("Invoice", invoices[0])},
                await world.token(world.provider, "PROVIDER"),
            )
            assert read["invoice"] == {"status": "PAID", "amountRefunded": {"amount": 0}}
            assert token
            assert faulty_stripe.holding == SLOW_REFUNDS  # all of them still at the processor
        finally:
            faulty_stripe.release()
            payloads: list[Any] = await asyncio.gather(*refunding, return_exceptions=True)
    assert [p["errors"] if isinstance(p, dict) else repr(p) for p in payloads] == [
        []
    ] * SLOW_REFUNDS
    for payload in payloads:
        assert payload["invoice"]["amountRefunded"] == {"amount": 4_000}
    for invoice_id in invoices:
        await assert_books_match(localstripe, world, invoice_id)
