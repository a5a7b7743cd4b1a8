"""Clients of the practice, as the viewer sees them."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import strawberry

from models import User as UserRow
from schema.context import Info, viewer_of
from schema.invoices import InvoiceConnection, InvoiceFilter
from schema.money import MoneyType
from schema.node import Node
from schema.outcome import guarded
from schema.pagination import Page, PageInfo, page_size
from schema.users import UserType

if TYPE_CHECKING:
    from schema.reports import ClientStatement


@strawberry.type
class Client(Node):
    row: strawberry.Private[UserRow]

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def email(self) -> str:
        return self.row.email

    @strawberry.field(description="Providers this client is assigned to")
    async def providers(self, info: Info) -> list[UserType]:
        rows = await info.context.loaders.providers_of_client.load(self.row.id)
        return [UserType(row=r) for r in rows]

    @strawberry.field(description="This client's invoices in the viewer's view, newest first")
    async def invoices(
        self,
        info: Info,
        filter: InvoiceFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> InvoiceConnection:
        viewer_of(info)
        query = (filter or InvoiceFilter()).to_query()
        limit = page_size(first, info.context.settings.max_page_size)
        page = await info.context.loaders.invoice_pages.load((self.row.id, query, limit, after))
        return InvoiceConnection.of(page)

    @strawberry.field(description="What the client still owes on UNPAID invoices")
    async def balance(self, info: Info) -> MoneyType:
        viewer = viewer_of(info)
        amount = await info.context.loaders.balances.load(self.row.id)
        practice = await info.context.loaders.practices.load(viewer.practice_id)
        assert practice is not None
        return MoneyType.of(amount, practice.currency)

    @strawberry.field(
        description="The client's balance and their invoices, payments and refunds over "
        "[from, to] (days in the practice's time zone)",
        extensions=guarded(),
    )
    async def statement(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
    ) -> Annotated[ClientStatement, strawberry.lazy("schema.reports")]:
        from schema.reports.statement import load_statement  # which imports this module

        return await load_statement(info, self.row, from_, to)


@strawberry.type
class ClientEdge:
    cursor: str
    node: Client


@strawberry.type
class ClientConnection:
    edges: list[ClientEdge]
    page_info: PageInfo
    total_count: int

    @classmethod
    def of(cls, page: Page[UserRow]) -> ClientConnection:
        edges = [ClientEdge(cursor=c, node=Client(row=r)) for c, r in page.items]
        return cls(
            edges=edges,
            page_info=PageInfo.of(page),
            total_count=page.total_count,
        )
