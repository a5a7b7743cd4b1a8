"""Every operation over both websocket protocols: queries, mutations and subscriptions over
`graphql-transport-ws` and the legacy `graphql-ws` (which Python's `gql` negotiates by
default), with the errors a client can act on; the Node `graphql-ws` client is exercised by
the client examples (tests/test_client_examples.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from tests.factories import World
from tests.lifecycle import client_gid
from tests.live_server import (
    LEGACY_WS,
    SEND,
    SUBSCRIPTION,
    TRANSPORT_WS,
    GraphQLSocket,
    LiveServer,
    wait_for_subscribers,
)

PROTOCOLS = [LEGACY_WS, TRANSPORT_WS]


def transport(server: LiveServer, token: str, protocol: str) -> WebsocketsTransport:
    return WebsocketsTransport(
        url=server.ws_url,
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[protocol],
        connect_args={"proxy": None},
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_queries_mutations_and_subscriptions_over_each_protocol(
    live_server: LiveServer, world: World, protocol: str
) -> None:
    log_before = len(live_server.log())
    token = await world.token(world.provider, "PROVIDER")
    socket = transport(live_server, token, protocol)
    async with Client(transport=socket) as session:
        assert socket.subprotocol == protocol
        assert await session.execute(gql("{ viewer { role } }")) == {"viewer": {"role": "PROVIDER"}}

        before = int((await live_server.health())["alertSubscribers"])
        alerts = session.subscribe(gql(SUBSCRIPTION))
        first_alert = asyncio.ensure_future(anext(alerts))
        await wait_for_subscribers(live_server, at_least=before + 1, within=30)

        send = gql(SEND)
        send.variable_values = {
            "input": {
                "clientId": client_gid(world.c1),
                "description": "Video consultation",
                "amount": 12_000,
            }
        }
        sent: dict[str, Any] = await session.execute(send)
        invoice = sent["sendInvoice"]["invoice"]
        assert sent["sendInvoice"]["errors"] == []
        alert = await asyncio.wait_for(first_alert, 30)
        assert alert["invoiceAlerts"]["kind"] == "INVOICE_SENT"
        assert alert["invoiceAlerts"]["invoice"]["id"] == invoice["id"]
        await alerts.aclose()
    assert "Traceback" not in live_server.log()[log_before:]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_errors_over_each_protocol_carry_codes(
    live_server: LiveServer, world: World, protocol: str
) -> None:
    token = await world.token(world.c1, "CLIENT")
    async with Client(transport=transport(live_server, token, protocol)) as session:
        with pytest.raises(TransportQueryError) as refused:
            await session.execute(
                gql('{ billingReport(from: "2025-01-01", to: "2025-01-31") { invoicedCount } }')
            )
        assert refused.value.errors is not None
        assert [e["extensions"]["code"] for e in refused.value.errors] == ["FORBIDDEN"]

        with pytest.raises(TransportQueryError) as invalid:
            await session.execute(gql("{ viewer { nothing } }"))
        assert "GRAPHQL_VALIDATION_FAILED" in str(invalid.value)

        # The socket is still usable after both.
        assert await session.execute(gql("{ viewer { role } }")) == {"viewer": {"role": "CLIENT"}}


@pytest.mark.parametrize(
    "document",
    [
        "{ viewer { nothing } }",
        "fragment F on Viewer { role }",
        "query A { viewer { role } } query B { viewer { roles } }",
    ],
    ids=["invalid", "no-operation", "which-operation"],
)
async def test_a_document_refused_over_legacy_graphql_ws_gets_an_error_with_a_code(
    live_server: LiveServer, world: World, document: str
) -> None:
    token = await world.token(world.c1, "CLIENT")
    socket = await GraphQLSocket.authenticated(live_server, token, protocol=LEGACY_WS)
    try:
        await socket.send({"id": "1", "type": "start", "payload": {"query": document}})
        message = await socket.receive()
        assert message["type"] == "error", message
        assert message["id"] == "1"
        assert message["payload"]["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
        await socket.subscribe(query="{ viewer { role } }", op_id="2")
        assert await socket.next_result() == {"data": {"viewer": {"role": "CLIENT"}}}
        assert (await socket.receive())["type"] == "complete"
    finally:
        await socket.close()
