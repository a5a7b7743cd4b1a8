"""Production names nothing of the schema to a client probing with near misses: no
"Did you mean …?" suggestions (development keeps them, GraphiQL's users want them)."""

from __future__ import annotations

from typing import Any

import pytest

from models.enums import Role
from tests.factories import World

NEAR_MISSES: list[tuple[str, dict[str, Any]]] = [
    ("{ invoise { id } }", {}),
    ("{ invoices(frist: 1) { totalCount } }", {}),
    ("{ invoices { totalCont } }", {}),
    (
        "query($s: [InvoiceStatus!]) { invoices(filter: {status: $s}) { totalCount } }",
        {"s": ["UNPAIDD"]},
    ),
    ("{ invoices(filter: {status: [PAIDD]}) { totalCount } }", {}),
    ("query($f: InvoiceFiltr) { invoices(filter: $f) { totalCount } }", {}),
    ("{ invoices(filter: {stauts: [PAID]}) { totalCount } }", {}),
]


@pytest.mark.parametrize(("query", "variables"), NEAR_MISSES)
async def test_production_suggests_nothing(
    world: World, client_of: Any, query: str, variables: dict[str, Any]
) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    headers = {"Authorization": f"Bearer {token}"}
    development = await client_of()
    production = await client_of(env="production")
    request = {"query": query, "variables": variables}
    suggested = (await development.post("/graphql", json=request, headers=headers)).json()
    assert "Did you mean" in str(suggested["errors"])
    body = (await production.post("/graphql", json=request, headers=headers)).json()
    assert body.get("data") is None
    assert body["errors"]
    for error in body["errors"]:
        assert "Did you mean" not in error["message"]
        assert error["message"] == error["message"].strip()
