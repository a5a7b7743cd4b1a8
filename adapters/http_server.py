"""The HTTP protocol `carebill serve` (and the tests' live servers) run in uvicorn: httptools',
with a deadline on each request's headers. uvicorn bounds the idle time between requests
(keep-alive) but not a client sending its headers a byte at a time; the application never sees
such a request, so the deadline (`CAREBILL_BODY_TIMEOUT_MS`, as for bodies: see
adapters/http_limits.py) lives here: the connection is closed when it passes."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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
