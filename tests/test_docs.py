"""The docs a client builds from stay true: every GraphQL example in docs/API.md and the README
validates against the schema, every ErrorCode is documented, no doc points outside the
repository, and the README's tour adds up."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import build_schema, parse, validate

from models.enums import Role
from models.errors import ErrorCode
from tests.api import Api
from tests.factories import World
from tests.lifecycle import client_gid

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = build_schema((ROOT / "schema.graphql").read_text())
DOCS = [ROOT / "docs" / "API.md", ROOT / "README.md"]


def graphql_blocks(path: Path) -> list[str]:
    text = path.read_text()
    return [m.group(1) for m in re.finditer(r"```graphql\n(.*?)```", text, re.DOTALL)]


EXAMPLES = [
    pytest.param(block, id=f"{path.name}-{n}")
    for path in DOCS
    for n, block in enumerate(graphql_blocks(path))
]


@pytest.mark.parametrize("block", EXAMPLES)
def test_every_graphql_example_validates(block: str) -> None:
    # A block may hold several operations, one per paragraph, possibly anonymous.
    for operation in re.split(r"\n\s*\n", block.strip()):
        errors = validate(SCHEMA, parse(operation))
        assert errors == [], (operation, errors)


def test_every_error_code_is_documented() -> None:
    api = (ROOT / "docs" / "API.md").read_text()
    for code in ErrorCode:
        assert f"| `{code.value}` |" in api, code
    for top_level in (
        "UNAUTHENTICATED",
        "BAD_USER_INPUT",
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "QUERY_TOO_COMPLEX",
        "INTERNAL_SERVER_ERROR",
    ):
        assert f"| `{top_level}` |" in api, top_level


def test_no_doc_points_outside_the_repository() -> None:
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        assert "../shared" not in path.read_text(), path


async def test_the_readme_tour_adds_up(api: Api, world: World) -> None:
    """The README's provider lifecycle, under the admin's 8.25 % EXCLUSIVE tax: 12000 becomes
    12990, and 5000 + 7990 reach PAID."""
    admin = await world.token(world.admin, Role.ADMIN)
    provider = await world.token(world.provider, Role.PROVIDER)
    tax = await api.data(
        'mutation { setSalesTax(input: {mode: EXCLUSIVE, rateBasisPoints: 825, label: "Sales tax"})'
        " { errors { code } } }",
        token=admin,
    )
    assert tax == {"setSalesTax": {"errors": []}}
    sent = await api.data(
        "mutation($c: ID!) { sendInvoice(input: {clientId: $c, description: "
        '"Video consultation", amount: 12000}) { invoice { id subtotal { amount } tax { amount }'
        " total { amount } } errors { code } } }",
        {"c": client_gid(world.c1)},
        provider,
    )
    invoice = sent["sendInvoice"]["invoice"]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (
        {"amount": 12000},
        {"amount": 990},
        {"amount": 12990},
    )
    statuses = []
    for amount in (5000, 7990):
        paid = await api.data(
            "mutation($i: ID!, $a: Int!) { recordPayment(input: {invoiceId: $i, amount: $a,"
            " method: CASH}) { invoice { status } errors { code } } }",
            {"i": invoice["id"], "a": amount},
            provider,
        )
        assert paid["recordPayment"]["errors"] == []
        statuses.append(paid["recordPayment"]["invoice"]["status"])
    assert statuses == ["UNPAID", "PAID"]
