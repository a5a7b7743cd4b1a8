"""Limits on HTTP requests, before any of them reaches the application (ASGI middleware):

- a body is read whole, up to a limit that depends on the path, before the app sees it: a
  declared `Content-Length` over the limit is answered 413 without reading a byte, and a
  streamed body is answered 413 as soon as it grows past the limit;
- a body must arrive within a deadline (408 otherwise), so a client trickling a byte at a
  time cannot hold a worker's request slot for long;
- at most so many requests are in flight in one process (503 with Retry-After beyond), health
  checks excepted.

Websockets pass through untouched (their messages are bounded by the server's own limit)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

# The ASGI interface, spelled out: the adapters know no web framework.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class HttpLimits:
    body_limit_for: Callable[[str], int]  # path → the most bytes its body may hold
    body_timeout_seconds: float
    max_in_flight: int
    exempt_paths: frozenset[str] = frozenset({"/healthz", "/readyz"})


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


async def _answer(
    send: Send, status: int, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    # The body may not have been read: the server closes the connection after this answer.
    raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class RequestLimits:
    def __init__(self, app: ASGIApp, limits: HttpLimits) -> None:
        self.app = app
        self.limits = limits
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.limits.exempt_paths:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limits.max_in_flight:
            await _answer(send, 503, "the server is busy; try again shortly", {"retry-after": "1"})
            return
        self.in_flight += 1
        try:
            await self._limited(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.body_limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _answer(send, 400, "Content-Length must be a number of bytes")
                return
            if int(declared) > limit:
                await _answer(send, 413, f"the request body may hold at most {limit} bytes")
                return
        try:
            async with asyncio.timeout(self.limits.body_timeout_seconds):
                body = await _read_body(receive, limit)
        except _TooLarge:
            await _answer(send, 413, f"the request body may hold at most {limit} bytes")
            return
        except TimeoutError:
            seconds = self.limits.body_timeout_seconds
            await _answer(send, 408, f"the request body did not arrive within {seconds:g} s")
            return
        except _Disconnected:
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
