"""CSV exports of a period: the billing report and the invoice list, scoped like the queries.

`GET /exports/billing-report.csv?from=YYYY-MM-DD&to=YYYY-MM-DD` (ADMIN, PROVIDER) and
`GET /exports/invoices.csv?from=...&to=...` (any role, their own view), with a bearer token.
Responses stream: rows are read from the database in chunks of `CHUNK_ROWS` through a
server-side cursor and written out chunk by chunk, so an export of 100,000 invoices never holds
them all in memory. Errors answer before streaming starts: 401 without a valid token, 403 for a
role that may not read the report, 400 for missing or invalid dates."""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from adapters.database import Database
from models import Practice
from models.errors import DomainError, validation
from models.invoice import format_invoice_number
from models.money import Money
from models.permissions import READ_BILLING_REPORT
from models.reports import (
    GRAIN_MONTH,
    GRAIN_PROVIDER,
    BillingFigures,
    Period,
    Rows,
    billing_report_query,
    invoice_export_query,
)
from models.scope import Viewer
from schema.node import encode_id
from schema.services import Services

log = logging.getLogger("carebill.exports")

CHUNK_ROWS = 1000

# What app.py routes to, once it has authenticated the request (viewer None: no valid token).
Handler = Callable[[Services, Viewer | None, Request], Awaitable[Response]]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A spreadsheet runs a cell starting with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

REPORT_HEADER = [
    "group",
    "key",
    "name",
    "from",
    "to",
    "currency",
    "invoiced_count",
    "invoiced",
    "tax",
    "collected",
    "refunded",
    "net_collected",
    "forgiven",
    "outstanding",
    "voided_count",
    "voided",
]
INVOICE_HEADER = [
    "number",
    "sent_at",
    "sent_date",
    "due_date",
    "status",
    "client",
    "client_email",
    "provider",
    "description",
    "currency",
    "subtotal",
    "tax",
    "total",
    "paid",
    "refunded",
    "due",
]


def _refusal(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _text(value: str) -> str:
    """Free text made safe to open in a spreadsheet."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


async def _period(db: Database, viewer: Viewer, request: Request) -> tuple[Practice, Period]:
    """The practice and the period of `?from=&to=`; a VALIDATION DomainError when invalid."""
    params = request.query_params
    days: list[date] = []
    for name in ("from", "to"):
        raw = params.get(name, "")
        try:
            if not _DATE.fullmatch(raw):
                raise ValueError(raw)
            days.append(date.fromisoformat(raw))
        except ValueError:
            raise validation(f"`{name}` must be a date, YYYY-MM-DD", name) from None
    async with db.reader() as session:
        practice = await session.get_one(Practice, viewer.practice_id)
    return practice, Period.of(days[0], days[1], practice.time_zone)


async def _stream(
    db: Database, statement: Rows, header: list[str], line: Callable[[Any], list[Any]]
) -> AsyncIterator[str]:
    """The header, then the rows of `statement` as CSV, one chunk of rows at a time."""
    yield _csv([header])
    async with db.reader() as session:
        result = await session.stream(statement.execution_options(yield_per=CHUNK_ROWS))
        async for chunk in result.partitions():
            yield _csv(line(row) for row in chunk)


def _attachment(lines: AsyncIterator[str], name: str) -> StreamingResponse:
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def billing_report_csv(
    services: Services, viewer: Viewer | None, request: Request
) -> Response:
    """The billing report: a `total` row, a row per `provider` and per `month`."""
    if viewer is None:
        return _refusal(401, "Authentication required: send a valid bearer token")
    if not READ_BILLING_REPORT.allows(viewer):
        return _refusal(403, "Your active role may not read the billing report")
    try:
        practice, period = await _period(services.db, viewer, request)
    except DomainError as error:
        return _refusal(400, error.message)
    currency = practice.currency
    months = period.months()

    def line(row: Any) -> list[Any]:
        figures = BillingFigures.of(row)
        if row.grain == GRAIN_PROVIDER:
            keys = [
                "provider",
                encode_id("User", row.key),
                _text(row.name),
                period.first,
                period.last,
            ]
        elif row.grain == GRAIN_MONTH:
            month = months[row.key]
            keys = ["month", month.label, "", month.first, month.last]
        else:
            keys = ["total", "", "", period.first, period.last]
        amounts = [
            figures.invoiced_count,
            figures.invoiced,
            figures.tax,
            figures.collected,
            figures.refunded,
            figures.collected - figures.refunded,
            figures.forgiven,
            figures.outstanding,
            figures.voided_count,
            figures.voided,
        ]
        counts = {0, 8}  # invoiced_count and voided_count are not money
        return [
            *keys,
            currency,
            *(v if i in counts else Money(v, currency).decimal() for i, v in enumerate(amounts)),
        ]

    lines = _stream(services.db, billing_report_query(viewer, period), REPORT_HEADER, line)
    return _attachment(lines, f"billing-report-{period.first}-to-{period.last}.csv")


async def invoices_csv(services: Services, viewer: Viewer | None, request: Request) -> Response:
    """The invoices sent in the period within the viewer's view, oldest first."""
    if viewer is None:
        return _refusal(401, "Authentication required: send a valid bearer token")
    try:
        _practice, period = await _period(services.db, viewer, request)
    except DomainError as error:
        return _refusal(400, error.message)

    def line(row: Any) -> list[Any]:
        def money(amount: int) -> str:
            return Money(amount, row.currency).decimal()

        return [
            format_invoice_number(row.number),
            row.sent_at.isoformat(),
            row.sent_at.astimezone(period.zone).date(),
            row.due_date or "",
            row.status,
            _text(row.client_name),
            _text(row.client_email),
            _text(row.provider_name),
            _text(row.description),
            row.currency,
            money(row.subtotal_amount),
            money(row.tax_amount),
            money(row.total_amount),
            money(row.paid),
            money(row.refunded),
            money(row.due),
        ]

    lines = _stream(services.db, invoice_export_query(viewer, period), INVOICE_HEADER, line)
    return _attachment(lines, f"invoices-{period.first}-to-{period.last}.csv")


# By file name, under /exports/.
HANDLERS: dict[str, Handler] = {
    "billing-report.csv": billing_report_csv,
    "invoices.csv": invoices_csv,
}
