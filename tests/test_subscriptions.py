"""invoiceAlerts over a real websocket to a real uvicorn server: one alert per change, scoped to
the subscriber's active role, replay after `after` without gap or duplicate (also when two
transactions commit out of id order), authentication, logout, clean-up, origins."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from models import Invoice
from models.base import utcnow
from models.enums import PaymentMethodKind
from schema.node import decode_id
from tests.factories import Person, World
from tests.lifecycle import client_gid, gid
from tests.live_server import (
    FORGIVE,
    RECORD,
    REFUND,
    SEND,
    VOID,
    LiveServer,
    subscribed,
)


def pk(alert: dict[str, Any]) -> int:
    found = decode_id(alert["id"], "InvoiceAlert")
    assert found is not None
    return found


def seen(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(a["kind"], a["invoice"]["number"], a["invoice"]["status"]) for a in alerts]


async def send(server: LiveServer, world: World, client: Person, amount: int = 10_000) -> str:
    """sendInvoice by the world's Client Billing provider; the invoice's global id."""
    token = await world.token(world.provider, "PROVIDER")
    invoice = await server.change(
        SEND, token, clientId=client_gid(client), description="Session", amount=amount
    )
    invoice_id: str = invoice["id"]
    return invoice_id


async def fail_payment(world: World, invoice_id: int) -> None:
    """A declined card, as the payment flow records it: history and an alert, no change."""
    async with world.db.writer() as session, session.begin():
        invoice = await session.get_one(Invoice, invoice_id, with_for_update=True)
        invoice.record_payment_failure(actor_id=None, reason="card declined", now=utcnow())


async def test_an_alert_for_each_kind_of_change(live_server: LiveServer, world: World) -> None:
    provider = await world.token(world.provider, "PROVIDER")
    admin = await world.token(world.admin, "ADMIN")
    async with subscribed(live_server, admin) as socket:
        # Each alert shows its invoice as it is when delivered: take it before the next change.
        a = await send(live_server, world, world.c1)
        received = [await socket.next_alert()]
        steps: list[tuple[str, dict[str, Any]]] = [
            (RECORD, {"invoiceId": a, "amount": 4_000, "method": "CASH"}),
            (RECORD, {"invoiceId": a, "amount": 6_000, "method": "CHECK"}),
            (REFUND, {"invoiceId": a, "amount": 1_000, "reason": "goodwill"}),
        ]
        for operation, fields in steps:
            await live_server.change(operation, provider, **fields)
            received.append(await socket.next_alert())
        b = await send(live_server, world, world.c2)
        received.append(await socket.next_alert())
        await live_server.change(FORGIVE, provider, invoiceId=b, reason="hardship")
        received.append(await socket.next_alert())
        c = await send(live_server, world, world.c1)
        received.append(await socket.next_alert())
        await live_server.change(VOID, provider, invoiceId=c, reason="duplicate")
        received.append(await socket.next_alert())
        pk_c = decode_id(c, "Invoice")
        assert pk_c is not None
        await fail_payment(world, pk_c)  # written by this process: the relay's poll finds it
        received.append(await socket.next_alert())
        await socket.silence(0.5)

    n = {x["invoice"]["id"]: x["invoice"]["number"] for x in received}
    assert seen(received) == [
        ("INVOICE_SENT", n[a], "UNPAID"),
        ("PAYMENT_RECORDED", n[a], "UNPAID"),
        ("INVOICE_PAID", n[a], "PAID"),
        ("INVOICE_REFUNDED", n[a], "PAID"),
        ("INVOICE_SENT", n[b], "UNPAID"),
        ("INVOICE_FORGIVEN", n[b], "FORGIVEN"),
        ("INVOICE_SENT", n[c], "UNPAID"),
        ("INVOICE_VOIDED", n[c], "VOID"),
        ("PAYMENT_FAILED", n[c], "VOID"),
    ]
    assert all(x["readAt"] is None for x in received)
    assert len({x["id"] for x in received}) == len(received)


async def _hold_payment_open(
    world: World, invoice_id: int, flushed: asyncio.Event, release: asyncio.Event
) -> None:
    async with world.db.writer() as session, session.begin():
        invoice = (
            await session.execute(
                select(Invoice)
                .where(Invoice.id == invoice_id)
                .options(selectinload(Invoice.payments), selectinload(Invoice.refunds))
                .with_for_update(of=Invoice)
            )
        ).scalar_one()
        invoice.record_payment(
            amount=invoice.total_amount, method=PaymentMethodKind.CASH, actor_id=world.provider.id
        )
        await session.flush()  # the alert row exists now, with its id, uncommitted
        flushed.set()
        await release.wait()


async def test_out_of_order_commits_are_neither_skipped_nor_doubled(
    live_server: LiveServer, world: World
) -> None:
    """T1 inserts its alert first (smaller id) but commits after T2. A subscriber that has
    seen T2's alert, and one resuming after it, must both still get T1's, exactly once."""
    x = await world.invoice(world.c1)
    y = await world.invoice(world.c1)
    token = await world.token(world.c1, "CLIENT")
    provider = await world.token(world.provider, "PROVIDER")
    inbox = await live_server.data("{ alerts(first: 1) { edges { node { id } } } }", token=token)
    anchor = inbox["alerts"]["edges"][0]["node"]["id"]

    async with subscribed(live_server, token, after=anchor) as live:
        flushed, release = asyncio.Event(), asyncio.Event()
        t1 = asyncio.create_task(_hold_payment_open(world, x, flushed, release))
        await flushed.wait()
        t2 = asyncio.create_task(
            live_server.change(VOID, provider, invoiceId=gid("Invoice", y), reason="duplicate")
        )
        if world.db.is_sqlite:
            # SQLite: T1 holds the write lock, so T2 cannot even start before T1 commits:
            # ids are drawn in commit order.
            done, _ = await asyncio.wait({t2}, timeout=0.5)
            assert not done
            release.set()
            await t1
            await t2
            first, second = await live.alerts(2)
            assert (first["kind"], second["kind"]) == ("INVOICE_PAID", "INVOICE_VOIDED")
            assert pk(first) < pk(second)
            return
        # PostgreSQL: T2 commits while T1 is still open.
        await t2
        voided = await live.next_alert()
        assert voided["kind"] == "INVOICE_VOIDED"
        async with subscribed(live_server, token, after=voided["id"]) as resumed:
            await resumed.silence(0.3)
            release.set()
            await t1
            paid = await live.next_alert()
            assert paid["kind"] == "INVOICE_PAID"
            assert pk(paid) < pk(voided), "T1's alert has the smaller id yet committed last"
            assert await resumed.next_alert() == paid
            await resumed.silence(0.5)
        await live.silence(0.5)

    inbox = await live_server.data(
        "{ alerts(first: 3) { edges { node { id kind } } } }", token=token
    )
    assert [e["node"] for e in inbox["alerts"]["edges"]][:2] == [
        {"id": paid["id"], "kind": "INVOICE_PAID"},
        {"id": voided["id"], "kind": "INVOICE_VOIDED"},
    ]
