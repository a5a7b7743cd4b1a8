"""The read side: every InvoiceFilter field, client search, nested client fields, `node` for
every Node type, a constant number of SQL statements per page, and sibling root fields
resolved concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from models import Invoice, Payment, Refund
from models.base import utcnow
from models.enums import Role
from schema.node import encode_id
from tests.api import Api
from tests.conftest import StatementCounter
from tests.factories import World

FILTERED = """query($filter: InvoiceFilter) { invoices(filter: $filter, first: 100) {
  totalCount edges { node { id } } } }"""
CLIENTS = """query($search: String) { clients(search: $search, first: 100) {
  totalCount edges { node { id } } } }"""
CLIENT = """query($id: ID!) { client(id: $id) { id name email
  providers { id name } balance { amount currency formatted }
  invoices(first: 100) { totalCount edges { node { id status } } } } }"""
NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on Payment { amount { amount } method }
  ... on Refund { amount { amount } reason } } }"""
PAYMENT_IDS = """query($id: ID!) { invoice(id: $id) { payments { id } refunds { id } } }"""
PAGE = """query($first: Int) { invoices(first: $first) { totalCount edges { node {
  id number status sentAt
  client { id name email providers { id } balance { amount } }
  provider { id name roles }
  subtotal { amount } tax { amount } total { amount formatted }
  amountPaid { amount } amountRefunded { amount } amountDue { amount } refundableAmount { amount }
  payments { id amount { amount } method reference recordedBy { id } }
  refunds { id amount { amount } reason createdBy { id } }
  history { id action actor { id name } at amount { amount } note }
  canPay canRecordPayment canForgive canVoid canRefund
} } } }"""
EVERYTHING = """query($invoice: ID!, $client: ID!) {
  viewer { role user { id } practice { id name } }
  practice { id name clientBilling { enabled providers { id } } }
  invoices(first: 100) { totalCount edges { node { id client { id } history { action } } } }
  clients(first: 100) { totalCount edges { node { id balance { amount } } } }
  invoice(id: $invoice) { id payments { id } }
  client(id: $client) { id invoices { totalCount } }
  node(id: $invoice) { id }
  again: invoices(first: 1) { totalCount }
}"""


def gid(type_name: str, pk: int) -> str:
    return str(encode_id(type_name, pk))


class Book:
    """Invoices of `world` in every status, sent on distinct days (days ago in brackets):
    unpaid c1 (10), partial c1 (8), paid c1 (6), refunded c2 (4), forgiven c2 (2),
    void c3 by provider2 (1)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.ids: dict[str, int] = {}

    async def fill(self) -> Book:
        w = self.world
        self.ids = {
            "unpaid": await w.invoice(w.c1, amount=10_000, days_ago=10),
            "partial": await w.invoice(w.c1, amount=10_000, days_ago=8, paid=500),
            "paid": await w.invoice(w.c1, amount=3_000, days_ago=6, paid=3_000),
            "refunded": await w.invoice(w.c2, amount=2_000, days_ago=4, paid=2_000, refunded=2_000),
            "forgiven": await w.invoice(w.c2, amount=1_500, days_ago=2, forgive=True),
            "void": await w.invoice(w.c3, w.provider2, amount=700, days_ago=1, void=True),
        }
        return self

    def gids(self, *names: str) -> set[str]:
        return {gid("Invoice", self.ids[n]) for n in names}

    async def sent_at(self, name: str) -> datetime:
        async with self.world.db.reader() as session:
            moment = await session.scalar(
                select(Invoice.sent_at).where(Invoice.id == self.ids[name])
            )
        assert moment is not None
        return moment


@pytest.fixture
async def book(world: World) -> Book:
    return await Book(world).fill()


async def ids_of(api: Api, token: str, filter: dict[str, Any] | None) -> tuple[set[str], int]:
    data = (await api.data(FILTERED, {"filter": filter}, token))["invoices"]
    found = {e["node"]["id"] for e in data["edges"]}
    assert data["totalCount"] == len(found)
    return found, data["totalCount"]


# --- filters -------------------------------------------------------------------------------

ALL = ("unpaid", "partial", "paid", "refunded", "forgiven", "void")


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["UNPAID"], ("unpaid", "partial")),
        (["PAID"], ("paid",)),
        (["REFUNDED", "FORGIVEN"], ("refunded", "forgiven")),
        (["VOID"], ("void",)),
        (["UNPAID", "PAID", "REFUNDED", "FORGIVEN", "VOID"], ALL),
        ([], ALL),  # an empty list filters nothing, like an omitted one
        (None, ALL),
    ],
)
async def test_filter_by_status(
    api: Api, book: Book, statuses: list[str] | None, expected: tuple[str, ...]
) -> None:
    token = await book.world.token(book.world.admin, Role.ADMIN)
    found, _ = await ids_of(api, token, {"status": statuses})
    assert found == book.gids(*expected)


async def test_filter_by_client(api: Api, book: Book, other_world: World) -> None:
    w = book.world
    admin = await w.token(w.admin, Role.ADMIN)
    assert (await ids_of(api, admin, {"clientId": gid("Client", w.c1.id)}))[0] == book.gids(
        "unpaid", "partial", "paid"
    )
    assert (await ids_of(api, admin, {"clientId": gid("Client", w.c3.id)}))[0] == book.gids("void")
    # Another practice's client, an unknown or malformed id, an id of another type: nothing.
    await other_world.invoice(other_world.c1)
    for bad in (
        gid("Client", other_world.c1.id),
        gid("Client", 2**31 - 1),
        "garbage",
        gid("Invoice", book.ids["unpaid"]),
    ):
        assert await ids_of(api, admin, {"clientId": bad}) == (set(), 0)
    # A provider filtering on a client not assigned to them sees nothing either.
    provider = await w.token(w.provider, Role.PROVIDER)
    assert await ids_of(api, provider, {"clientId": gid("Client", w.c3.id)}) == (set(), 0)


async def test_filter_by_provider(api: Api, book: Book) -> None:
    w = book.world
    admin = await w.token(w.admin, Role.ADMIN)
    assert (await ids_of(api, admin, {"providerId": gid("User", w.provider2.id)}))[0] == book.gids(
        "void"
    )
    assert (await ids_of(api, admin, {"providerId": gid("User", w.provider.id)}))[0] == book.gids(
        *ALL[:-1]
    )
    assert await ids_of(api, admin, {"providerId": gid("User", w.admin.id)}) == (set(), 0)
    assert await ids_of(api, admin, {"providerId": "???"}) == (set(), 0)


async def test_filter_by_sent_dates_inclusive_bounds(api: Api, book: Book) -> None:
    w = book.world
    token = await w.token(w.admin, Role.ADMIN)
    paid, forgiven = await book.sent_at("paid"), await book.sent_at("forgiven")
    window = {"sentFrom": paid.isoformat(), "sentTo": forgiven.isoformat()}
    assert (await ids_of(api, token, window))[0] == book.gids("paid", "refunded", "forgiven")
    just_after = {"sentFrom": (paid + timedelta(microseconds=1)).isoformat()}
    assert (await ids_of(api, token, just_after))[0] == book.gids("refunded", "forgiven", "void")
    until = {"sentTo": (paid - timedelta(microseconds=1)).isoformat()}
    assert (await ids_of(api, token, until))[0] == book.gids("unpaid", "partial")
    # The same instant written with another UTC offset, and without one (taken as UTC).
    tokyo = paid.astimezone(ZoneInfo("Asia/Tokyo")).isoformat()
    assert (await ids_of(api, token, {"sentFrom": tokyo, "sentTo": tokyo}))[0] == book.gids("paid")
    naive = paid.astimezone(UTC).replace(tzinfo=None).isoformat()
    assert (await ids_of(api, token, {"sentFrom": naive, "sentTo": naive}))[0] == book.gids("paid")
    # An empty window.
    backwards = {"sentFrom": forgiven.isoformat(), "sentTo": paid.isoformat()}
    assert await ids_of(api, token, backwards) == (set(), 0)


async def test_filters_combine(api: Api, book: Book) -> None:
    w = book.world
    token = await w.token(w.provider, Role.PROVIDER)
    combined = {
        "status": ["UNPAID", "PAID"],
        "clientId": gid("Client", w.c1.id),
        "providerId": gid("User", w.provider.id),
        "sentFrom": (await book.sent_at("partial")).isoformat(),
        "sentTo": utcnow().isoformat(),
    }
    assert (await ids_of(api, token, combined))[0] == book.gids("partial", "paid")


async def test_a_client_filtering_sees_only_their_own(api: Api, book: Book) -> None:
    w = book.world
    token = await w.token(w.c2, Role.CLIENT)
    assert (await ids_of(api, token, None))[0] == book.gids("refunded", "forgiven")
    assert await ids_of(api, token, {"clientId": gid("Client", w.c1.id)}) == (set(), 0)
    assert (await ids_of(api, token, {"status": ["FORGIVEN", "UNPAID"]}))[0] == book.gids(
        "forgiven"
    )


# --- clients -------------------------------------------------------------------------------


async def clients_found(api: Api, token: str, search: str | None) -> set[str]:
    data = (await api.data(CLIENTS, {"search": search}, token))["clients"]
    found = {e["node"]["id"] for e in data["edges"]}
    assert data["totalCount"] == len(found)
    return found


async def test_client_search(api: Api, world: World) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    c1, c2, c3 = (gid("Client", p.id) for p in (world.c1, world.c2, world.c3))
    assert await clients_found(api, token, "cleo") == {c1}
    assert await clients_found(api, token, "  CLIENT ") == {c1, c2, c3}
    assert await clients_found(api, token, world.c2.email.split("@")[0]) == {c2}
    assert await clients_found(api, token, "") == {c1, c2, c3}
    assert await clients_found(api, token, "   ") == {c1, c2, c3}
    assert await clients_found(api, token, None) == {c1, c2, c3}
    assert await clients_found(api, token, "nobody by that name") == set()
    # LIKE wildcards are plain characters in a search.
    for wildcard in ("%", "_", "%client", "c_eo", "\\"):
        assert await clients_found(api, token, wildcard) == set(), wildcard
    provider = await world.token(world.provider, Role.PROVIDER)
    assert await clients_found(api, provider, "eli") == set()  # c3 is not theirs


async def test_a_huge_search_is_refused(api: Api, world: World) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    body = await api.post(CLIENTS, {"search": "x" * 1_000_000}, token)
    assert body["data"] is None
    assert [e["extensions"] for e in body["errors"]] == [{"code": "VALIDATION"}]


async def test_client_details(api: Api, book: Book) -> None:
    w = book.world
    token = await w.token(w.provider, Role.PROVIDER)
    data = await api.data(CLIENT, {"id": gid("Client", w.c1.id)}, token)
    invoices = data["client"].pop("invoices")
    assert data == {
        "client": {
            "id": gid("Client", w.c1.id),
            "name": w.c1.name,
            "email": w.c1.email,
            "providers": [{"id": gid("User", w.provider.id), "name": w.provider.name}],
            # unpaid 10 000 + partial 10 000 - 500; paid and closed invoices owe nothing
            "balance": {"amount": 19_500, "currency": "USD", "formatted": "$195.00"},
        }
    }
    assert invoices["totalCount"] == 3
    assert {e["node"]["id"] for e in invoices["edges"]} == book.gids("unpaid", "partial", "paid")


# --- node ------------------------------------------------------------------------------------


async def test_node_resolves_payments_and_refunds_in_view(
    api: Api, book: Book, other_world: World
) -> None:
    w = book.world
    admin = await w.token(w.admin, Role.ADMIN)
    refunded = (await api.data(PAYMENT_IDS, {"id": gid("Invoice", book.ids["refunded"])}, admin))[
        "invoice"
    ]
    (payment,) = refunded["payments"]
    (refund,) = refunded["refunds"]
    expected_payment = {
        "__typename": "Payment",
        "id": payment["id"],
        "amount": {"amount": 2_000},
        "method": "CASH",
    }
    expected_refund = {
        "__typename": "Refund",
        "id": refund["id"],
        "amount": {"amount": 2_000},
        "reason": "test",
    }
    assert await api.data(NODE, {"id": payment["id"]}, admin) == {"node": expected_payment}
    assert await api.data(NODE, {"id": refund["id"]}, admin) == {"node": expected_refund}
    c2 = await w.token(w.c2, Role.CLIENT)
    assert await api.data(NODE, {"id": refund["id"]}, c2) == {"node": expected_refund}
    # Outside the view: c1, provider2, another practice's admin.
    for token in (
        await w.token(w.c1, Role.CLIENT),
        await w.token(w.provider2, Role.PROVIDER),
        await other_world.token(other_world.admin, Role.ADMIN),
    ):
        assert await api.data(NODE, {"id": payment["id"]}, token) == {"node": None}
        assert await api.data(NODE, {"id": refund["id"]}, token) == {"node": None}


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "garbage",
        "🙂",
        "VXNlcg==",  # "User" without a key
        str(encode_id("User", 0)),
        str(encode_id("Nothing", 1)),
        str(encode_id("Invoice", 2**31)),
        str(encode_id("Invoice", 10**17)),
        str(encode_id("InvoiceEvent", 1)),
        "SW52b2ljZTotMQ==",  # Invoice:-1
        "SW52b2ljZTox\n",
        "SW52b2ljZTrCsg==",  # Invoice:² (a digit to str.isdigit, not to int)
        "x" * 100_000,
    ],
)
async def test_node_of_ids_that_are_not_ours(api: Api, world: World, bad: str) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    for query, key in ((NODE, "node"), ("query($id: ID!) { invoice(id: $id) { id } }", "invoice")):
        assert await api.post(query, {"id": bad}, token) == {"data": {key: None}}
    body = await api.post("query($id: ID!) { client(id: $id) { id } }", {"id": bad}, token)
    assert body == {"data": {"client": None}}


# --- statements and concurrency ---------------------------------------------------------


async def test_statements_per_page_do_not_grow_with_its_size(
    api: Api, world: World, count_statements: Callable[[], StatementCounter]
) -> None:
    """The loaders batch every nested list: a page of 50 costs what a page of 5 does."""
    clients = (world.c1, world.c2)
    for n in range(50):
        await world.invoice(clients[n % 2], amount=10_000, days_ago=n, paid=10_000, refunded=1_000)
    token = await world.token(world.provider, Role.PROVIDER)
    await api.data(PAGE, {"first": 1}, token)  # warm-up: the first request primes caches

    counts = {}
    for first in (5, 50):
        counter = count_statements()
        data = await api.data(PAGE, {"first": first}, token)
        edges = data["invoices"]["edges"]
        assert len(edges) == first
        assert all(len(e["node"]["payments"]) == 1 for e in edges)
        assert all(len(e["node"]["refunds"]) == 1 for e in edges)
        assert all(e["node"]["history"][0]["action"] == "SENT" for e in edges)
        counts[first] = len(counter.queries())
        counter.reset()
    assert counts[5] == counts[50], counts
    # One per loader: auth, count, page, payments, refunds, history, people, roles, balances,
    # providers of clients, the practice (the balance's currency).
    assert counts[50] <= 11, counts


async def test_sibling_root_fields_resolve_concurrently(api: Api, book: Book) -> None:
    w = book.world
    token = await w.token(w.admin, Role.ADMIN)
    variables = {"invoice": gid("Invoice", book.ids["paid"]), "client": gid("Client", w.c1.id)}
    body = await api.post(EVERYTHING, variables, token)
    assert "errors" not in body, body
    data = body["data"]
    assert data["viewer"]["role"] == "ADMIN"
    assert data["invoices"]["totalCount"] == 6
    assert data["again"]["totalCount"] == 6
    assert data["clients"]["totalCount"] == 3
    assert data["invoice"]["id"] == data["node"]["id"] == variables["invoice"]
    assert data["client"] == {"id": variables["client"], "invoices": {"totalCount": 3}}
    # Many such requests at once answer the same.
    answers = await asyncio.gather(*(api.post(EVERYTHING, variables, token) for _ in range(10)))
    assert all(answer == body for answer in answers)


async def test_rows_of_the_fixture_are_what_the_tests_assume(book: Book) -> None:
    """Guard of the `book` fixture: its payments and refunds."""
    w = book.world
    async with w.db.reader() as session:
        payments = (
            await session.execute(
                select(Payment.invoice_id, Payment.amount).where(
                    Payment.invoice_id.in_(book.ids.values())
                )
            )
        ).all()
        refunds = (
            await session.execute(
                select(Refund.invoice_id, Refund.amount).where(
                    Refund.invoice_id.in_(book.ids.values())
                )
            )
        ).all()
    assert sorted(payments) == sorted(
        [(book.ids["partial"], 500), (book.ids["paid"], 3_000), (book.ids["refunded"], 2_000)]
    )
    assert refunds == [(book.ids["refunded"], 2_000)]


async def test_a_moved_invoice_keeps_its_order(api: Api, book: Book) -> None:
    """Order is by sentAt: an invoice moved back in time moves back in the list."""
    w = book.world
    async with w.db.writer() as session, session.begin():
        await session.execute(
            update(Invoice)
            .where(Invoice.id == book.ids["void"])
            .values(sent_at=utcnow() - timedelta(days=30))
        )
    token = await w.token(w.admin, Role.ADMIN)
    data = await api.data("{ invoices { edges { node { id } } } }", token=token)
    assert data["invoices"]["edges"][-1]["node"]["id"] == gid("Invoice", book.ids["void"])
