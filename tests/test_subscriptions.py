"""invoiceAlerts over a real websocket to a real uvicorn server: one alert per change, scoped to
the subscriber's active role, replay after `after` without gap or duplicate (also when two
transactions commit out of id order), authentication, logout, clean-up, origins."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload
from websockets.exceptions import InvalidStatus

from models import Invoice, ProviderClient
from models.base import utcnow
from models.enums import PaymentMethodKind
from schema.node import decode_id
from settings import Settings
from tests.factories import PASSWORD, Person, World
from tests.lifecycle import client_gid, gid
from tests.live_server import (
    FORGIVE,
    LEGACY_WS,
    RECORD,
    REFUND,
    SEND,
    VOID,
    GraphQLSocket,
    LiveServer,
    running_server,
    subscribed,
    wait_for_subscribers,
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


async def test_each_subscriber_gets_exactly_what_its_active_role_sees(
    live_server: LiveServer, world: World, other_world: World
) -> None:
    who: dict[str, tuple[World, Person, str]] = {
        "admin": (world, world.admin, "ADMIN"),
        "admin acting as provider": (world, world.admin, "PROVIDER"),
        "provider": (world, world.provider, "PROVIDER"),
        "provider2": (world, world.provider2, "PROVIDER"),
        "c1": (world, world.c1, "CLIENT"),
        "c2": (world, world.c2, "CLIENT"),
        "c3": (world, world.c3, "CLIENT"),
        "other admin": (other_world, other_world.admin, "ADMIN"),
        "other c1": (other_world, other_world.c1, "CLIENT"),
    }
    async with contextlib.AsyncExitStack() as stack:
        sockets = {
            name: await stack.enter_async_context(
                subscribed(live_server, await w.token(person, role))
            )
            for name, (w, person, role) in who.items()
        }
        a = await send(live_server, world, world.c1)
        b = await send(live_server, world, world.c2)
        c = gid("Invoice", await world.invoice(world.c3, world.provider2))
        o = gid("Invoice", await other_world.invoice(other_world.c1, other_world.provider))
        expected = {
            "admin": [a, b, c],
            "admin acting as provider": [],  # no client is assigned to the admin
            "provider": [a, b],
            "provider2": [c],
            "c1": [a],
            "c2": [b],
            "c3": [c],
            "other admin": [o],
            "other c1": [o],
        }
        received = {}
        for name, socket in sockets.items():
            received[name] = [x["invoice"]["id"] for x in await socket.alerts(len(expected[name]))]
        for socket in sockets.values():
            await socket.silence(0.3)
    assert received == expected


async def test_reconnecting_after_an_alert_replays_exactly_what_was_missed(
    live_server: LiveServer, world: World
) -> None:
    await world.invoice(world.c1)  # before anyone subscribed: never replayed without `after`
    token = await world.token(world.c1, "CLIENT")
    provider = await world.token(world.provider, "PROVIDER")
    async with subscribed(live_server, token) as socket:
        a = await send(live_server, world, world.c1)
        first = await socket.next_alert()
    assert (first["kind"], first["invoice"]["id"]) == ("INVOICE_SENT", a)

    # Offline: two alerts of c1's invoices and one of another client's.
    b = await send(live_server, world, world.c1)
    await live_server.change(RECORD, provider, invoiceId=a, amount=10_000, method="CASH")
    await send(live_server, world, world.c2)
    await live_server.change(VOID, provider, invoiceId=b, reason="sent twice")

    async with subscribed(live_server, token, after=first["id"]) as socket:
        missed = await socket.alerts(3)
        await socket.silence(0.5)
        c = await send(live_server, world, world.c1)
        live = await socket.next_alert()
    assert [(x["kind"], x["invoice"]["id"]) for x in missed] == [
        ("INVOICE_SENT", b),
        ("INVOICE_PAID", a),
        ("INVOICE_VOIDED", b),
    ]
    assert (live["kind"], live["invoice"]["id"]) == ("INVOICE_SENT", c)

    async with subscribed(live_server, token, after=live["id"]) as socket:
        await socket.silence(0.7)


async def test_after_must_be_an_alert_of_the_subscribers_practice(
    live_server: LiveServer, world: World, other_world: World
) -> None:
    await other_world.invoice(other_world.c1, other_world.provider)
    token = await world.token(world.c1, "CLIENT")
    other_alert = await latest_alert(live_server, await other_world.token(other_world.c1, "CLIENT"))
    for after in (other_alert, gid("InvoiceAlert", 0), gid("Invoice", 1), "not-an-id"):
        socket = await GraphQLSocket.authenticated(live_server, token)
        await socket.subscribe({"after": after})
        result = await socket.next_result()
        assert result["data"] is None
        assert [e["extensions"]["code"] for e in result["errors"]] == ["NOT_FOUND"]
        assert (await socket.receive())["type"] == "complete"
        await socket.close()


async def test_after_an_alert_that_left_the_view_replays_the_rest_of_the_view(
    live_server: LiveServer, world: World
) -> None:
    # Given a provider who saw an alert of c1's invoice, between two of c2's
    provider = await world.token(world.provider, "PROVIDER")
    before = await send(live_server, world, world.c2)
    await send(live_server, world, world.c1)
    cursor = await latest_alert(live_server, provider)
    missed = await send(live_server, world, world.c2)
    # When c1 is reassigned to another provider, so that the cursor left this provider's view
    async with world.db.writer() as session, session.begin():
        await session.execute(
            update(ProviderClient)
            .where(
                ProviderClient.practice_id == world.practice_id,
                ProviderClient.client_id == world.c1.id,
            )
            .values(provider_id=world.provider2.id)
        )
    # Then resuming after it replays what came after it in the view, then follows it live
    async with subscribed(live_server, provider, after=cursor) as socket:
        replayed = await socket.next_alert()
        await world.invoice(world.c1, world.provider2)  # in provider2's view only
        live = await send(live_server, world, world.c2)
        assert (await socket.next_alert())["invoice"]["id"] == live
        await socket.silence(0.7)
    assert replayed["invoice"]["id"] == missed
    assert before != missed


async def latest_alert(server: LiveServer, token: str) -> str:
    inbox = await server.data("{ alerts(first: 1) { edges { node { id } } } }", token=token)
    alert_id: str = inbox["alerts"]["edges"][0]["node"]["id"]
    return alert_id


async def test_legacy_graphql_ws_protocol_receives_alerts(
    live_server: LiveServer, world: World
) -> None:
    token = await world.token(world.c1, "CLIENT")
    async with subscribed(live_server, token, protocol=LEGACY_WS) as socket:
        a = await send(live_server, world, world.c1)
        alert = await socket.next_alert()
    assert (alert["kind"], alert["invoice"]["id"]) == ("INVOICE_SENT", a)


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"Authorization": "Bearer not-a-token"}, {"token": "nope"}, {"Authorization": 7}],
)
async def test_a_socket_without_a_valid_token_is_closed_with_4403(
    live_server: LiveServer, payload: dict[str, Any] | None
) -> None:
    socket = await GraphQLSocket.open(live_server)
    await socket.init(payload)
    closed = await socket.closed()
    assert (closed.code, closed.reason) == (4403, "Forbidden")


async def test_a_revoked_token_is_refused(live_server: LiveServer, world: World) -> None:
    token = await login(live_server, world.c1)
    assert (await live_server.data("mutation { logout }", token=token)) == {"logout": True}
    socket = await GraphQLSocket.open(live_server)
    await socket.init({"Authorization": f"Bearer {token}"})
    assert (await socket.closed()).code == 4403


async def test_subscribing_before_connection_init_is_closed_with_4401(
    live_server: LiveServer,
) -> None:
    socket = await GraphQLSocket.open(live_server)
    await socket.subscribe()
    closed = await socket.closed()
    assert (closed.code, closed.reason) == (4401, "Unauthorized")


async def test_legacy_protocol_without_a_valid_token_gets_an_error_and_4403(
    live_server: LiveServer,
) -> None:
    socket = await GraphQLSocket.open(live_server, protocol=LEGACY_WS)
    await socket.init({"Authorization": "Bearer not-a-token"})
    assert (await socket.receive())["type"] == "connection_error"
    assert (await socket.closed()).code == 4403


@pytest.mark.parametrize(
    "shape",
    [
        {"Authorization": "Bearer {token}"},
        {"authorization": "Bearer {token}"},
        {"AUTHORIZATION": "bearer {token}"},
        {"token": "{token}"},
        {"Token": "Bearer {token}"},
    ],
)
async def test_connection_init_token_shapes(
    live_server: LiveServer, world: World, shape: dict[str, str]
) -> None:
    token = await world.token(world.c1, "CLIENT")
    socket = await GraphQLSocket.open(live_server)
    await socket.init({k: v.format(token=token) for k, v in shape.items()})
    assert (await socket.receive())["type"] == "connection_ack"
    await socket.close()


async def login(server: LiveServer, person: Person) -> str:
    data = await server.data(
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        {"e": person.email, "p": PASSWORD},
    )
    token: str = data["login"]["token"]
    return token


async def test_logout_ends_that_tokens_subscriptions_only(
    live_server: LiveServer, world: World
) -> None:
    leaving, staying = await login(live_server, world.c1), await login(live_server, world.c1)
    async with (
        subscribed(live_server, leaving) as ended,
        subscribed(live_server, staying) as alive,
    ):
        assert (await live_server.data("mutation { logout }", token=leaving)) == {"logout": True}
        result = await ended.next_result(within=5)
        assert [e["extensions"]["code"] for e in result["errors"]] == ["UNAUTHENTICATED"]
        assert (await ended.receive())["type"] == "complete"
        a = await send(live_server, world, world.c1)
        assert (await alive.next_alert())["invoice"]["id"] == a
        await ended.silence(0.5)


async def test_dropped_connections_are_cleaned_up(live_server: LiveServer, world: World) -> None:
    token = await world.token(world.c1, "CLIENT")
    # The server is shared with earlier tests: a socket one of them left behind may only be
    # noticed at the next keep-alive ping (15 s), so the precondition gets a longer wait.
    await wait_for_subscribers(live_server, at_most=0, within=60)
    sockets = []
    for _ in range(3):
        socket = await GraphQLSocket.authenticated(live_server, token)
        await socket.subscribe()
        sockets.append(socket)
    await wait_for_subscribers(live_server, at_least=3)
    sockets[0].ws.transport.abort()  # the network drops it: no closing handshake
    await sockets[1].close()
    await sockets[2].send({"id": "1", "type": "complete"})  # the client stops the operation
    assert await wait_for_subscribers(live_server, at_most=0) == 0
    await sockets[2].close()


async def test_browser_origins_are_checked(live_server: LiveServer, settings: Settings) -> None:
    async def opens(server: LiveServer, origin: str) -> bool | int:
        """True when the handshake succeeds, else the HTTP status it was refused with."""
        try:
            socket = await GraphQLSocket.open(server, origin=origin)
        except InvalidStatus as refused:
            return refused.response.status_code
        await socket.close()
        return True

    # Development without CAREBILL_ALLOWED_ORIGINS: same origin and this machine's pages.
    assert True is await opens(live_server, f"http://127.0.0.1:{live_server.port}")
    assert True is await opens(live_server, "http://localhost:5173")
    assert await opens(live_server, "https://evil.example") == 403
    production = {
        "CAREBILL_ENV": "production",
        "CAREBILL_ALLOWED_ORIGINS": "https://app.carebill.example, https://admin.carebill.example",
    }
    with running_server(settings, env=production) as server:
        assert True is await opens(server, "https://app.carebill.example")
        assert True is await opens(server, "https://admin.carebill.example")
        assert True is await opens(server, f"http://127.0.0.1:{server.port}")
        assert await opens(server, "http://localhost:5173") == 403
        assert await opens(server, "https://evil.example") == 403


async def test_a_slow_subscriber_does_not_hold_up_the_others(
    live_server: LiveServer, world: World
) -> None:
    token = await world.token(world.admin, "ADMIN")
    async with subscribed(live_server, token) as slow, subscribed(live_server, token) as fast:
        # `slow` reads nothing while 20 invoices go out.
        sent = await asyncio.gather(*(send(live_server, world, world.c1) for _ in range(20)))
        quick = await fast.alerts(20)
        late = await slow.alerts(20)
    assert sorted(x["invoice"]["id"] for x in quick) == sorted(sent)
    assert [x["id"] for x in late] == [x["id"] for x in quick]


async def test_concurrent_changes_arrive_once_each_in_commit_order(
    live_server: LiveServer, world: World
) -> None:
    invoices = [gid("Invoice", await world.invoice(c)) for c in (world.c1, world.c2) * 6]
    admin = await world.token(world.admin, "ADMIN")
    provider = await world.token(world.provider, "PROVIDER")
    async with subscribed(live_server, admin, after=await latest_alert(live_server, admin)) as s:
        await asyncio.gather(
            *(
                live_server.change(RECORD, provider, invoiceId=i, amount=10_000, method="CASH")
                for i in invoices
            )
        )
        received = await s.alerts(len(invoices))
        await s.silence(0.7)
    assert sorted(x["invoice"]["id"] for x in received) == sorted(invoices)
    assert {x["kind"] for x in received} == {"INVOICE_PAID"}
    inbox = await live_server.data(
        "query($n: Int) { alerts(first: $n) { edges { node { id } } } }",
        {"n": len(invoices)},
        token=admin,
    )
    newest_first = [e["node"]["id"] for e in inbox["alerts"]["edges"]]
    assert [x["id"] for x in received] == newest_first[::-1]
