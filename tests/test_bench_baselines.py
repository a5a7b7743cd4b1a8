"""bench/compare.py measures CareBill against two Python baselines that must answer exactly
CareBill's `data`: the hand-written endpoint (CareBill's scoped SQL, JSON by hand) and the naive
strawberry server. The bench checks it on its own data before timing; this checks it on a
small practice for every role (the page is scoped by role, and so are the people it names),
so a change of CareBill's answers or scope shows here, not in the middle of a benchmark."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bench.baselines import handwritten, naive
from bench.baselines.documents import ONE, PAGE
from schema.node import encode_id
from settings import Settings
from tests.factories import World


async def _data(http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str) -> Any:
    response = await http.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}),
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]


@pytest.fixture
async def baselines(settings: Settings) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    apps = {
        "handwritten": handwritten.build(settings.database_url, settings.secret_key),
        "naive": naive.build(settings.database_url, settings.secret_key),
    }
    clients = {
        name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b")
        for name, app in apps.items()
    }
    yield clients
    for name, client in clients.items():
        await client.aclose()
        await apps[name].state.db.dispose()


async def test_baselines_answer_carebills_data_for_every_role(
    app: Any, world: World, baselines: dict[str, httpx.AsyncClient]
) -> None:
    paid_refunded = await world.invoice(world.c1, amount=12_000, paid=12_000, refunded=2_000)
    await world.invoice(world.c1, amount=5_000, days_ago=1)
    await world.invoice(world.c2, amount=7_000, days_ago=2, paid=3_000)
    await world.invoice(world.c3, world.provider2, amount=9_000, days_ago=3, forgive=True)
    await world.invoice(world.c2, amount=4_000, days_ago=4, void=True)
    viewers = [
        ("ADMIN", await world.token(world.admin, "ADMIN")),
        ("PROVIDER", await world.token(world.provider, "PROVIDER")),
        ("CLIENT", await world.token(world.c1, "CLIENT")),
    ]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://carebill") as carebill:
        for role, token in viewers:
            for query, variables in (
                (PAGE, {"first": 3}),
                (PAGE, {"first": 100}),
                (ONE, {"id": encode_id("Invoice", paid_refunded)}),
            ):
                expected = await _data(carebill, query, variables, token)
                for name, baseline in baselines.items():
                    found = await _data(baseline, query, variables, token)
                    assert found == expected, (name, role, variables)
        # Not a vacuous equality: the pages hold what each role may see, nested rows included.
        admin_page = await _data(carebill, PAGE, {"first": 100}, viewers[0][1])
        provider_page = await _data(carebill, PAGE, {"first": 100}, viewers[1][1])
        client_page = await _data(carebill, PAGE, {"first": 100}, viewers[2][1])
    totals = [p["invoices"]["totalCount"] for p in (admin_page, provider_page, client_page)]
    assert totals == [5, 4, 2]
    newest = admin_page["invoices"]["edges"][0]["node"]
    assert [len(newest[k]) for k in ("payments", "refunds", "history")] == [1, 1, 3]
    assert newest["history"][0]["actor"]["name"] == "Pat Provider"
