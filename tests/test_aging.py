"""agingReport: what is still due on UNPAID invoices, by days since sent (0-30, 31-60, 61-90,
91+) as of a day in the practice's time zone, in total and per client — ADMIN only, computed by
the database in a constant number of statements."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from models import Invoice
from models.enums import InvoiceStatus, SalesTaxMode
from schema.node import encode_id
from tests.api import Api
from tests.conftest import StatementCounter
from tests.factories import (
    InvoiceSpec,
    Person,
    World,
    bulk_invoices,
    random_invoice_specs,
)

AGING = """
query Aging($asOf: Date) {
  agingReport(asOf: $asOf) {
    asOf total { amount currency } count
    buckets { label minDays maxDays amount { amount } count }
    byClient {
      client { id name }
      total { amount } count
      buckets { label amount { amount } count }
    }
  }
}
"""

NEW_YORK = ZoneInfo("America/New_York")
LABELS = ("0-30", "31-60", "61-90", "91+")
LIMITS = ((0, 30), (31, 60), (61, 90), (91, None))


def local(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK).astimezone(UTC)


def buckets(*amounts: tuple[int, int]) -> list[dict[str, Any]]:
    """The four buckets of a report, each (amount, count)."""
    return [
        {
            "label": label,
            "minDays": low,
            "maxDays": high,
            "amount": {"amount": amount},
            "count": count,
        }
        for label, (low, high), (amount, count) in zip(LABELS, LIMITS, amounts, strict=True)
    ]


def client_buckets(*amounts: tuple[int, int]) -> list[dict[str, Any]]:
    return [
        {"label": label, "amount": {"amount": amount}, "count": count}
        for label, (amount, count) in zip(LABELS, amounts, strict=True)
    ]


def client_node(person: Person) -> dict[str, Any]:
    return {"id": encode_id("Client", person.id), "name": person.name}


def paid_now() -> tuple[tuple[None, datetime]]:
    return ((None, datetime.now(UTC)),)


async def test_admin_sees_balances_by_age_in_total_and_per_client(
    api: Api, world: World, other_world: World
) -> None:
    # Given UNPAID invoices of every age as of June 30 (New York days), and others that do not count
    w = world
    await bulk_invoices(
        w,
        [
            InvoiceSpec(w.c1, w.provider, 10_000, local(2025, 6, 30, 23, 30)),  # 0 days
            InvoiceSpec(
                w.c1, w.provider, 5_000, local(2025, 5, 31, 0, 0), payments=((1_000, now()),)
            ),  # 30 days, 4,000 still due
            InvoiceSpec(w.c2, w.provider, 7_000, local(2025, 5, 30, 23, 59)),  # 31 days
            InvoiceSpec(w.c2, w.provider, 3_000, local(2025, 5, 1)),  # 60
            InvoiceSpec(
                w.c3, w.provider2, 2_000, local(2025, 4, 30), tax=(SalesTaxMode.EXCLUSIVE, 825)
            ),  # 61 days, 2,165 with tax
            InvoiceSpec(w.c3, w.provider2, 1_000, local(2025, 4, 1)),  # 90
            InvoiceSpec(w.c1, w.provider, 9_000, local(2025, 3, 31)),  # 91
            InvoiceSpec(
                w.c1, w.admin, 20_000, local(2024, 1, 1), payments=((5_000, now()),)
            ),  # 546 days, 15,000 due
            # Not counted: sent after June 30 (local), or not UNPAID
            InvoiceSpec(w.c1, w.provider, 40_000, local(2025, 7, 1, 0, 0)),
            InvoiceSpec(w.c2, w.provider, 40_000, local(2025, 6, 1), payments=paid_now()),
            InvoiceSpec(
                w.c2,
                w.provider,
                40_000,
                local(2025, 6, 1),
                payments=((1, now()),),
                close="forgive",
            ),
            InvoiceSpec(w.c2, w.provider, 40_000, local(2025, 6, 1), close="void"),
            InvoiceSpec(
                w.c3,
                w.provider2,
                40_000,
                local(2025, 6, 1),
                payments=paid_now(),
                refunds=((None, now()),),
            ),
        ],
    )
    o = other_world
    await bulk_invoices(o, [InvoiceSpec(o.c1, o.provider, 40_000, local(2025, 6, 1))])
    token = await world.token(world.admin, "ADMIN")

    # When the admin asks for the aging as of June 30
    data = await api.data(AGING, {"asOf": "2025-06-30"}, token)

    # Then each invoice is in its bucket, in total and per client (by name)
    assert data == {
        "agingReport": {
            "asOf": "2025-06-30",
            "total": {"amount": 51_165, "currency": "USD"},
            "count": 8,
            "buckets": buckets((14_000, 2), (10_000, 2), (3_165, 2), (24_000, 2)),
            "byClient": [
                {
                    "client": client_node(world.c1),
                    "total": {"amount": 38_000},
                    "count": 4,
                    "buckets": client_buckets((14_000, 2), (0, 0), (0, 0), (24_000, 2)),
                },
                {
                    "client": client_node(world.c2),
                    "total": {"amount": 10_000},
                    "count": 2,
                    "buckets": client_buckets((0, 0), (10_000, 2), (0, 0), (0, 0)),
                },
                {
                    "client": client_node(world.c3),
                    "total": {"amount": 3_165},
                    "count": 2,
                    "buckets": client_buckets((0, 0), (0, 0), (3_165, 2), (0, 0)),
                },
            ],
        }
    }


def now() -> datetime:
    return datetime.now(UTC)


async def test_as_of_defaults_to_today_in_the_practice_time_zone(api: Api, world: World) -> None:
    # Given an invoice sent just now
    await bulk_invoices(world, [InvoiceSpec(world.c2, world.provider, 2_500, now())])
    token = await world.token(world.admin, "ADMIN")
    before = now().astimezone(NEW_YORK).date()

    # When the admin asks without asOf
    data = await api.data(AGING, {}, token)

    # Then the report is as of today in New York, with the new invoice 0 days old
    report = data["agingReport"]
    assert report["asOf"] in {before.isoformat(), now().astimezone(NEW_YORK).date().isoformat()}
    assert report["buckets"] == buckets((2_500, 1), (0, 0), (0, 0), (0, 0))
    assert [c["client"] for c in report["byClient"]] == [client_node(world.c2)]


async def test_a_practice_without_balances_has_four_empty_buckets(api: Api, world: World) -> None:
    token = await world.token(world.admin, "ADMIN")

    data = await api.data(AGING, {"asOf": "2025-06-30"}, token)

    assert data == {
        "agingReport": {
            "asOf": "2025-06-30",
            "total": {"amount": 0, "currency": "USD"},
            "count": 0,
            "buckets": buckets((0, 0), (0, 0), (0, 0), (0, 0)),
            "byClient": [],
        }
    }


async def test_only_an_admin_may_read_the_aging(api: Api, world: World) -> None:
    for person, role in (
        (world.provider, "PROVIDER"),
        (world.admin, "PROVIDER"),
        (world.c1, "CLIENT"),
    ):
        body = await api.post(AGING, {"asOf": "2025-06-30"}, await world.token(person, role))
        assert body["data"] is None, role
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], role

    assert await api.error_codes(AGING, {"asOf": "2025-06-30"}) == ["UNAUTHENTICATED"]


async def test_an_as_of_outside_the_supported_dates_is_refused(api: Api, world: World) -> None:
    token = await world.token(world.admin, "ADMIN")

    codes = await api.error_codes(AGING, {"asOf": "1850-06-30"}, token)

    assert codes == ["VALIDATION"]


async def test_the_number_of_statements_does_not_grow_with_the_invoices(
    api: Api,
    world: World,
    other_world: World,
    count_statements: Callable[[], StatementCounter],
) -> None:
    # Given a practice with 3 unpaid invoices and one with 600 invoices, 3 clients each
    w, o = world, other_world
    await bulk_invoices(
        w, [InvoiceSpec(c, w.provider, 1_000, local(2025, 1, 5)) for c in (w.c1, w.c2, w.c3)]
    )
    start, end = local(2025, 1, 1, 0, 0), local(2025, 6, 1, 0, 0)
    await bulk_invoices(o, random_invoice_specs(o, 600, start, end))
    small, large = await w.token(w.admin, "ADMIN"), await o.token(o.admin, "ADMIN")
    await api.data(AGING, {"asOf": "2025-06-30"}, small)  # warm up

    # When each admin asks for the aging
    counter = count_statements()
    counted = []
    for token in (small, large):
        counter.reset()
        data = await api.data(AGING, {"asOf": "2025-06-30"}, token)
        counted.append(counter.queries())
        assert len(data["agingReport"]["byClient"]) == 3

    # Then both take the same statements: the session, the practice, the aging, the clients
    assert len(counted[0]) == 4
    assert counted[0] == counted[1]


# --- 10,000 invoices against an independent computation ------------------------------------


def expected_aging(
    invoices: list[Invoice], people: dict[int, Person], as_of: date
) -> dict[str, Any]:
    """The aging computed in Python, invoice by invoice, from rows read back with the ORM."""
    total = [0, 0]
    per_bucket = [[0, 0] for _ in LABELS]
    per_client: dict[int, list[list[int]]] = {}
    for invoice in invoices:
        sent = invoice.sent_at.astimezone(NEW_YORK).date()
        if invoice.status is not InvoiceStatus.UNPAID or sent > as_of:
            continue
        due = invoice.total_amount - sum(p.amount for p in invoice.payments)
        age = (as_of - sent).days
        index = next(i for i, (_, high) in enumerate(LIMITS) if high is None or age <= high)
        client = per_client.setdefault(invoice.client_id, [[0, 0] for _ in range(5)])
        for cell in (total, per_bucket[index], client[4], client[index]):
            cell[0] += due
            cell[1] += 1
    clients = sorted(per_client, key=lambda cid: (people[cid].name, cid))
    return {
        "asOf": as_of.isoformat(),
        "total": {"amount": total[0], "currency": "USD"},
        "count": total[1],
        "buckets": buckets(*((a, c) for a, c in per_bucket)),
        "byClient": [
            {
                "client": client_node(people[cid]),
                "total": {"amount": per_client[cid][4][0]},
                "count": per_client[cid][4][1],
                "buckets": client_buckets(*((a, c) for a, c in per_client[cid][:4])),
            }
            for cid in clients
        ],
    }


async def test_ten_thousand_invoices_match_an_independent_computation(
    api: Api, world: World
) -> None:
    # Given 10,000 invoices in every status over 15 months, some sent after asOf, and some a
    # second either side of the local midnights where buckets change
    as_of = date(2025, 12, 31)
    start, end = local(2024, 11, 15, 0, 0), local(2026, 2, 10, 0, 0)
    specs = random_invoice_specs(world, 10_000, start, end, seed=7)
    for days in (0, 30, 60, 90):
        at = datetime.combine(as_of - timedelta(days=days), datetime.min.time(), NEW_YORK)
        for moment in (at - timedelta(seconds=1), at):
            specs.append(InvoiceSpec(world.c3, world.provider2, 333, moment.astimezone(UTC)))
    await bulk_invoices(world, specs)
    async with world.db.reader() as session:
        invoices = list(
            await session.scalars(
                select(Invoice)
                .where(Invoice.practice_id == world.practice_id)
                .options(selectinload(Invoice.payments))
            )
        )
    people = {p.id: p for p in (world.c1, world.c2, world.c3)}

    # When the admin asks for the aging as of the last day of 2025
    data = await api.data(
        AGING, {"asOf": as_of.isoformat()}, await world.token(world.admin, "ADMIN")
    )

    # Then every figure matches the computation
    assert data["agingReport"] == expected_aging(invoices, people, as_of)
    assert all(b["count"] > 0 for b in data["agingReport"]["buckets"])
