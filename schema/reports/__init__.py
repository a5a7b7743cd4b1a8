"""Reports: the billing report, the aging report and the client statement.

These types only present figures that the database computed (see `models.reports`).

    billing.py    BillingReport, its figures per provider and per month
    aging.py      AgingReport, its buckets and per-client balances
    statement.py  ClientStatement (Client.statement, loaded lazily by schema/clients.py)

Re-exported here: the root types, for resolvers/root.py, the resolvers and the lazy reference
`strawberry.lazy("schema.reports")`."""

from schema.reports.aging import AgingReport
from schema.reports.billing import BillingReport
from schema.reports.statement import ClientStatement

__all__ = ["AgingReport", "BillingReport", "ClientStatement"]
