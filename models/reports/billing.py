"""The billing report: what the invoices sent in a period were invoiced, collected, refunded,
forgiven, voided and still owe, in total, per provider and per month.

Definitions, for the invoices of a report (`paid` = sum of the invoice's payment rows,
`refunded` = sum of its refund rows; refunds never lower `paid`):
    invoiced    = sum of totals of the invoices that are not VOID (tax included)
    collected   = sum of `paid` (gross: payments received, refunds not deducted)
    refunded    = sum of `refunded`
    outstanding = sum of total - paid over UNPAID invoices (their amount due)
    forgiven    = sum of total - paid over FORGIVEN invoices (the written-off balance)
    voided      = sum of totals of VOID invoices (never paid, so outside the identity)
Since PAID and REFUNDED invoices were paid in full and VOID ones never paid,
invoiced = collected + outstanding + forgiven, to the cent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, String, and_, case, cast, literal_column, null, select, union_all

from models.enums import InvoiceStatus
from models.invoice import Invoice, Payment, Refund, amount_due_per_row
from models.reports.aggregates import (
    GRAIN_TOTAL,
    Rows,
    constants,
    figure_cells,
    index_of,
    summed,
)
from models.reports.periods import Month, Period
from models.scope import Viewer, visible_invoices
from models.user import User


@dataclass(frozen=True, slots=True)
class BillingFigures:
    """The billing figures of a set of invoices, in minor units (see the module docstring)."""

    invoiced_count: int
    invoiced: int
    tax: int
    collected: int
    refunded: int
    forgiven: int
    outstanding: int
    voided_count: int
    voided: int

    @classmethod
    def of(cls, row: Any) -> BillingFigures:
        return cls(**{name: int(getattr(row, name)) for name in cls.__slots__})


# Rows of the billing report statement, by their `grain` column (and GRAIN_TOTAL).
GRAIN_PROVIDER, GRAIN_MONTH = 1, 2


def _billing_figures() -> dict[str, dict[str, Any]]:
    """Per-row expressions of `BillingFigures`, for `figure_cells`. An invoice counts its total
    in `forgiven`/`outstanding` and each of its payments takes its amount off again, so those
    are total - paid, summed."""
    status = Invoice.status
    not_void = status != InvoiceStatus.VOID
    forgiven = status == InvoiceStatus.FORGIVEN
    void = status == InvoiceStatus.VOID
    total = Invoice.total_amount
    paid = Payment.amount
    return {
        "invoice": {
            "invoiced_count": case((not_void, 1), else_=0),
            "invoiced": case((not_void, total), else_=0),
            "tax": case((not_void, Invoice.tax_amount), else_=0),
            "forgiven": case((forgiven, total), else_=0),
            "outstanding": amount_due_per_row()["invoice"],
            "voided_count": case((void, 1), else_=0),
            "voided": case((void, total), else_=0),
        },
        "payment": {
            "collected": paid,
            "forgiven": case((forgiven, -paid), else_=0),
            "outstanding": amount_due_per_row()["payment"],
        },
        "refund": {"refunded": Refund.amount},
    }


def billing_report_query(viewer: Viewer, period: Period) -> Rows:
    """One statement for the whole report: a row per grain — the total (one row), each
    provider with invoices in the period (by name), each month of the period (in order, also
    the empty ones) — with the figures of `BillingFigures`, over the viewer's invoices sent in
    the period.

    The invoices, payments and refunds are read once, into `cells`: the figures per provider
    and month (a few dozen rows); the three grains are SUMs over those cells."""
    months = period.months()
    sent_at = Invoice.sent_at
    cells = figure_cells(
        and_(visible_invoices(viewer), period.contains(sent_at)),
        {
            "provider_id": Invoice.provider_id,
            "month": index_of(sent_at, [m.start for m in months], 0),
        },
        _billing_figures(),
    )
    figures = summed(cells, BillingFigures.__slots__)

    def keys(grain: int, key: Any, name: Any) -> list[Any]:
        return [
            literal_column(str(grain), Integer).label("grain"),
            key.label("key"),
            name.label("name"),
        ]

    no_key = cast(null(), Integer)
    no_name = cast(null(), String)
    total = select(*keys(GRAIN_TOTAL, no_key, no_name), *figures).select_from(cells)
    by_provider = (
        select(*keys(GRAIN_PROVIDER, cells.c.provider_id, User.name), *figures)
        .select_from(cells.join(User, User.id == cells.c.provider_id))
        .group_by(cells.c.provider_id, User.name)
    )
    month_table = constants("months", [m.index for m in months])
    by_month = (
        select(*keys(GRAIN_MONTH, month_table.c.idx, no_name), *figures)
        .select_from(month_table.outerjoin(cells, cells.c.month == month_table.c.idx))
        .group_by(month_table.c.idx)
    )
    rows = union_all(total, by_provider, by_month).subquery("report")
    return select(rows).order_by(rows.c.grain, rows.c.name, rows.c.key)


@dataclass(frozen=True, slots=True)
class ProviderFigures:
    provider_id: int
    name: str
    figures: BillingFigures


@dataclass(frozen=True, slots=True)
class MonthFigures:
    month: Month
    figures: BillingFigures


@dataclass(frozen=True, slots=True)
class BillingReportData:
    period: Period
    total: BillingFigures
    by_provider: list[ProviderFigures]
    by_month: list[MonthFigures]

    @classmethod
    def of(cls, period: Period, rows: Sequence[Any]) -> BillingReportData:
        """The report from the rows of `billing_report_query`."""
        months = period.months()
        total = next(BillingFigures.of(r) for r in rows if r.grain == GRAIN_TOTAL)
        return cls(
            period=period,
            total=total,
            by_provider=[
                ProviderFigures(r.key, r.name, BillingFigures.of(r))
                for r in rows
                if r.grain == GRAIN_PROVIDER
            ],
            by_month=[
                MonthFigures(months[r.key], BillingFigures.of(r))
                for r in rows
                if r.grain == GRAIN_MONTH
            ],
        )
