"""A client's statement over a period: their invoices, payments and refunds of the period, and
the figures summing them up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select

from models.enums import InvoiceStatus
from models.invoice import Invoice, Payment, Refund, amount_due, paid_on_invoice
from models.reports.aggregates import Rows, total_of
from models.reports.periods import Period
from models.scope import Viewer, visible_invoices


def _clients_invoices(viewer: Viewer, client_id: int) -> ColumnElement[bool]:
    return and_(visible_invoices(viewer), Invoice.client_id == client_id)


def statement_invoices_query(viewer: Viewer, client_id: int, period: Period) -> Rows:
    """The client's invoices sent in the period (VOID ones too), oldest first."""
    return (
        select(Invoice)
        .where(_clients_invoices(viewer, client_id), period.contains(Invoice.sent_at))
        .order_by(Invoice.sent_at, Invoice.id)
    )


def statement_payments_query(viewer: Viewer, client_id: int, period: Period) -> Rows:
    """(Payment, Invoice) for payments received in the period on any of the client's
    invoices, oldest first."""
    return (
        select(Payment, Invoice)
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(_clients_invoices(viewer, client_id), period.contains(Payment.received_at))
        .order_by(Payment.received_at, Payment.id)
    )


def statement_refunds_query(viewer: Viewer, client_id: int, period: Period) -> Rows:
    """(Refund, Invoice) for refunds made in the period on the client's invoices."""
    return (
        select(Refund, Invoice)
        .join(Invoice, Invoice.id == Refund.invoice_id)
        .where(_clients_invoices(viewer, client_id), period.contains(Refund.created_at))
        .order_by(Refund.created_at, Refund.id)
    )


@dataclass(frozen=True, slots=True)
class StatementFigures:
    balance: int
    invoiced_count: int
    invoiced: int
    outstanding: int
    paid: int
    refunded: int

    @classmethod
    def of(cls, row: Any) -> StatementFigures:
        return cls(**{name: int(getattr(row, name)) for name in cls.__slots__})


def statement_figures_query(viewer: Viewer, client_id: int, period: Period) -> Rows:
    """One row of `StatementFigures`: `balance` is due now on all the client's UNPAID
    invoices; `invoiced`/`outstanding` are over the invoices sent in the period; `paid` and
    `refunded` over the payments received and refunds made in the period."""
    mine = _clients_invoices(viewer, client_id)
    in_period = period.contains(Invoice.sent_at)
    due = total_of(amount_due(paid_on_invoice()))
    unpaid = Invoice.status == InvoiceStatus.UNPAID
    not_void = Invoice.status != InvoiceStatus.VOID
    return select(
        select(due).where(mine, unpaid).scalar_subquery().label("balance"),
        select(func.count())
        .where(mine, in_period, not_void)
        .scalar_subquery()
        .label("invoiced_count"),
        select(total_of(Invoice.total_amount))
        .where(mine, in_period, not_void)
        .scalar_subquery()
        .label("invoiced"),
        select(due).where(mine, in_period, unpaid).scalar_subquery().label("outstanding"),
        select(total_of(Payment.amount))
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(mine, period.contains(Payment.received_at))
        .scalar_subquery()
        .label("paid"),
        select(total_of(Refund.amount))
        .join(Invoice, Invoice.id == Refund.invoice_id)
        .where(mine, period.contains(Refund.created_at))
        .scalar_subquery()
        .label("refunded"),
    )
