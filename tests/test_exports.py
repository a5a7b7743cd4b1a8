"""CSV exports: the billing report and the invoice list of a period, over GET with a bearer
token, scoped like the queries and streamed in chunks."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from models.enums import SalesTaxMode
from schema.node import encode_id
from tests.api import Api
from tests.conftest import StatementCounter
from tests.factories import InvoiceSpec, Person, World, bulk_invoices, random_invoice_specs

NEW_YORK = ZoneInfo("America/New_York")
SPRING = {"from": "2025-03-01", "to": "2025-04-30"}

REPORT = """
query Report($from: Date!, $to: Date!) {
  billingReport(from: $from, to: $to) {
    ...Figures
    byProvider { provider { id } ...Figures }
    byMonth { month ...Figures }
  }
}
fragment Figures on BillingFigures {
  invoicedCount invoiced { amount } tax { amount } collected { amount } refunded { amount }
  netCollected { amount } forgiven { amount } outstanding { amount }
  voidedCount voided { amount }
}
"""

INVOICE_HEADER = (
    "number,sent_at,sent_date,due_date,status,client,client_email,provider,description,"
    "currency,subtotal,tax,total,paid,refunded,due"
)
REPORT_HEADER = (
    "group,key,name,from,to,currency,invoiced_count,invoiced,tax,collected,refunded,"
    "net_collected,forgiven,outstanding,voided_count,voided"
)


def local(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK).astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)


async def spring(world: World) -> None:
    """Given four invoices of March and April 2025 (New York days) and one of May."""
    w = world
    await bulk_invoices(
        w,
        [
            InvoiceSpec(
                w.c1, w.provider, 10_000, local(2025, 3, 1, 0, 0), payments=((None, now()),)
            ),
            InvoiceSpec(
                w.c2,
                w.provider,
                20_000,
                local(2025, 3, 10),
                tax=(SalesTaxMode.EXCLUSIVE, 825),
                payments=((5_000, now()),),
            ),
            InvoiceSpec(
                w.c3,
                w.provider2,
                30_000,
                local(2025, 3, 31, 23, 59),
                payments=((None, now()),),
                refunds=((10_000, now()),),
                description='=HYPERLINK("http://evil.test")',
            ),
            InvoiceSpec(w.c1, w.provider, 5_000, local(2025, 4, 30, 23, 59)),
            InvoiceSpec(w.c1, w.provider, 7_000, local(2025, 5, 1, 0, 0)),
        ],
    )


def csv_line(*cells: object) -> str:
    return ",".join(str(c) for c in cells)


def invoice_line(
    n: int,
    sent: datetime,
    status: str,
    client: Person,
    provider: Person,
    amounts: str,
    *,
    desc: str = "Session",
) -> str:
    return csv_line(
        f"INV-{n:06d}",
        sent.isoformat(),
        sent.astimezone(NEW_YORK).date(),
        "",
        status,
        client.name,
        client.email,
        provider.name,
        desc,
        "USD",
        amounts,
    )


async def get(api: Api, name: str, params: dict[str, str], token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await api.http.get(f"/exports/{name}", params=params, headers=headers)


async def test_an_admin_exports_the_invoices_of_a_period(api: Api, world: World) -> None:
    # Given invoices in and out of March–April, one with a description a spreadsheet would run
    await spring(world)
    w = world

    # When the admin exports March and April
    response = await get(api, "invoices.csv", SPRING, await w.token(w.admin, "ADMIN"))

    # Then every invoice sent in those New York days is a row, oldest first, amounts in dollars
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="invoices-2025-03-01-to-2025-04-30.csv"'
    )
    assert response.text.split("\r\n") == [
        INVOICE_HEADER,
        invoice_line(
            1,
            local(2025, 3, 1, 0, 0),
            "PAID",
            w.c1,
            w.provider,
            "100.00,0.00,100.00,100.00,0.00,0.00",
        ),
        invoice_line(
            2,
            local(2025, 3, 10),
            "UNPAID",
            w.c2,
            w.provider,
            "200.00,16.50,216.50,50.00,0.00,166.50",
        ),
        invoice_line(
            3,
            local(2025, 3, 31, 23, 59),
            "PAID",
            w.c3,
            w.provider2,
            "300.00,0.00,300.00,300.00,100.00,0.00",
            desc='"\'=HYPERLINK(""http://evil.test"")"',
        ),
        invoice_line(
            4,
            local(2025, 4, 30, 23, 59),
            "UNPAID",
            w.c1,
            w.provider,
            "50.00,0.00,50.00,0.00,0.00,50.00",
        ),
        "",
    ]


async def test_each_role_exports_only_the_invoices_of_its_view(
    api: Api, world: World, other_world: World
) -> None:
    # Given the spring invoices, and another practice's in the same period
    await spring(world)
    o = other_world
    await bulk_invoices(o, [InvoiceSpec(o.c1, o.provider, 9_900, local(2025, 3, 5))])
    w = world

    # When each person exports the period
    numbers = {}
    for key, person, role in (
        ("provider", w.provider, "PROVIDER"),
        ("provider2", w.provider2, "PROVIDER"),
        ("c1", w.c1, "CLIENT"),
        ("c3", w.c3, "CLIENT"),
        ("other-c1", o.c1, "CLIENT"),
    ):
        token = await (o if key == "other-c1" else w).token(person, role)
        response = await get(api, "invoices.csv", SPRING, token)
        assert response.status_code == 200, key
        numbers[key] = [line.split(",")[0] for line in response.text.splitlines()[1:]]

    # Then each sees what the invoices query would show them
    assert numbers == {
        "provider": ["INV-000001", "INV-000002", "INV-000004"],
        "provider2": ["INV-000003"],
        "c1": ["INV-000001", "INV-000004"],
        "c3": ["INV-000003"],
        "other-c1": ["INV-000001"],
    }


async def test_the_report_export_has_the_figures_of_the_report(api: Api, world: World) -> None:
    # Given the spring invoices
    await spring(world)
    w = world
    token = await w.token(w.admin, "ADMIN")

    # When the admin exports the report of March–April
    response = await get(api, "billing-report.csv", SPRING, token)

    # Then it has the total, each provider (by name) and each month, as in billingReport
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        'attachment; filename="billing-report-2025-03-01-to-2025-04-30.csv"'
    )
    pat, quinn = encode_id("User", w.provider.id), encode_id("User", w.provider2.id)
    assert response.text.split("\r\n") == [
        REPORT_HEADER,
        "total,,,2025-03-01,2025-04-30,USD,4,666.50,16.50,450.00,100.00,350.00,0.00,216.50,0,0.00",
        f"provider,{pat},Pat Provider,2025-03-01,2025-04-30,USD,"
        "3,366.50,16.50,150.00,0.00,150.00,0.00,216.50,0,0.00",
        f"provider,{quinn},Quinn Provider,2025-03-01,2025-04-30,USD,"
        "1,300.00,0.00,300.00,100.00,200.00,0.00,0.00,0,0.00",
        "month,2025-03,,2025-03-01,2025-03-31,USD,3,616.50,16.50,450.00,100.00,350.00,0.00,166.50,0,0.00",
        "month,2025-04,,2025-04-01,2025-04-30,USD,1,50.00,0.00,0.00,0.00,0.00,0.00,50.00,0,0.00",
        "",
    ]
    report = (await api.data(REPORT, SPRING, token))["billingReport"]
    assert [report["invoiced"], report["outstanding"]] == [{"amount": 66_650}, {"amount": 21_650}]


async def test_a_provider_exports_the_report_of_their_view(api: Api, world: World) -> None:
    await spring(world)
    token = await world.token(world.provider2, "PROVIDER")

    response = await get(api, "billing-report.csv", SPRING, token)

    lines = response.text.splitlines()
    assert lines[1] == (
        "total,,,2025-03-01,2025-04-30,USD,1,300.00,0.00,300.00,100.00,200.00,0.00,0.00,0,0.00"
    )
    assert [line.split(",")[0] for line in lines[1:]] == ["total", "provider", "month", "month"]


async def test_refusals(api: Api, world: World) -> None:
    admin = await world.token(world.admin, "ADMIN")
    client = await world.token(world.c1, "CLIENT")
    cases: list[tuple[str, dict[str, str], str | None, int]] = [
        ("invoices.csv", SPRING, None, 401),
        ("billing-report.csv", SPRING, None, 401),
        ("invoices.csv", SPRING, "not-a-token", 401),
        ("billing-report.csv", SPRING, client, 403),
        ("invoices.csv", {"from": "2025-03-01"}, admin, 400),
        ("invoices.csv", {"from": "2025-3-1", "to": "2025-04-30"}, admin, 400),
        ("billing-report.csv", {"from": "2025-03-01", "to": "2025-02-30"}, admin, 400),
        ("billing-report.csv", {"from": "2025-05-01", "to": "2025-04-30"}, admin, 400),
        ("invoices.csv", {"from": "2015-01-01", "to": "2025-04-30"}, client, 400),
        ("unknown.csv", SPRING, admin, 404),
    ]
    for name, params, token, status in cases:
        response = await get(api, name, params, token)
        assert response.status_code == status, (name, params, response.text)
        assert response.headers["content-type"] == "application/json", name
        if status == 401:
            assert response.headers["www-authenticate"] == "Bearer"


async def raw_get(app: Any, path: str, query: str, token: str) -> tuple[int, list[bytes]]:
    """GET through the ASGI interface itself, keeping each body message as the app sent it
    (httpx's ASGI transport joins them)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"carebill.test"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("carebill.test", 80),
    }
    done = asyncio.Event()
    requested = False
    status = 0
    bodies: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            bodies.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    await app(scope, receive, send)
    return status, bodies


async def test_a_large_export_streams_in_chunks_of_rows(app: Any, world: World) -> None:
    # Given 2,500 invoices in the period
    start, end = local(2025, 3, 1, 0, 0), local(2025, 5, 1, 0, 0)
    await bulk_invoices(world, random_invoice_specs(world, 2_500, start, end))
    token = await world.token(world.admin, "ADMIN")

    # When the admin exports them
    status, bodies = await raw_get(
        app, "/exports/invoices.csv", "from=2025-03-01&to=2025-04-30", token
    )

    # Then the body goes out as the header and then one message per 1,000 rows at most
    assert status == 200
    rows_per_message = [body.decode().count("\r\n") for body in bodies if body]
    assert rows_per_message == [1, 1_000, 1_000, 500]


async def test_the_number_of_statements_does_not_grow_with_the_rows(
    api: Api,
    world: World,
    other_world: World,
    count_statements: Callable[[], StatementCounter],
) -> None:
    # Given a practice with 4 invoices in the period and one with 2,500
    await spring(world)
    start, end = local(2025, 3, 1, 0, 0), local(2025, 5, 1, 0, 0)
    await bulk_invoices(other_world, random_invoice_specs(other_world, 2_500, start, end))
    tokens = [
        await world.token(world.admin, "ADMIN"),
        await other_world.token(other_world.admin, "ADMIN"),
    ]

    # When each admin exports the invoices and the report
    counter = count_statements()
    counted = []
    for name in ("invoices.csv", "billing-report.csv"):
        for token in tokens:
            counter.reset()
            response = await get(api, name, SPRING, token)
            assert response.status_code == 200
            counted.append(
                [
                    s
                    for s in counter.statements
                    if not s.startswith("BEGIN") and not re.search(r"\b(FROM|UPDATE) alerts\b", s)
                ]
            )

    # Then each export takes the same three statements: the session, the practice, the rows
    assert [len(c) for c in counted] == [3, 3, 3, 3]
    assert counted[0] == counted[1]
    assert counted[2] == counted[3]
