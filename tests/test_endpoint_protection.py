"""Baseline protection of the GraphQL endpoint: depth, alias and token limits (configurable),
no batches, JSON bodies only (GET: tests/test_graphql_over_http.py), unexpected exceptions
masked with a request id, introspection and GraphiQL only in development, and the health checks."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from adapters.database import Database
from app import create_app
from models.enums import Role
from schema.services import Services
from settings import Settings
from tests.api import Api
from tests.asgi import running
from tests.databases import migrate, sqlite_url
from tests.factories import World, make_world

DEEP = "{ viewer { practice { clientBilling { providers { id } } } } }"  # depth 4 (root = 0)


@pytest.fixture
async def client_of(settings: Settings) -> AsyncIterator[Any]:
    """Clients of apps configured differently, on the test database."""
    stack: list[Any] = []

    async def make(**overrides: Any) -> httpx.AsyncClient:
        values: dict[str, Any] = {
            "database_url": settings.database_url,
            "secret_key": settings.secret_key,
        }
        values.update(overrides)
        application = create_app(Settings(**values))
        lifespan = running(application)
        served = await lifespan.__aenter__()
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=served.app), base_url="http://carebill.test"
        )
        stack.append((lifespan, http))
        return http

    yield make
    for lifespan, http in reversed(stack):
        await http.aclose()
        await lifespan.__aexit__(None, None, None)


def codes(body: dict[str, Any]) -> list[Any]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


# --- limits --------------------------------------------------------------------------------


async def test_query_depth_is_limited_and_configurable(
    api: Api, world: World, client_of: Any
) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    assert "errors" not in await api.post(DEEP, token=token)
    # Depth 11 (root fields are depth 0) > the default 10.
    too_deep = (
        "{ invoices { edges { node { client { invoices { edges { node { client {"
        " invoices { edges { node { id } } } } } } } } } } } }"
    )
    body = await api.post(too_deep, token=token)
    assert "data" not in body or body["data"] is None
    (error,) = body["errors"]
    assert "exceeds maximum operation depth of 10" in error["message"]
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "depth",
        "maximum": 10,
        "value": 11,
    }

    shallow = await client_of(max_query_depth=3)
    response = await shallow.post(
        "/graphql", json={"query": DEEP}, headers={"Authorization": f"Bearer {token}"}
    )
    assert "exceeds maximum operation depth of 3" in response.json()["errors"][0]["message"]


async def test_aliases_are_limited_and_configurable(api: Api, world: World, client_of: Any) -> None:
    token = await world.token(world.c1, Role.CLIENT)

    def aliased(count: int) -> str:
        return "{ " + " ".join(f"a{n}: viewer {{ role }}" for n in range(count)) + " }"

    assert "errors" not in await api.post(aliased(30), token=token)
    body = await api.post(aliased(31), token=token)
    assert body.get("data") is None
    assert "aliases found. Allowed: 30" in body["errors"][0]["message"]
    assert codes(body) == ["QUERY_TOO_COMPLEX"]
    few = await client_of(max_aliases=2)
    response = await few.post(
        "/graphql", json={"query": aliased(3)}, headers={"Authorization": f"Bearer {token}"}
    )
    assert "Allowed: 2" in response.json()["errors"][0]["message"]


async def test_tokens_are_limited_and_configurable(api: Api, world: World, client_of: Any) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    huge = "{ viewer { " + " ".join(["role"] * 2500) + " } }"
    body = await api.post(huge, token=token)
    assert body.get("data") is None
    assert "more than 2000 tokens" in body["errors"][0]["message"]
    assert codes(body) == ["QUERY_TOO_COMPLEX"]
    small = await client_of(max_tokens=10)
    response = await small.post(
        "/graphql",
        json={"query": "{ viewer { role roles user { id name email } } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert "more than 10 tokens" in response.json()["errors"][0]["message"]


async def test_limits_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CAREBILL_MAX_QUERY_DEPTH": "7",
            "CAREBILL_MAX_ALIASES": "8",
            "CAREBILL_MAX_TOKENS": "900",
            "CAREBILL_MAX_PAGE_SIZE": "25",
        }
    )
    assert (
        settings.max_query_depth,
        settings.max_aliases,
        settings.max_tokens,
        settings.max_page_size,
    ) == (7, 8, 900, 25)


# --- transport -----------------------------------------------------------------------------


async def test_batched_requests_are_refused(api: Api, world: World) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    response = await api.http.post(
        "/graphql",
        json=[{"query": "{ viewer { role } }"}, {"query": "{ viewer { role } }"}],
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert response.text == "Batching is not enabled"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        ("{ viewer { role } }", "text/plain"),
        ("{ viewer { role } }", "application/graphql"),
        ("query={viewer{role}}", "application/x-www-form-urlencoded"),
        ('{"query": "{ viewer { role } }"}', None),
        ('{"query": "{ viewer { role } }"}', "text/html"),
        ("{bad json", "application/json"),
        ('"a string"', "application/json"),
        ("42", "application/json"),
        ("null", "application/json"),
        ("true", "application/json"),
        ("", "application/json"),
        (b"\xff\xfe\x00not utf-8", "application/json"),
        ("[" * 100_000 + "]" * 100_000, "application/json"),
        ('{"query": 5}', "application/json"),
        ('{"query": "{ viewer { role } }", "variables": [1]}', "application/json"),
        ('{"query": "{ viewer { role } }", "variables": "x"}', "application/json"),
        ('{"query": "{ viewer { role } }", "extensions": 1}', "application/json"),
        ("{}", "application/json"),
    ],
)
async def test_only_json_objects_are_requests(
    api: Api, content: str | bytes, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await api.http.post("/graphql", content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert "Traceback" not in response.text
    assert len(response.text) < 200


async def test_multipart_uploads_are_refused(api: Api) -> None:
    response = await api.http.post(
        "/graphql",
        data={"operations": '{"query": "{ viewer { role } }"}', "map": "{}"},
        files={"0": ("a.txt", b"hello")},
    )
    assert response.status_code == 400


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_other_methods_are_refused(api: Api, method: str) -> None:
    response = await api.http.request(method, "/graphql", json={"query": "{ viewer { role } }"})
    assert response.status_code == 405


# --- unexpected exceptions -------------------------------------------------------------------


@pytest.fixture
async def broken(tmp_path: Path) -> AsyncIterator[tuple[Any, World]]:
    """An app on its own throwaway SQLite database whose `invoices` table is then dropped:
    reading invoices fails inside the resolver, as an unforeseen bug would."""
    url = sqlite_url(tmp_path)
    await migrate(url)
    settings = Settings(database_url=url, secret_key="broken-secret-key-0123456789")
    db = Database(url)
    world = await make_world(Services.build(settings, db))
    await world.token(world.admin, Role.ADMIN)
    path = url.split("///", 1)[1]
    with sqlite3.connect(path) as raw:  # foreign keys off on this connection
        raw.execute("DROP TABLE invoices")
    application = create_app(settings)
    async with running(application) as served:
        yield served.app, world
    await db.dispose()


async def test_unexpected_exceptions_are_masked_with_a_request_id(
    broken: tuple[Any, World], caplog: pytest.LogCaptureFixture
) -> None:
    application, world = broken
    token = await world.token(world.admin, Role.ADMIN)
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://carebill.test") as http:
        with caplog.at_level(logging.ERROR, logger="carebill.graphql"):
            response = await http.post(
                "/graphql",
                json={"query": "{ practice { name } invoices { totalCount } }"},
                headers={"Authorization": f"Bearer {token}", "X-Request-Id": "req-4242"},
            )
        assert response.status_code == 200
        body = response.json()
        assert body == {
            "data": None,
            "errors": [
                {
                    "message": "Unexpected error.",
                    "locations": [{"line": 1, "column": 21}],
                    "path": ["invoices"],
                    "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-4242"},
                }
            ],
        }
        for leak in ("Traceback", "sqlite", "invoices table", "no such table", "SELECT"):
            assert leak.lower() not in response.text.lower()
        (record,) = [r for r in caplog.records if "req-4242" in r.getMessage()]
        assert record.exc_info is not None
        assert "no such table" in str(record.exc_info[1])

        # Without a request id of the client's, the server makes one up.
        anonymous = await http.post(
            "/graphql",
            json={"query": "{ invoices { totalCount } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        request_id = anonymous.json()["errors"][0]["extensions"]["requestId"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        # The rest of the API still answers.
        fine = await http.post(
            "/graphql",
            json={"query": "{ practice { currency } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert fine.json() == {"data": {"practice": {"currency": "USD"}}}


# --- development and production --------------------------------------------------------------


async def test_development_serves_graphiql_and_introspection(api: Api) -> None:
    page = await api.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    # Every asset from CareBill itself (tests/test_browser.py runs it offline).
    assert "://" not in page.text
    for asset in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert (await api.http.get(f"/{asset}")).status_code == 200, asset
    # The full introspection query GraphiQL sends passes the depth and token limits.
    body = await api.post(get_introspection_query(descriptions=True, input_value_deprecation=True))
    assert "errors" not in body
    names = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert {"Query", "Mutation", "Invoice", "Money", "BigInt", "UserError"} <= names


async def test_production_has_neither(client_of: Any) -> None:
    http = await client_of(env="production")
    page = await http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert (await http.get("/static/graphiql/graphiql.min.js")).status_code == 404
    for query in ("{ __schema { types { name } } }", '{ __type(name: "Invoice") { name } }'):
        response = await http.post("/graphql", json={"query": query})
        body = response.json()
        assert body.get("data") is None
        assert "introspection has been disabled" in body["errors"][0]["message"]
    # __typename is not introspection: it keeps working.
    ok = await http.post("/graphql", json={"query": "{ __typename }"})
    assert ok.json() == {"data": {"__typename": "Query"}}


# --- health checks -----------------------------------------------------------------------------


async def test_health_checks(api: Api) -> None:
    health = await api.http.get("/healthz")
    assert health.status_code == 200
    assert health.headers["content-type"] == "application/json"
    assert health.json()["status"] == "ok"
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": True}


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/carebill",  # nothing listens on port 1
        "sqlite+aiosqlite:////nonexistent-directory/carebill.db",
    ],
)
async def test_readyz_is_503_without_a_database(client_of: Any, url: str) -> None:
    http = await client_of(database_url=url)
    ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/json"
    assert ready.json() == {"status": "unavailable", "database": False}
    health = await http.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"


async def test_graphql_is_503_when_the_database_is_down(client_of: Any) -> None:
    """Authenticating needs the database: without it the answer says so, retryably."""
    http = await client_of(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/carebill")
    response = await http.post(
        "/graphql",
        json={"query": "{ viewer { role } }"},
        headers={"Authorization": "Bearer some-token"},
    )
    assert response.status_code == 503
    assert response.text == "The database is unavailable; try again shortly"
