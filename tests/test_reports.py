"""billingReport: what was invoiced, collected, refunded, forgiven, voided and is still owed on
the invoices sent in a period (days in the practice's time zone), in total, per provider and per
month — computed by the database, in a constant number of statements."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
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

REPORT = """
query Report($from: Date!, $to: Date!) {
  billingReport(from: $from, to: $to) {
    from to timeZone currency
    ...Figures
    byProvider { provider { id name } ...Figures }
    byMonth { month from to ...Figures }
  }
}
fragment Figures on BillingFigures {
  invoicedCount invoiced { amount } tax { amount } collected { amount } refunded { amount }
  netCollected { amount } forgiven { amount } outstanding { amount }
  voidedCount voided { amount }
}
"""

MONEY = """
query Report($from: Date!, $to: Date!) {
  billingReport(from: $from, to: $to) { invoiced { amount currency formatted } }
}
"""

NEW_YORK = ZoneInfo("America/New_York")
FIGURES = (
    "invoicedCount",
    "invoiced",
    "tax",
    "collected",
    "refunded",
    "netCollected",
    "forgiven",
    "outstanding",
    "voidedCount",
    "voided",
)


def local(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    """A wall-clock time in the practice's zone (the factories' practices are in New York)."""
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK).astimezone(UTC)


def figures(**values: int) -> dict[str, Any]:
    """A whole figures payload: every figure, 0 unless given."""
    out: dict[str, Any] = {}
    for name in FIGURES:
        value = values.get(name, 0)
        out[name] = value if name.endswith("Count") else {"amount": value}
    return out


def period(first: str, last: str) -> dict[str, str]:
    return {"from": first, "to": last}


async def small_practice(world: World, other_world: World) -> None:
    """Given invoices around January and February 2025 in every status."""
    w = world
    await bulk_invoices(
        w,
        [
            # January (New York days)
            InvoiceSpec(w.c1, w.provider, 10_000, local(2025, 1, 10), payments=((None, now()),)),
            # 23:30 on Jan 31 in New York is already February 1 in UTC: still January.
            InvoiceSpec(
                w.c2,
                w.provider,
                20_000,
                local(2025, 1, 31, 23, 30),
                tax=(SalesTaxMode.EXCLUSIVE, 825),
                payments=((5_000, now()),),
            ),
            InvoiceSpec(
                w.c3,
                w.provider2,
                6_000,
                local(2025, 1, 20),
                payments=((None, now()),),
                refunds=((None, now()),),
            ),
            # February
            InvoiceSpec(
                w.c3,
                w.provider2,
                30_000,
                local(2025, 2, 1, 0, 0),
                payments=((None, now()),),
                refunds=((10_000, now()),),
            ),
            InvoiceSpec(
                w.c1,
                w.admin,
                8_000,
                local(2025, 2, 14),
                payments=((3_000, now()),),
                close="forgive",
            ),
            InvoiceSpec(w.c2, w.provider, 4_000, local(2025, 2, 20), close="void"),
            InvoiceSpec(w.c1, w.provider, 50_000, local(2025, 2, 28, 23, 59)),
            # Outside the period: the local days before and after it.
            InvoiceSpec(w.c1, w.provider, 70_000, local(2025, 3, 1, 0, 0)),
            InvoiceSpec(w.c1, w.provider, 90_000, local(2024, 12, 31, 23, 59)),
        ],
    )
    o = other_world
    await bulk_invoices(o, [InvoiceSpec(o.c1, o.provider, 99_000, local(2025, 1, 15))])


def now() -> datetime:
    return datetime.now(UTC)


def provider_node(person: Person) -> dict[str, Any]:
    return {"id": encode_id("User", person.id), "name": person.name}


async def test_admin_sees_the_whole_practice_in_total_per_provider_and_per_month(
    api: Api, world: World, other_world: World
) -> None:
    # Given invoices in every status around January and February, and another practice's
    await small_practice(world, other_world)
    token = await world.token(world.admin, "ADMIN")

    # When the admin asks for January and February
    data = await api.data(REPORT, period("2025-01-01", "2025-02-28"), token)

    # Then every figure is exact, in total, per provider (by name) and per month
    assert data == {
        "billingReport": {
            "from": "2025-01-01",
            "to": "2025-02-28",
            "timeZone": "America/New_York",
            "currency": "USD",
            **figures(
                invoicedCount=6,
                invoiced=125_650,
                tax=1_650,
                collected=54_000,
                refunded=16_000,
                netCollected=38_000,
                forgiven=5_000,
                outstanding=66_650,
                voidedCount=1,
                voided=4_000,
            ),
            "byProvider": [
                {
                    "provider": provider_node(world.admin),
                    **figures(
                        invoicedCount=1,
                        invoiced=8_000,
                        collected=3_000,
                        netCollected=3_000,
                        forgiven=5_000,
                    ),
                },
                {
                    "provider": provider_node(world.provider),
                    **figures(
                        invoicedCount=3,
                        invoiced=81_650,
                        tax=1_650,
                        collected=15_000,
                        netCollected=15_000,
                        outstanding=66_650,
                        voidedCount=1,
                        voided=4_000,
                    ),
                },
                {
                    "provider": provider_node(world.provider2),
                    **figures(
                        invoicedCount=2,
                        invoiced=36_000,
                        collected=36_000,
                        refunded=16_000,
                        netCollected=20_000,
                    ),
                },
            ],
            "byMonth": [
                {
                    "month": "2025-01",
                    "from": "2025-01-01",
                    "to": "2025-01-31",
                    **figures(
                        invoicedCount=3,
                        invoiced=37_650,
                        tax=1_650,
                        collected=21_000,
                        refunded=6_000,
                        netCollected=15_000,
                        outstanding=16_650,
                    ),
                },
                {
                    "month": "2025-02",
                    "from": "2025-02-01",
                    "to": "2025-02-28",
                    **figures(
                        invoicedCount=3,
                        invoiced=88_000,
                        collected=33_000,
                        refunded=10_000,
                        netCollected=23_000,
                        forgiven=5_000,
                        outstanding=50_000,
                        voidedCount=1,
                        voided=4_000,
                    ),
                },
            ],
        }
    }


async def test_amounts_are_money_in_the_practice_currency(api: Api, world: World) -> None:
    await bulk_invoices(world, [InvoiceSpec(world.c1, world.provider, 123_456, local(2025, 5, 5))])
    token = await world.token(world.admin, "ADMIN")

    data = await api.data(MONEY, period("2025-05-01", "2025-05-31"), token)

    assert data == {
        "billingReport": {
            "invoiced": {"amount": 123_456, "currency": "USD", "formatted": "$1,234.56"}
        }
    }


async def test_a_provider_gets_the_report_over_the_invoices_of_their_view(
    api: Api, world: World, other_world: World
) -> None:
    # Given the same invoices; `provider` has clients c1 and c2, `provider2` has c3
    await small_practice(world, other_world)

    # When each provider asks for the period
    mine = await api.data(
        REPORT, period("2025-01-01", "2025-02-28"), await world.token(world.provider, "PROVIDER")
    )
    theirs = await api.data(
        REPORT, period("2025-01-01", "2025-02-28"), await world.token(world.provider2, "PROVIDER")
    )

    # Then each sees the invoices of their clients only — including the admin's invoice to c1
    report = mine["billingReport"]
    assert {k: report[k] for k in FIGURES} == figures(
        invoicedCount=4,
        invoiced=89_650,
        tax=1_650,
        collected=18_000,
        netCollected=18_000,
        forgiven=5_000,
        outstanding=66_650,
        voidedCount=1,
        voided=4_000,
    )
    assert [p["provider"] for p in report["byProvider"]] == [
        provider_node(world.admin),
        provider_node(world.provider),
    ]
    assert [m["invoiced"] for m in report["byMonth"]] == [{"amount": 31_650}, {"amount": 58_000}]
    report = theirs["billingReport"]
    assert {k: report[k] for k in FIGURES} == figures(
        invoicedCount=2, invoiced=36_000, collected=36_000, refunded=16_000, netCollected=20_000
    )
    assert [p["provider"] for p in report["byProvider"]] == [provider_node(world.provider2)]


async def test_an_empty_period_has_zeros_and_every_month(api: Api, world: World) -> None:
    token = await world.token(world.admin, "ADMIN")

    data = await api.data(REPORT, period("2025-11-15", "2026-01-10"), token)

    report = data["billingReport"]
    assert {k: report[k] for k in FIGURES} == figures()
    assert report["byProvider"] == []
    assert report["byMonth"] == [
        {"month": "2025-11", "from": "2025-11-15", "to": "2025-11-30", **figures()},
        {"month": "2025-12", "from": "2025-12-01", "to": "2025-12-31", **figures()},
        {"month": "2026-01", "from": "2026-01-01", "to": "2026-01-10", **figures()},
    ]


async def test_a_client_may_not_read_the_report(api: Api, world: World) -> None:
    token = await world.token(world.c1, "CLIENT")

    body = await api.post(REPORT, period("2025-01-01", "2025-01-31"), token)

    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert body["errors"][0]["path"] == ["billingReport"]


async def test_without_a_token_the_report_needs_authentication(api: Api) -> None:
    codes = await api.error_codes(REPORT, period("2025-01-01", "2025-01-31"))

    assert codes == ["UNAUTHENTICATED"]


async def test_a_client_with_bad_dates_is_still_forbidden(api: Api, world: World) -> None:
    token = await world.token(world.c1, "CLIENT")

    codes = await api.error_codes(REPORT, period("2025-02-01", "2025-01-01"), token)

    assert codes == ["FORBIDDEN"]


async def test_invalid_periods_are_refused(api: Api, world: World) -> None:
    token = await world.token(world.admin, "ADMIN")

    for first, last in (
        ("2025-02-01", "2025-01-31"),  # from after to
        ("2020-01-01", "2025-01-01"),  # 1,828 days: over five years
        ("1850-01-01", "1850-01-31"),  # outside the supported dates
    ):
        body = await api.post(REPORT, period(first, last), token)
        assert body["data"] is None, (first, last)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["VALIDATION"], (first, last)


async def test_five_years_is_the_longest_period(api: Api, world: World) -> None:
    token = await world.token(world.admin, "ADMIN")

    data = await api.data(REPORT, period("2021-01-01", "2025-12-31"), token)

    months = data["billingReport"]["byMonth"]
    assert (len(months), months[0]["month"], months[-1]["month"]) == (60, "2021-01", "2025-12")


async def test_the_number_of_statements_does_not_grow_with_the_invoices(
    api: Api,
    world: World,
    other_world: World,
    count_statements: Callable[[], StatementCounter],
) -> None:
    # Given a practice with 3 invoices and one with 600, by three providers each
    w, o = world, other_world
    await bulk_invoices(
        w, [InvoiceSpec(w.c1, p, 1_000, local(2025, 1, 5)) for p in (w.admin, w.provider)]
    )
    await bulk_invoices(w, [InvoiceSpec(w.c3, w.provider2, 1_000, local(2025, 2, 3))])
    start, end = local(2025, 1, 1, 0, 0), local(2025, 3, 1, 0, 0)
    await bulk_invoices(o, random_invoice_specs(o, 600, start, end))
    small, large = await w.token(w.admin, "ADMIN"), await o.token(o.admin, "ADMIN")
    await api.data(REPORT, period("2025-01-01", "2025-02-28"), small)  # warm up

    # When each admin asks for the full report
    counter = count_statements()
    counted = []
    for token in (small, large):
        counter.reset()
        data = await api.data(REPORT, period("2025-01-01", "2025-02-28"), token)
        counted.append(counter.queries())
        assert len(data["billingReport"]["byProvider"]) == 3

    # Then both take the same statements: the session, the practice, the report, the providers
    assert len(counted[0]) == 4
    assert counted[0] == counted[1]


# --- 10,000 invoices against an independent computation ------------------------------------


def expected_report(
    invoices: Iterable[Invoice], people: dict[int, Person], first: date, last: date
) -> dict[str, Any]:
    """The report computed in Python, invoice by invoice, from rows read back with the ORM."""
    zeros = dict.fromkeys(FIGURES, 0)
    total = dict(zeros)
    by_provider: dict[int, dict[str, int]] = defaultdict(lambda: dict(zeros))
    by_month: dict[str, dict[str, int]] = defaultdict(lambda: dict(zeros))
    for invoice in invoices:
        day = invoice.sent_at.astimezone(NEW_YORK).date()
        if not first <= day <= last:
            continue
        paid = sum(p.amount for p in invoice.payments)
        refunded = sum(r.amount for r in invoice.refunds)
        status = invoice.status
        one = dict(zeros)
        if status is InvoiceStatus.VOID:
            one["voidedCount"], one["voided"] = 1, invoice.total_amount
        else:
            one["invoicedCount"], one["invoiced"] = 1, invoice.total_amount
            one["tax"] = invoice.tax_amount
        one["collected"], one["refunded"] = paid, refunded
        one["netCollected"] = paid - refunded
        if status is InvoiceStatus.FORGIVEN:
            one["forgiven"] = invoice.total_amount - paid
        if status is InvoiceStatus.UNPAID:
            one["outstanding"] = invoice.total_amount - paid
        for bucket in (total, by_provider[invoice.provider_id], by_month[f"{day:%Y-%m}"]):
            for name in FIGURES:
                bucket[name] += one[name]

    def shaped(values: dict[str, int]) -> dict[str, Any]:
        return figures(**values)

    months = []
    cursor = first
    while cursor <= last:
        next_month = (cursor.replace(day=1) + timedelta(days=32)).replace(day=1)
        end = min(last, next_month - timedelta(days=1))
        label = f"{cursor:%Y-%m}"
        months.append(
            {
                "month": label,
                "from": cursor.isoformat(),
                "to": end.isoformat(),
                **shaped(by_month[label]),
            }
        )
        cursor = next_month
    providers = sorted(by_provider, key=lambda pid: (people[pid].name, pid))
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "timeZone": "America/New_York",
        "currency": "USD",
        **shaped(total),
        "byProvider": [
            {"provider": provider_node(people[pid]), **shaped(by_provider[pid])}
            for pid in providers
        ],
        "byMonth": months,
    }


def boundary_specs(world: World) -> list[InvoiceSpec]:
    """Invoices a second either side of local midnights where a period or month begins."""
    w = world
    out = []
    for year, month, day in ((2025, 1, 1), (2025, 3, 1), (2025, 11, 1), (2026, 1, 1)):
        at = local(year, month, day, 0, 0)
        for moment in (at - timedelta(seconds=1), at):
            out.append(InvoiceSpec(w.c2, w.provider, 777, moment))
    return out


async def read_back(world: World) -> list[Invoice]:
    async with world.db.reader() as session:
        rows = await session.scalars(
            select(Invoice)
            .where(Invoice.practice_id == world.practice_id)
            .options(selectinload(Invoice.payments), selectinload(Invoice.refunds))
        )
        return list(rows)


async def test_ten_thousand_invoices_match_an_independent_computation(
    api: Api, world: World
) -> None:
    # Given 10,000 invoices in every status over 15 months, and some on local midnights
    start, end = local(2024, 11, 15, 0, 0), local(2026, 2, 10, 0, 0)
    specs = random_invoice_specs(world, 10_000, start, end, seed=6) + boundary_specs(world)
    await bulk_invoices(world, specs)
    invoices = await read_back(world)
    assert len(invoices) == len(specs)
    people = {p.id: p for p in (world.admin, world.provider, world.provider2)}
    first, last = date(2025, 1, 1), date(2025, 12, 31)

    # When the admin, then a provider, ask for 2025
    admin = await api.data(
        REPORT, period(first.isoformat(), last.isoformat()), await world.token(world.admin, "ADMIN")
    )
    provider = await api.data(
        REPORT,
        period(first.isoformat(), last.isoformat()),
        await world.token(world.provider, "PROVIDER"),
    )

    # Then every figure matches the computation, and the identity holds to the cent
    assert admin["billingReport"] == expected_report(invoices, people, first, last)
    theirs = [i for i in invoices if i.client_id in (world.c1.id, world.c2.id)]
    assert provider["billingReport"] == expected_report(theirs, people, first, last)
    report = admin["billingReport"]
    for group in [report, *report["byProvider"], *report["byMonth"]]:
        assert group["invoiced"]["amount"] == (
            group["collected"]["amount"]
            + group["outstanding"]["amount"]
            + group["forgiven"]["amount"]
        )
    assert report["invoicedCount"] > 7_000  # most of the 15 months are in 2025
    assert all(m["invoicedCount"] > 0 for m in report["byMonth"])
