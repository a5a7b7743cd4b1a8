"""Request limits before parsing: bodies over the limit answered 413 (declared or streamed),
slow bodies 408, and a cap on the requests in flight (503) — the last two against a live
uvicorn, spoken to with raw sockets."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from settings import Settings
from tests.api import Api
from tests.live_server import LiveServer, running_server

MIB = 1024 * 1024
DEADLINE_SECONDS = 30  # generous: the machine is busy


def padded_query(size: int) -> bytes:
    """A valid GraphQL request of about `size` bytes (the padding is a comment)."""
    prefix = b'{"query": "{ __typename } #'
    suffix = b'"}'
    return prefix + b"x" * max(0, size - len(prefix) - len(suffix)) + suffix


async def test_a_body_over_the_limit_is_refused_before_parsing(api: Api) -> None:
    response = await api.http.post(
        "/graphql", content=padded_query(2 * MIB), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {"error": f"the request body may hold at most {MIB} bytes"}

    async def streamed() -> AsyncIterator[bytes]:
        # No Content-Length: the body is counted as it arrives.
        body = padded_query(2 * MIB)
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = await api.http.post(
        "/graphql", content=streamed(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    fits = await api.http.post(
        "/graphql", content=padded_query(MIB), headers={"content-type": "application/json"}
    )
    assert fits.json() == {"data": {"__typename": "Query"}}


async def test_webhooks_take_what_a_processor_sends_and_no_more(api: Api) -> None:
    response = await api.http.post("/webhooks/stripe/1", content=b"{" + b" " * (600 * 1024) + b"}")
    assert response.status_code == 413
    assert response.json() == {"error": f"the request body may hold at most {512 * 1024} bytes"}


async def test_the_body_limits_are_configurable(client_of: Any) -> None:
    http = await client_of(max_body_bytes=300)
    headers = {"content-type": "application/json"}
    assert (
        await http.post("/graphql", content=padded_query(301), headers=headers)
    ).status_code == 413
    ok = await http.post("/graphql", content=padded_query(300), headers=headers)
    assert ok.json() == {"data": {"__typename": "Query"}}
    settings = Settings.from_env(
        {
            "CAREBILL_MAX_BODY_BYTES": "2048",
            "CAREBILL_MAX_WEBHOOK_BODY_BYTES": "1024",
            "CAREBILL_BODY_TIMEOUT_MS": "2500",
            "CAREBILL_MAX_CONCURRENT_REQUESTS": "7",
        }
    )
    assert (
        settings.max_body_bytes,
        settings.max_webhook_body_bytes,
        settings.body_timeout_seconds,
        settings.max_concurrent_requests,
    ) == (2048, 1024, 2.5, 7)


def raw_request(port: int, content_length: int, body: bytes = b"") -> socket.socket:
    """A POST /graphql whose headers promise `content_length` bytes, of which `body` is sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_SECONDS)
    head = (
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


def status_of(sock: socket.socket) -> int:
    """The status code of the answer, read within the deadline."""
    received = b""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while b"\r\n" not in received and time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return int(received.split(b" ", 2)[1])


@contextlib.contextmanager
def server_with(settings: Settings, **env: str) -> Iterator[LiveServer]:
    with running_server(settings, env=env) as server:
        yield server


def test_a_slow_body_is_answered_408(settings: Settings) -> None:
    with server_with(settings, CAREBILL_BODY_TIMEOUT_MS="1000") as server:
        trickling = raw_request(server.port, 100, b'{"query"')
        with trickling:
            assert status_of(trickling) == 408
        answer = httpx.post(
            f"{server.http_url}/graphql", json={"query": "{ __typename }"}, trust_env=False
        )
        assert answer.json() == {"data": {"__typename": "Query"}}


def test_slow_headers_are_cut_off(settings: Settings) -> None:
    with server_with(settings, CAREBILL_BODY_TIMEOUT_MS="1000") as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE_SECONDS)
        with sock:
            sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            sock.settimeout(0.2)
            closed = False
            deadline = time.monotonic() + DEADLINE_SECONDS
            while not closed and time.monotonic() < deadline:
                try:
                    sock.sendall(b"X")  # one more byte of a header that never ends
                    closed = sock.recv(4096) == b""
                except TimeoutError:
                    continue
                except OSError:  # reset by the server
                    closed = True
            assert closed
        answer = httpx.post(
            f"{server.http_url}/graphql", json={"query": "{ __typename }"}, trust_env=False
        )
        assert answer.json() == {"data": {"__typename": "Query"}}


def test_requests_in_flight_are_capped(settings: Settings) -> None:
    with server_with(
        settings, CAREBILL_MAX_CONCURRENT_REQUESTS="2", CAREBILL_BODY_TIMEOUT_MS="60000"
    ) as server:
        url = f"{server.http_url}/graphql"
        held = [raw_request(server.port, 100, b"{") for _ in range(2)]
        try:
            deadline = time.monotonic() + DEADLINE_SECONDS
            refused = None
            while time.monotonic() < deadline:
                refused = httpx.post(url, json={"query": "{ __typename }"}, trust_env=False)
                if refused.status_code == 503:
                    break
                time.sleep(0.05)
            assert refused is not None
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            # Health checks are not requests a client can crowd out.
            assert httpx.get(f"{server.http_url}/healthz", trust_env=False).status_code == 200
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + DEADLINE_SECONDS
        status = 0
        while time.monotonic() < deadline:
            status = httpx.post(url, json={"query": "{ __typename }"}, trust_env=False).status_code
            if status == 200:
                break
            time.sleep(0.05)
        assert status == 200
