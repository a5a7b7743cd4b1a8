"""The protocols `carebill serve` (and the tests' live servers) run in uvicorn: httptools' HTTP,
with a deadline on each request's headers; websockets' sans-I/O websocket protocol, which can
also send a message at once; and the websocket settings they run with.

uvicorn bounds the idle time between requests (keep-alive) but not a client sending its headers
a byte at a time; the application never sees such a request, so the deadline
(`CAREBILL_BODY_TIMEOUT_MS`, as for bodies: see adapters/http_limits.py) lives here: the
connection is closed when it passes.

A websocket offers the application, in its scope's extensions (`PUSH`), a function that writes
a text message to the socket there and then, without a task or an await, and says whether it
could (the socket open and its write buffer below the high-water mark): the alert feeds send a
result shared by a thousand subscribers that way (web/sockets.py). Anything it cannot send goes
by ASGI's `send`, which waits for the buffer to drain."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from settings import Settings


class HeaderDeadlineProtocol(HttpToolsProtocol):
    deadline_seconds: float | None = None  # read from the environment on first use

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    @classmethod
    def _deadline(cls) -> float:
        if cls.deadline_seconds is None:
            cls.deadline_seconds = Settings.from_env().body_timeout_seconds
        return cls.deadline_seconds

    def _start_header_timer(self) -> None:
        self._stop_header_timer()
        self._header_timer = self.loop.call_later(self._deadline(), self._headers_too_slow)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        # The socket is the websocket protocol's now. This one and its parser refer to each
        # other: without this, each upgraded connection's HTTP state would wait for the cycle
        # collector (whose thresholds a server raises, see app.py). As uvicorn's connection_lost.
        self.parser = None  # type: ignore[assignment]


T = TypeVar("T")


class Inbox(Generic[T]):
    """What uvicorn's websocket protocol needs of its receive queue (`put_nowait`, `get`,
    `empty`), without asyncio.Queue's four deques and event: ≈ 3 KiB less per socket."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[None]] = []

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        self._wake_next()

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> T:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled() and self._items:
                    self._wake_next()  # woken, then cancelled: the item is another's
                raise
            finally:
                self._waiters.remove(waiter)
        return self._items.pop(0)

    def _wake_next(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                return


# The scope extension of a websocket served by `PushingWebSocketProtocol`: a `Push`.
PUSH = "carebill.websocket.push"
Push = Callable[[bytes], bool]


class PushingWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, with `push` offered to the application, a lighter
    receive queue, and without the handshake's request and response once the socket is open."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if not self.close_sent:  # a handshake uvicorn refused has no application
            extensions: Any = self.scope["extensions"]
            extensions[PUSH] = self.push

    def push(self, text: bytes) -> bool:
        """Sends one text message (UTF-8) now; False, sending nothing, when the socket is not
        open or its write buffer is above the high-water mark (ASGI's `send` would wait)."""
        if (
            self.close_sent
            or self.disconnected
            or not self.handshake_complete
            or self.initial_response is not None
            or not self.writable.is_set()
        ):
            return False
        conn = self.conn
        if conn.state is not State.OPEN:  # the client's close frame came first
            return False
        if conn.extensions or conn.expect_continuation_frame:  # never negotiated here
            conn.send_text(text)
            self.transport.write(b"".join(conn.data_to_send()))
            return True
        # A server's frame: FIN + text, unmasked, the length in 7, 16 or 64 bits (RFC 6455
        # 5.2), as websockets' Frame.serialize writes it, without a Frame per message.
        size = len(text)
        if size < 126:
            head = bytes((0x81, size))
        elif size < 65536:
            head = b"\x81\x7e" + size.to_bytes(2, "big")
        else:
            head = b"\x81\x7f" + size.to_bytes(8, "big")
        self.transport.write(head + text)
        return True

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # Needed no more: the handshake's request and response (≈ 3 KiB of headers). The
            # request's headers are emptied too: websockets' parser keeps the request itself.
            self.request.headers.clear()
            del self.request
            del self.response

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # The scope may outlive the socket (a task still ending): no reference back to it.
        scope: Any = getattr(self, "scope", None)  # None before a handshake
        if scope is not None:
            scope["extensions"].pop(PUSH, None)


# uvicorn's websocket settings: the protocol above (websockets' sans-I/O one), without
# permessage-deflate: it keeps a compressor and a decompressor per socket (part of what every
# idle subscriber holds) and compresses each alert once per subscriber, for frames of a few
# hundred bytes.
WEBSOCKET_OPTIONS: dict[str, Any] = {
    "ws": f"{__name__}:PushingWebSocketProtocol",
    "ws_per_message_deflate": False,
}


def websocket_options() -> dict[str, Any]:
    """uvicorn's websocket settings, as keyword arguments of `uvicorn.run` (`carebill serve`)."""
    return dict(WEBSOCKET_OPTIONS)


def websocket_flags() -> list[str]:
    """The same settings as uvicorn's command-line flags (the tests' live servers)."""
    return [f"--{name.replace('_', '-')}={value}" for name, value in WEBSOCKET_OPTIONS.items()]
