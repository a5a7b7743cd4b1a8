"""A passing failure (the database busy or down) is never answered as a bad token: a mobile app
logs its user out on 4403 or UNAUTHENTICATED. Sockets are closed with 1013 "try again later",
HTTP answers 503."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from settings import Settings
from tests.live_server import (
    LEGACY_WS,
    TRANSPORT_WS,
    GraphQLSocket,
    LiveServer,
    free_port,
    running_server,
)

A_TOKEN = "Bearer 2GbYy0bXq7bqFq1c5b3uQkQy9m0f0pQvYQ1cX2v3a4s"


@pytest.fixture
def server_without_database(database_url: str, settings: Settings) -> Iterator[LiveServer]:
    """A server whose database cannot be reached (a directory that does not exist, a port
    nothing listens on), as during an outage."""
    if database_url.startswith("sqlite"):
        url = "sqlite+aiosqlite:////nonexistent-carebill-dir/carebill.db"
    else:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/carebill"
    unreachable = Settings(database_url=url, secret_key=settings.secret_key)
    with running_server(unreachable) as server:
        yield server


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_socket_whose_token_cannot_be_checked_is_told_to_try_again(
    server_without_database: LiveServer, protocol: str
) -> None:
    socket = await GraphQLSocket.open(server_without_database, protocol=protocol)
    await socket.init({"Authorization": A_TOKEN})
    if protocol == LEGACY_WS:
        assert (await socket.receive(within=30))["type"] == "connection_error"
    closed = await socket.closed(within=30)
    assert (closed.code, closed.reason) == (1013, "Try again later")


async def test_http_answers_503(server_without_database: LiveServer) -> None:
    headers = {"Authorization": A_TOKEN}
    async with httpx.AsyncClient(
        base_url=server_without_database.http_url, trust_env=False, timeout=30
    ) as http:
        graphql = await http.post(
            "/graphql", json={"query": "{ viewer { role } }"}, headers=headers
        )
        assert graphql.status_code == 503
        export = await http.get(
            "/exports/invoices.csv",
            params={"from": "2025-01-01", "to": "2025-01-31"},
            headers=headers,
        )
        assert export.status_code == 503
