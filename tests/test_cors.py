"""Browsers on other origins (CORS), decided by the same policy as browser websockets: the
origins of CAREBILL_ALLOWED_ORIGINS; with none listed, in development, pages served from this
machine on any port; in production, none but the listed ones. The real-browser side of it is
tests/test_browser.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from app import create_app
from models.enums import Role
from settings import Settings
from tests.api import Api
from tests.asgi import running
from tests.conftest import TEST_SECRET_KEY
from tests.factories import World
from web.cors import OriginPolicy

QUERY = {"query": "{ viewer { role } }"}
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-request-id",
}

AppClient = Callable[..., Any]


@pytest.fixture
async def client_of(settings: Settings) -> AsyncIterator[AppClient]:
    """Clients of apps configured differently, on the test database."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> httpx.AsyncClient:
            values: dict[str, Any] = {
                "database_url": settings.database_url,
                "secret_key": settings.secret_key,
                **overrides,
            }
            served = await stack.enter_async_context(running(create_app(Settings(**values))))
            transport = httpx.ASGITransport(app=served.app)
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://carebill.test")
            )

        yield make


async def preflight(http: httpx.AsyncClient, origin: str, path: str = "/graphql") -> httpx.Response:
    return await http.options(path, headers={"Origin": origin, **PREFLIGHT})


@pytest.mark.parametrize(
    "origin",
    ["http://localhost:5173", "http://127.0.0.1:3000", "http://[::1]:8081", "http://localhost"],
)
async def test_development_admits_this_machines_dev_servers(api: Api, origin: str) -> None:
    answer = await preflight(api.http, origin)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == origin
    allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-request-id"} <= allowed
    assert set(answer.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
    assert int(answer.headers["access-control-max-age"]) >= 600

    response = await api.http.post("/graphql", json=QUERY, headers={"Origin": origin})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    assert "origin" in response.headers["vary"].lower()


@pytest.mark.parametrize(
    "origin",
    ["https://evil.test", "http://localhost.evil.test", "http://127.0.0.1.evil.test:80", "null"],
)
async def test_other_origins_are_not_admitted(api: Api, world: World, origin: str) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    answer = await preflight(api.http, origin)
    assert answer.status_code == 400
    assert "access-control-allow-origin" not in answer.headers
    # A simple request still runs (CORS is the browser's guard) but carries no permission
    # for the page to read it.
    response = await api.http.post(
        "/graphql", json=QUERY, headers={"Origin": origin, "Authorization": f"Bearer {token}"}
    )
    assert "access-control-allow-origin" not in response.headers


async def test_listed_origins_replace_the_local_ones(client_of: AppClient) -> None:
    http = await client_of(allowed_origins=("https://app.example.test",))
    assert (await preflight(http, "https://app.example.test")).status_code == 200
    refused = await preflight(http, "http://localhost:5173")
    assert "access-control-allow-origin" not in refused.headers


async def test_production_admits_only_the_listed_origins(client_of: AppClient) -> None:
    bare = await client_of(env="production")
    assert (
        "access-control-allow-origin"
        not in (await preflight(bare, "http://localhost:5173")).headers
    )
    listed = await client_of(env="production", allowed_origins=("https://App.Example.test:443",))
    answer = await preflight(listed, "https://app.example.test")
    assert answer.headers["access-control-allow-origin"] == "https://app.example.test"
    assert (
        "access-control-allow-origin" not in (await preflight(listed, "http://localhost")).headers
    )


async def test_csv_exports_are_covered(api: Api, world: World) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    origin = "http://localhost:5173"
    path = "/exports/invoices.csv?from=2025-01-01&to=2025-12-31"
    answer = await api.http.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == origin
    export = await api.http.get(
        path, headers={"Origin": origin, "Authorization": f"Bearer {token}"}
    )
    assert export.status_code == 200
    assert export.headers["access-control-allow-origin"] == origin
    assert "content-disposition" in export.headers["access-control-expose-headers"].lower()


def test_websockets_follow_the_same_policy() -> None:
    local = OriginPolicy.of(Settings())
    assert local.allows("http://localhost:5173")
    assert local.allows("http://[::1]:1234")
    assert not local.allows("https://evil.test")
    assert not local.allows("null")
    listed = OriginPolicy.of(Settings(allowed_origins=("https://app.example.test",)))
    assert listed.allows("https://app.example.test")
    assert not listed.allows("http://localhost:5173")
    production = OriginPolicy.of(Settings(env="production", secret_key=TEST_SECRET_KEY))
    assert not production.allows("http://localhost:5173")
    with pytest.raises(ValueError, match="Invalid origin"):
        OriginPolicy.of(Settings(allowed_origins=("https://app.example.test/path",)))
