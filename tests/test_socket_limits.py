"""Websockets against a live uvicorn: frames that are JSON but not messages close the socket
with 4400 and log no traceback; live alert subscriptions are capped per user across the
sockets of a process."""

from __future__ import annotations

import pytest

from models.enums import Role
from settings import Settings
from tests.factories import World
from tests.live_server import (
    LEGACY_WS,
    TRANSPORT_WS,
    GraphQLSocket,
    LiveServer,
    running_server,
    wait_for_subscribers,
)

NOT_MESSAGES = ["[]", "5", '"connection_init"', "null", "true", '{"type": 5}', "{}", '{"id": "1"}']


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_frames_that_are_not_messages_close_with_4400(
    live_server: LiveServer, world: World, protocol: str
) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    log_before = len(live_server.log())
    for frame in NOT_MESSAGES:
        socket = await GraphQLSocket.authenticated(live_server, token, protocol=protocol)
        await socket.ws.send(frame)
        closed = await socket.closed()
        assert (closed.code, closed.reason) == (4400, "WebSocket message must be a JSON object")
    # A frame before connection_init too.
    socket = await GraphQLSocket.open(live_server, protocol=protocol)
    await socket.ws.send("[]")
    assert (await socket.closed()).code == 4400
    logged = live_server.log()[log_before:]
    assert "Traceback" not in logged
    assert "TypeError" not in logged


async def test_live_subscriptions_are_capped_per_user(settings: Settings, world: World) -> None:
    with running_server(settings, env={"CAREBILL_MAX_SUBSCRIPTIONS_PER_USER": "2"}) as server:
        c1 = await world.token(world.c1, Role.CLIENT)
        sockets = []
        try:
            for n in range(2):
                socket = await GraphQLSocket.authenticated(server, c1)
                await socket.subscribe()
                sockets.append(socket)
                await wait_for_subscribers(server, at_least=n + 1)
            # A third one, on another socket of the same user, is refused.
            third = await GraphQLSocket.authenticated(server, c1)
            sockets.append(third)
            await third.subscribe()
            refused = await third.next_result()
            assert refused["data"] is None
            (error,) = refused["errors"]
            assert error["extensions"] == {"code": "TOO_MANY_SUBSCRIPTIONS"}
            assert "at most 2 alert subscriptions" in error["message"]
            # Another user is not affected.
            c2 = await world.token(world.c2, Role.CLIENT)
            other = await GraphQLSocket.authenticated(server, c2)
            sockets.append(other)
            await other.subscribe()
            await wait_for_subscribers(server, at_least=3)
            # Closing one frees its place.
            await sockets[0].close()
            await wait_for_subscribers(server, at_most=2)
            await third.subscribe(op_id="2")
            await wait_for_subscribers(server, at_least=3)
        finally:
            for socket in sockets:
                await socket.close()


async def test_query_limits_guard_subscriptions_too(live_server: LiveServer, world: World) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    fragments = ["fragment F0 on Subscription { invoiceAlerts { id } }"]
    fragments += [
        f"fragment F{n} on Subscription {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, 40)
    ]
    socket = await GraphQLSocket.authenticated(live_server, token)
    try:
        await socket.subscribe(query="subscription { ...F39 } " + " ".join(fragments))
        message = await socket.receive()
        assert message["type"] == "error", message
        (error,) = message["payload"]
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert error["extensions"]["limit"] == "fields"
    finally:
        await socket.close()
