"""Invoice alerts: the inbox entries and their connection."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import Alert as AlertRow
from schema.context import Info
from schema.enums import AlertKind
from schema.errors import PublicError
from schema.invoices import InvoiceType
from schema.node import encode_id
from schema.pagination import Page, PageInfo
from schema.shared_events import SharedEvent


@strawberry.type(description="Something happened to an invoice in your view")
class InvoiceAlert:
    row: strawberry.Private[AlertRow]
    read_at_value: strawberry.Private[datetime | None]
    # A subscription event shared by the subscribers of one view (resolvers/alert_feed.py).
    shared: strawberry.Private[SharedEvent | None] = None

    @strawberry.field(description="Opaque; pass it as `after` to resume, `upTo` to mark read")
    def id(self) -> strawberry.ID:
        return encode_id("InvoiceAlert", self.row.id)

    @strawberry.field
    def kind(self) -> AlertKind:
        return self.row.kind

    @strawberry.field
    async def invoice(self, info: Info) -> InvoiceType:
        row = await info.context.loaders.invoices.load(self.row.invoice_id)
        if row is None:
            # The viewer lost sight of the invoice between reading the alert and now.
            raise PublicError("This invoice is no longer in your view", "NOT_FOUND")
        return InvoiceType(row=row)

    @strawberry.field
    def occurred_at(self) -> datetime:
        return self.row.occurred_at

    @strawberry.field(description="When you marked it read; null while unread")
    def read_at(self) -> datetime | None:
        return self.read_at_value


@strawberry.type
class InvoiceAlertEdge:
    cursor: str
    node: InvoiceAlert


@strawberry.type(description="Your inbox, newest first")
class InvoiceAlertConnection:
    edges: list[InvoiceAlertEdge]
    page_info: PageInfo
    total_count: int
    unread_count: int = strawberry.field(description="Unread alerts in your whole inbox")

    @classmethod
    def of(cls, page: Page[InvoiceAlert], unread_count: int) -> InvoiceAlertConnection:
        edges = [InvoiceAlertEdge(cursor=c, node=n) for c, n in page.items]
        return cls(
            edges=edges,
            page_info=PageInfo.of(page),
            total_count=page.total_count,
            unread_count=unread_count,
        )


def alert_not_found() -> PublicError:
    return PublicError("No alert with this id in your practice", "NOT_FOUND")
