"""The report operations: `billingReport` and `agingReport` (`Client.statement` is read in
schema/reports/statement.py).

Each runs a constant number of statements in one short session, whatever the number of
invoices: the practice, then the report's aggregate query (or the statement's four queries).
Nested objects (providers, clients, invoices' payments) come from the per-request loaders."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

import strawberry

from adapters.database import Database
from models import Practice
from models.reports import (
    AgingReportData,
    BillingReportData,
    Period,
    aging_query,
    billing_report_query,
    check_as_of,
    today_in,
)
from models.scope import Viewer
from schema.context import Info, viewer_of
from schema.reports import AgingReport, BillingReport

From = Annotated[date, strawberry.argument(name="from", description="First day (included)")]
To = Annotated[date, strawberry.argument(description="Last day (included)")]


async def load_billing_report(
    db: Database, viewer: Viewer, first: date, last: date
) -> tuple[Practice, BillingReportData]:
    """The billing report over the viewer's invoices; VALIDATION `DomainError` on a bad period."""
    async with db.reader() as session:
        practice = await session.get_one(Practice, viewer.practice_id)
        period = Period.of(first, last, practice.time_zone)
        rows = (await session.execute(billing_report_query(viewer, period))).all()
    return practice, BillingReportData.of(period, rows)


async def billing_report(info: Info, from_: From, to: To) -> BillingReport:
    """ADMIN: the whole practice; PROVIDER: the invoices of their view; CLIENT: FORBIDDEN."""
    viewer = viewer_of(info)
    practice, data = await load_billing_report(info.context.db, viewer, from_, to)
    return BillingReport.of(data, practice.currency)


async def aging_report(
    info: Info,
    as_of: Annotated[
        date | None,
        strawberry.argument(description="The day ages are counted to; default today"),
    ] = None,
) -> AgingReport:
    """ADMIN only: unpaid balances by age as of `asOf` (default: today in the practice)."""
    viewer = viewer_of(info)
    if as_of is not None:
        check_as_of(as_of)
    async with info.context.db.reader() as session:
        practice = await session.get_one(Practice, viewer.practice_id)
        zone = ZoneInfo(practice.time_zone)
        day = as_of or today_in(zone)
        rows = (await session.execute(aging_query(viewer, day, zone))).all()
    return AgingReport.of(AgingReportData.of(day, rows), practice.currency)
