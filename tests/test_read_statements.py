"""What the read path asks the database: the total only when `totalCount` is selected (with the
first page, in the same statement), people without their password hashes."""

from __future__ import annotations

from collections.abc import Callable

from models.enums import Role
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
