"""What the read path asks the database: the total only when `totalCount` is selected (with the
first page, in the same statement), people without their password hashes."""

from __future__ import annotations

from collections.abc import Callable

from models.enums import Role
from schema.node import encode_id
from tests.api import Api
from tests.conftest import StatementCounter
from tests.factories import World

PEOPLE = """{ invoices(first: 5) { edges { node { client { id name email }
  provider { id name } history { actor { id name } } payments { recordedBy { name } } } } }
  clients(first: 5) { edges { node { name providers { name } } } }
  viewer { user { name } } }"""


def counts(counter: StatementCounter) -> int:
    return sum("count(" in s.lower() for s in counter.queries())


async def test_the_total_is_counted_only_when_selected(
    api: Api, world: World, count_statements: Callable[[], StatementCounter]
) -> None:
    for n in range(3):
        await world.invoice(world.c1, days_ago=n)
    token = await world.token(world.admin, Role.ADMIN)
    await api.data("{ invoices { totalCount } }", token=token)  # warm-up

    counter = count_statements()
    data = await api.data("{ invoices(first: 2) { edges { node { id } } } }", token=token)
    assert len(data["invoices"]["edges"]) == 2
    assert counts(counter) == 0
    without = counter.count

    counter = count_statements()
    data = await api.data(
        "{ invoices(first: 2) { totalCount edges { node { id } } } }", token=token
    )
    assert data["invoices"]["totalCount"] == 3
    # On the first page the total comes with the page: no statement more.
    assert counter.count == without
    assert counts(counter) == 1

    # After a cursor the page is narrower than the total: a statement of its own counts it.
    page = await api.data(
        "{ invoices(first: 2) { pageInfo { endCursor } } }",
        token=token,
    )
    after = page["invoices"]["pageInfo"]["endCursor"]
    counter = count_statements()
    data = await api.data(
        "query($after: String) { invoices(first: 2, after: $after) { totalCount"
        " edges { node { id } } } }",
        {"after": after},
        token=token,
    )
    assert data["invoices"]["totalCount"] == 3
    assert len(data["invoices"]["edges"]) == 1
    assert counts(counter) == 1

    counter = count_statements()
    data = await api.data("{ clients { edges { node { id } } } }", token=token)
    assert data["clients"]["edges"]
    assert counts(counter) == 0


async def test_people_are_read_without_their_password_hashes(
    api: Api, world: World, count_statements: Callable[[], StatementCounter]
) -> None:
    await world.invoice(world.c1, paid=1_000)
    token = await world.token(world.admin, Role.ADMIN)
    counter = count_statements()
    data = await api.data(PEOPLE, token=token)
    assert data["invoices"]["edges"][0]["node"]["client"]["name"] == world.c1.name
    assert data["viewer"]["user"]["name"]
    assert counter.queries()
    assert not [s for s in counter.queries() if "password_hash" in s]


ONE_INVOICE = """query($id: ID!) { invoice(id: $id) { id amountDue { amount } canPay
  client { name } provider { name } payments { amount { amount } recordedBy { name } }
  refunds { amount { amount } createdBy { name } } history { action actor { name } } } }"""


async def test_one_invoice_and_everything_under_it_in_three_statements(
    api: Api, world: World, count_statements: Callable[[], StatementCounter]
) -> None:
    """The token, the invoice, then its payments, refunds and history with the people they
    name, in one statement (each part scoped to the viewer in its SQL)."""
    invoice = await world.invoice(world.c1, amount=2_000, paid=2_000, refunded=500)
    token = await world.token(world.c1, Role.CLIENT)
    variables = {"id": encode_id("Invoice", invoice)}
    await api.data(ONE_INVOICE, variables, token)  # warm-up
    counter = count_statements()
    data = (await api.data(ONE_INVOICE, variables, token))["invoice"]
    assert data["client"] == {"name": world.c1.name}
    assert data["provider"] == {"name": world.provider.name}
    assert [p["amount"] for p in data["payments"]] == [{"amount": 2_000}]
    assert [r["amount"] for r in data["refunds"]] == [{"amount": 500}]
    actors = {e["actor"]["name"] for e in data["history"] if e["actor"] is not None}
    assert actors <= {world.provider.name, world.admin.name, world.c1.name}
    assert len(counter.queries()) == 3, counter.queries()
