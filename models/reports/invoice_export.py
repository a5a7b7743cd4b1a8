"""The invoice export: one row per invoice sent in a period, streamed as CSV by
`resolvers/exports.py`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import aliased

from models.invoice import Invoice, Payment, Refund, amount_due
from models.reports.aggregates import Rows, total_of
from models.reports.periods import Period
from models.scope import Viewer, visible_invoices
from models.user import User


def _sum_per_invoice(amount: Any, invoice_id: Any) -> Any:
    """SUM of `amount` over the rows of the current invoice: an index lookup per invoice, so
    the export streams its first rows at once, whatever the planner knows."""
    return select(total_of(amount)).where(invoice_id == Invoice.id).correlate(Invoice)


def invoice_export_query(viewer: Viewer, period: Period) -> Rows:
    """The viewer's invoices sent in the period, oldest first, one row each with the names of
    its client and provider and its amounts (paid and refunded summed from its rows, due)."""
    paid = _sum_per_invoice(Payment.amount, Payment.invoice_id).scalar_subquery()
    refunded = _sum_per_invoice(Refund.amount, Refund.invoice_id).scalar_subquery()
    client = aliased(User, name="client")
    provider = aliased(User, name="provider")
    return (
        select(
            Invoice.id,
            Invoice.number,
            Invoice.sent_at,
            Invoice.due_date,
            Invoice.status,
            Invoice.description,
            Invoice.currency,
            Invoice.subtotal_amount,
            Invoice.tax_amount,
            Invoice.total_amount,
            paid.label("paid"),
            refunded.label("refunded"),
            amount_due(paid).label("due"),
            client.name.label("client_name"),
            client.email.label("client_email"),
            provider.name.label("provider_name"),
        )
        .join(client, client.id == Invoice.client_id)
        .join(provider, provider.id == Invoice.provider_id)
        .where(visible_invoices(viewer), period.contains(Invoice.sent_at))
        .order_by(Invoice.sent_at, Invoice.id)
    )
