"""Relay pagination of `invoices`, `clients` and `Client.invoices`: bounded `first`, a stable
newest-first order (ties broken by id), cursors that round-trip, `totalCount`, and typed
VALIDATION errors for cursors this API never gave out."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app import create_app
from models import Invoice
from models.base import utcnow
from models.enums import Role
from schema.node import encode_id
from settings import Settings
from tests.api import Api
from tests.asgi import running
from tests.factories import World

INVOICES = """query($first: Int, $after: String) { invoices(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } } } }"""
CLIENTS = """query($first: Int, $after: String, $search: String) {
  clients(first: $first, after: $after, search: $search) {
  totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id name } } } }"""
CLIENT_INVOICES = """query($id: ID!, $first: Int, $after: String) { client(id: $id) {
  invoices(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } } } } }"""


def gid(type_name: str, pk: int) -> str:
    return str(encode_id(type_name, pk))


def cursor_of(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


async def newest_first(world: World, ids: list[int]) -> list[str]:
    """`ids` in the contract's order, read from the database: sent_at desc, then id desc."""
    async with world.db.reader() as session:
        rows = (
            await session.execute(select(Invoice.id, Invoice.sent_at).where(Invoice.id.in_(ids)))
        ).all()
    return [gid("Invoice", i) for i, _ in sorted(rows, key=lambda r: (r[1], r[0]), reverse=True)]


async def walk(
    api: Api, token: str, query: str, key: str, first: int, **variables: Any
) -> tuple[list[str], set[int]]:
    """Every id of a connection, page by page; and the totalCounts seen on the way."""
    seen: list[str] = []
    totals: set[int] = set()
    after: str | None = None
    for _ in range(100):
        data = await api.data(query, {"first": first, "after": after, **variables}, token)
        connection = data
        for part in key.split("."):
            connection = connection[part]
        totals.add(connection["totalCount"])
        edges = connection["edges"]
        assert len(edges) <= first
        seen.extend(e["node"]["id"] for e in edges)
        info = connection["pageInfo"]
        assert info["endCursor"] == (edges[-1]["cursor"] if edges else None)
        if not info["hasNextPage"]:
            return seen, totals
        assert len(edges) == first
        after = info["endCursor"]
    raise AssertionError("pagination never ended")


@pytest.fixture
async def invoices(world: World) -> list[int]:
    """Seven invoices of c1; three of them sent at the very same instant (a tie)."""
    ids = [await world.invoice(world.c1, days_ago=d) for d in (5, 1, 3, 0, 0, 0, 2)]
    tie = utcnow() - timedelta(days=4)
    async with world.db.writer() as session, session.begin():
        await session.execute(update(Invoice).where(Invoice.id.in_(ids[3:6])).values(sent_at=tie))
    return ids


@pytest.mark.parametrize("first", [1, 2, 3, 7, 100])
async def test_invoices_walk_newest_first_with_ties(
    api: Api, world: World, invoices: list[int], first: int
) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    seen, totals = await walk(api, token, INVOICES, "invoices", first)
    assert seen == await newest_first(world, invoices)
    assert totals == {7}


async def test_default_page_is_twenty(api: Api, world: World) -> None:
    ids = [await world.invoice(world.c2, amount=100 + n) for n in range(21)]
    token = await world.token(world.provider, Role.PROVIDER)
    data = await api.data(INVOICES, token=token)
    connection = data["invoices"]
    assert connection["totalCount"] == 21
    assert len(connection["edges"]) == 20
    assert connection["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["id"] for e in connection["edges"]] == (await newest_first(world, ids))[:20]


async def test_first_zero_is_an_empty_page(api: Api, world: World, invoices: list[int]) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    data = await api.data(INVOICES, {"first": 0}, token)
    assert data["invoices"] == {
        "totalCount": 7,
        "pageInfo": {"hasNextPage": True, "endCursor": None},
        "edges": [],
    }


async def test_any_edge_cursor_resumes_right_after_it(
    api: Api, world: World, invoices: list[int]
) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    everything = (await api.data(INVOICES, {"first": 100}, token))["invoices"]["edges"]
    for position, edge in enumerate(everything):
        rest = (await api.data(INVOICES, {"first": 100, "after": edge["cursor"]}, token))[
            "invoices"
        ]
        assert [e["node"]["id"] for e in rest["edges"]] == [
            e["node"]["id"] for e in everything[position + 1 :]
        ]
        assert rest["pageInfo"]["hasNextPage"] is False


async def test_new_invoices_do_not_disturb_a_walk(
    api: Api, world: World, invoices: list[int]
) -> None:
    """Newest first: what is sent during a walk lands before the cursor, never in the pages
    still to come, so no id is seen twice or skipped."""
    token = await world.token(world.admin, Role.ADMIN)
    first = (await api.data(INVOICES, {"first": 3}, token))["invoices"]
    await world.invoice(world.c1)
    rest = (
        await api.data(INVOICES, {"first": 100, "after": first["pageInfo"]["endCursor"]}, token)
    )["invoices"]
    seen = [e["node"]["id"] for e in first["edges"] + rest["edges"]]
    assert seen == await newest_first(world, invoices)
    assert rest["totalCount"] == 8


@pytest.mark.parametrize("first", [101, 1000, -1, 2**31 - 1, -(2**31)])
async def test_first_is_bounded(api: Api, world: World, invoices: list[int], first: int) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    for query in (INVOICES, CLIENTS):
        body = await api.post(query, {"first": first}, token)
        assert body["data"] is None
        (error,) = body["errors"]
        assert error["extensions"] == {"code": "VALIDATION"}
        assert error["message"] == "`first` must be between 0 and 100"


async def _api_of(settings: Settings) -> AsyncIterator[Api]:
    application = create_app(settings)
    async with running(application) as served:
        transport = httpx.ASGITransport(app=served.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://carebill.test") as http:
            yield Api(http)


async def test_the_bound_is_configurable(
    settings: Settings, world: World, invoices: list[int]
) -> None:
    small = Settings(
        database_url=settings.database_url, secret_key=settings.secret_key, max_page_size=3
    )
    token = await world.token(world.admin, Role.ADMIN)
    async for api in _api_of(small):
        page = (await api.data(INVOICES, {"first": 3}, token))["invoices"]
        assert len(page["edges"]) == 3
        default = (await api.data(INVOICES, {}, token))["invoices"]
        assert len(default["edges"]) == 3  # the default never exceeds the bound
        assert await api.error_codes(INVOICES, {"first": 4}, token) == ["VALIDATION"]


BAD_CURSORS = [
    "",
    "garbage",
    "%%%%",
    "ünïcödé",
    base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
    cursor_of({"a": 1}),
    cursor_of([]),
    cursor_of(["2024-01-01T00:00:00+00:00"]),
    cursor_of(["2024-01-01T00:00:00+00:00", 1, 2]),
    cursor_of(["not a date", 1]),
    cursor_of(["2024-01-01T00:00:00", 1]),  # no offset: never one of ours
    cursor_of(["2024-01-01T00:00:00+00:00", "1"]),
    cursor_of(["2024-01-01T00:00:00+00:00", 1.5]),
    cursor_of(["2024-01-01T00:00:00+00:00", True]),
    cursor_of(["2024-01-01T00:00:00+00:00", None]),
    cursor_of(["2024-01-01T00:00:00+00:00", 2**70]),
    cursor_of(["2024-01-01T00:00:00+00:00", -(2**70)]),
    cursor_of([12345, 1]),
    cursor_of([None, None]),
    cursor_of([["nested"], {"x": 1}]),
    "A" * 100_000,
]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
async def test_bad_invoice_cursors_are_validation_errors(
    api: Api, world: World, cursor: str
) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    body = await api.post(INVOICES, {"after": cursor}, token)
    assert body["data"] is None
    assert [e["extensions"] for e in body["errors"]] == [{"code": "VALIDATION"}]
    nested = await api.post(
        CLIENT_INVOICES, {"id": gid("Client", world.c1.id), "after": cursor}, token
    )
    assert nested["data"] == {"client": None}
    assert [e["extensions"] for e in nested["errors"]] == [{"code": "VALIDATION"}]


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage",
        cursor_of(["Cleo Client"]),
        cursor_of([1, 1]),
        cursor_of(["Cleo Client", "1"]),
        cursor_of(["Cleo Client", True]),
        cursor_of(["Cleo Client", 1.5]),
        cursor_of(["Cleo Client", 2**70]),
        cursor_of(["Cleo Client", None]),
        cursor_of([None, 1]),
    ],
)
async def test_bad_client_cursors_are_validation_errors(
    api: Api, world: World, cursor: str
) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    body = await api.post(CLIENTS, {"after": cursor}, token)
    assert body["data"] is None
    assert [e["extensions"] for e in body["errors"]] == [{"code": "VALIDATION"}]


async def test_a_cursor_of_the_clients_list_is_not_an_invoice_cursor(
    api: Api, world: World, invoices: list[int]
) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    clients = (await api.data(CLIENTS, {"first": 1}, token))["clients"]
    assert await api.error_codes(INVOICES, {"after": clients["pageInfo"]["endCursor"]}, token) == [
        "VALIDATION"
    ]


async def test_clients_walk_by_name_then_id(api: Api, world: World) -> None:
    """Same-named clients are ordered by id and never lost between pages."""
    admin = await world.token(world.admin, Role.ADMIN)
    for _ in range(4):
        await world.add_client("Dana Client")  # as c2
    everything = (await api.data(CLIENTS, {"first": 100}, admin))["clients"]
    names = [e["node"]["name"] for e in everything["edges"]]
    assert names == ["Cleo Client"] + ["Dana Client"] * 5 + ["Eli Client"]
    dana_ids = [e["node"]["id"] for e in everything["edges"][1:6]]
    assert dana_ids == sorted(dana_ids, key=lambda g: int(base64.b64decode(g).split(b":")[1]))
    for first in (1, 2, 3):
        seen, totals = await walk(api, admin, CLIENTS, "clients", first)
        assert seen == [e["node"]["id"] for e in everything["edges"]]
        assert totals == {7}


async def test_client_invoices_paginate_within_the_client(
    api: Api, world: World, invoices: list[int]
) -> None:
    others = [await world.invoice(world.c2) for _ in range(2)]
    token = await world.token(world.provider, Role.PROVIDER)
    seen, totals = await walk(
        api, token, CLIENT_INVOICES, "client.invoices", 2, id=gid("Client", world.c1.id)
    )
    assert seen == await newest_first(world, invoices)
    assert totals == {7}
    seen, _ = await walk(
        api, token, CLIENT_INVOICES, "client.invoices", 2, id=gid("Client", world.c2.id)
    )
    assert seen == await newest_first(world, others)


async def test_sent_at_of_cursors_round_trips_on_every_backend(api: Api, world: World) -> None:
    """Microseconds and the UTC offset survive the cursor: invoices a microsecond apart are
    neither skipped nor repeated."""
    ids = [await world.invoice(world.c3, provider=world.provider2) for _ in range(3)]
    base = datetime(2025, 3, 1, 12, 0, 0, 1, tzinfo=utcnow().tzinfo)
    async with world.db.writer() as session, session.begin():
        for offset, invoice_id in enumerate(ids):
            await session.execute(
                update(Invoice)
                .where(Invoice.id == invoice_id)
                .values(sent_at=base + timedelta(microseconds=offset))
            )
    token = await world.token(world.provider2, Role.PROVIDER)
    seen, _ = await walk(api, token, INVOICES, "invoices", 1)
    assert seen == [gid("Invoice", i) for i in reversed(ids)]
