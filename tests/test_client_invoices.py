"""Client.invoices: each client's own page of invoices, in the viewer's view, loaded for a whole
list of clients at once (no query per client)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schema.services import Services
from tests.api import Api
from tests.conftest import StatementCounter
from tests.factories import World, make_world
from tests.lifecycle import client_gid

CLIENTS = """query($first: Int, $after: String, $status: [InvoiceStatus!]) {
  clients(first: 50) { edges { node { name
    invoices(first: $first, after: $after, filter: {status: $status}) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { node { description status client { name } } } } } } } }"""


def by_client(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["node"]["name"]: e["node"]["invoices"] for e in data["clients"]["edges"]}


async def test_each_client_gets_its_own_newest_first_page(api: Api, world: World) -> None:
    for day, (client, text) in enumerate(
        [(world.c1, "a1"), (world.c2, "b1"), (world.c1, "a2"), (world.c1, "a3"), (world.c2, "b2")]
    ):
        await world.invoice(client, description=text, days_ago=10 - day)
    token = await world.token(world.admin, "ADMIN")

    pages = by_client(await api.data(CLIENTS, {"first": 2}, token))

    c1, c2 = pages[world.c1.name], pages[world.c2.name]
    assert [e["node"]["description"] for e in c1["edges"]] == ["a3", "a2"]
    assert (c1["totalCount"], c1["pageInfo"]["hasNextPage"]) == (3, True)
    assert [e["node"]["description"] for e in c2["edges"]] == ["b2", "b1"]
    assert (c2["totalCount"], c2["pageInfo"]["hasNextPage"]) == (2, False)
    assert pages[world.c3.name] == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "edges": [],
    }
    assert {e["node"]["client"]["name"] for e in c1["edges"]} == {world.c1.name}

    # the cursor continues the same client's list
    rest = await api.data(
        "query($id: ID!, $after: String) { client(id: $id) { invoices(first: 5, after: $after)"
        " { edges { node { description } } } } }",
        {"id": client_gid(world.c1), "after": c1["pageInfo"]["endCursor"]},
        token,
    )
    assert [e["node"]["description"] for e in rest["client"]["invoices"]["edges"]] == ["a1"]


async def test_filters_and_the_viewer_scope_apply(api: Api, world: World) -> None:
    await world.invoice(world.c1, description="open")
    await world.invoice(world.c1, description="settled", paid=10_000)
    await world.invoice(world.c3, description="not mine", paid=10_000)
    provider = await world.token(world.provider, "PROVIDER")

    pages = by_client(await api.data(CLIENTS, {"status": ["PAID"]}, provider))

    assert set(pages) == {world.c1.name, world.c2.name}  # c3 belongs to provider2
    assert [e["node"]["description"] for e in pages[world.c1.name]["edges"]] == ["settled"]
    assert pages[world.c2.name]["totalCount"] == 0


async def test_statements_do_not_grow_with_the_number_of_clients(
    api: Api, services: Services, count_statements: Callable[[], StatementCounter]
) -> None:
    small, large = await make_world(services), await make_world(services)
    for world, extra_clients in ((small, 0), (large, 20)):
        for n in range(extra_clients):
            person = await world.add_client(f"Extra {n:02d}")
            await world.invoice(person, days_ago=n)
        await world.invoice(world.c1)
    counts = []
    for world in (small, large):
        token = await world.token(world.admin, "ADMIN")
        await api.data(CLIENTS, {"first": 3}, token)  # warm-up
        counter = count_statements()
        data = await api.data(CLIENTS, {"first": 3}, token)
        assert len(data["clients"]["edges"]) >= 3
        counts.append(counter.count)
    assert counts[0] == counts[1], counts
