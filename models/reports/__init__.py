"""Reports as SQL aggregates: billing totals, aging of unpaid balances, client statements and
the invoice export.

Every figure is a SUM/COUNT computed by the database; Python only builds the statements and
reads their (few) rows. Dates are calendar days in the practice's time zone, turned into UTC
bounds in Python (`periods.py`), so the same SQL runs on SQLite and PostgreSQL.

    periods.py         `Period`/`Month`: days and months of a report as UTC instants
    aggregates.py      the SQL building blocks: never-NULL sums, figures per key in one GROUP BY
    billing.py         the billing report (and the definitions of its figures)
    aging.py           the aging report of unpaid balances
    statement.py       a client's statement
    invoice_export.py  the invoice export's rows

Re-exported here: what the resolvers and the schema use."""

from models.reports.aggregates import Rows
from models.reports.aging import (
    AGING_BUCKETS,
    AgingAmount,
    AgingReportData,
    ClientAgingData,
    aging_query,
    check_as_of,
)
from models.reports.billing import (
    GRAIN_MONTH,
    GRAIN_PROVIDER,
    BillingFigures,
    BillingReportData,
    billing_report_query,
)
from models.reports.invoice_export import invoice_export_query
from models.reports.periods import Period, today_in
from models.reports.statement import (
    StatementFigures,
    statement_figures_query,
    statement_invoices_query,
    statement_payments_query,
    statement_refunds_query,
)

__all__ = [
    "AGING_BUCKETS",
    "GRAIN_MONTH",
    "GRAIN_PROVIDER",
    "AgingAmount",
    "AgingReportData",
    "BillingFigures",
    "BillingReportData",
    "ClientAgingData",
    "Period",
    "Rows",
    "StatementFigures",
    "aging_query",
    "billing_report_query",
    "check_as_of",
    "invoice_export_query",
    "statement_figures_query",
    "statement_invoices_query",
    "statement_payments_query",
    "statement_refunds_query",
    "today_in",
]
