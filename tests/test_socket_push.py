"""The server's websockets can send a message at once (adapters/http_server.py): the alert
feeds write a result shared by many subscribers through `push`, without a task or an await per
socket. A pushed message is the same frame as one sent through ASGI; `push` refuses (False,
nothing sent) once the socket's write buffer is full or the socket is closed, and what is then
sent through ASGI waits for the buffer to drain and arrives after what was pushed.

A real uvicorn server runs in the test's process with the protocols `carebill serve` runs, a
small ASGI application in front; the client is `websockets`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect

from adapters.http_server import PUSH, Inbox, websocket_options
from tests.live_server import free_port

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

# One of each length encoding (7, 16 and 64 bits), and text that is not ASCII.
TEXTS = ["", "a", "x" * 125, "x" * 126, "x" * 65535, "x" * 65536, "é" * 40_000, '{"id":"1"}']


@contextlib.asynccontextmanager
async def serving(app: App) -> AsyncIterator[str]:
    """`app` behind uvicorn, as `carebill serve` runs it; the websocket URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        http="adapters.http_server:HeaderDeadlineProtocol",
        **websocket_options(),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "uvicorn stopped"
            await asyncio.sleep(0.01)
        yield f"ws://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        await task


async def test_a_pushed_message_is_received_as_sent() -> None:
    pushed: list[bool] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        push = scope["extensions"][PUSH]
        pushed.extend(push(text.encode()) for text in TEXTS)
        await send({"type": "websocket.send", "text": "by ASGI"})
        await receive()  # the client's close

    async with serving(app) as url, connect(url, compression=None, max_size=None) as ws:
        received = [await ws.recv() for _ in range(len(TEXTS) + 1)]

    assert pushed == [True] * len(TEXTS)
    assert received == [*TEXTS, "by ASGI"]


async def test_a_full_buffer_refuses_pushes_and_asgi_sends_after_it_drains() -> None:
    chunk = "y" * 65536
    refused = asyncio.Event()
    outcome: dict[str, int] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        push = scope["extensions"][PUSH]
        count = 0
        # The client reads nothing yet: the kernel's buffers fill, then uvicorn's.
        while count < 10_000 and push(f"{count:08d}{chunk}".encode()):
            count += 1
        outcome["pushed"] = count
        refused.set()
        await send({"type": "websocket.send", "text": "last"})  # waits for the drain
        outcome["sent"] = 1
        await receive()

    async with (
        serving(app) as url,
        connect(url, compression=None, max_size=None, max_queue=1) as ws,
    ):
        await refused.wait()
        assert 0 < outcome["pushed"] < 10_000
        assert "sent" not in outcome  # still waiting for the client to read
        received = [await ws.recv() for _ in range(outcome["pushed"] + 1)]

    assert [int(message[:8]) for message in received[:-1]] == list(range(outcome["pushed"]))
    assert received[-1] == "last"
    assert outcome["sent"] == 1


async def test_a_closed_socket_refuses_pushes() -> None:
    after_close: list[bool] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        assert message["type"] == "websocket.disconnect"
        after_close.append(scope["extensions"].get(PUSH, lambda _text: False)(b"too late"))

    async with serving(app) as url:
        async with connect(url, compression=None) as ws:
            await ws.close()
        while not after_close:  # noqa: ASYNC110 - the application's answer to the close
            await asyncio.sleep(0.01)

    assert after_close == [False]


async def test_the_receive_queue_hands_out_items_in_order() -> None:
    inbox: Inbox[int] = Inbox()
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert not inbox.empty()
    assert [await inbox.get(), await inbox.get()] == [1, 2]
    assert inbox.empty()

    waiting = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)  # it waits
    inbox.put_nowait(3)
    assert await waiting == 3


async def test_an_item_woken_for_a_cancelled_receiver_goes_to_the_next() -> None:
    inbox: Inbox[str] = Inbox()
    first = asyncio.create_task(inbox.get())
    second = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)  # both wait
    inbox.put_nowait("item")  # wakes the first…
    first.cancel()  # …which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, 5) == "item"
    assert inbox.empty()
