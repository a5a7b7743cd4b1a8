"""The HTTP protocol `carebill serve` (and the tests' live servers) run in uvicorn: httptools',
with a deadline on each request's headers; and the websocket settings they run with. uvicorn
bounds the idle time between requests (keep-alive) but not a client sending its headers a byte
at a time; the application never sees such a request, so the deadline
(`CAREBILL_BODY_TIMEOUT_MS`, as for bodies: see adapters/http_limits.py) lives here: the
connection is closed when it passes."""

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


# uvicorn's websocket settings. permessage-deflate is off: it keeps a compressor and a
# decompressor per socket (part of what every idle subscriber holds) and compresses each alert
# once per subscriber, for frames of a few hundred bytes.
WEBSOCKET_OPTIONS: dict[str, Any] = {"ws": "websockets-sansio", "ws_per_message_deflate": False}


def websocket_options() -> dict[str, Any]:
    """uvicorn's websocket settings, as keyword arguments of `uvicorn.run` (`carebill serve`)."""
    return dict(WEBSOCKET_OPTIONS)


def websocket_flags() -> list[str]:
    """The same settings as uvicorn's command-line flags (the tests' live servers)."""
    return [f"--{name.replace('_', '-')}={value}" for name, value in WEBSOCKET_OPTIONS.items()]
