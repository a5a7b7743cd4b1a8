"""Clients of the practice, as the viewer sees them."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import strawberry

from schema.context import Info, viewer_of
from schema.invoices import InvoiceConnection, InvoiceFilter
from schema.loaders import MISSING
from schema.money import MoneyType
from schema.node import Node, encode_id
from schema.outcome import guarded
from schema.pagination import Page, PageInfo, page_size
from schema.preload import later
from schema.rows import PersonRow
from schema.users import Person, UserType

if TYPE_CHECKING:
    from schema.reports import ClientStatement


@strawberry.type
class Client(Node):
    row: strawberry.Private[Person]

    # Plain values, set from the row: a field without a resolver costs a fraction of one with.
    id: strawberry.ID = strawberry.field(default=strawberry.ID(""), description="Global, opaque id")
    name: str = ""
    email: str = ""

    def __post_init__(self) -> None:
        self.id = encode_id("Client", self.row.id)
        self.name = self.row.name
        self.email = self.row.email

    @strawberry.field(description="Providers this client is assigned to")
    def providers(self, info: Info) -> list[UserType]:
        rows = info.context.loaders.providers_of_client.known(self.row.id)
        if rows is MISSING:
            return later(self._load_providers(info))
        return [UserType(row=r) for r in rows]

    async def _load_providers(self, info: Info) -> list[UserType]:
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
    def balance(self, info: Info) -> MoneyType:
        viewer = viewer_of(info)
        loaders = info.context.loaders
        amount = loaders.balances.known(self.row.id)
        practice = loaders.practices.known(viewer.practice_id)
        if amount is MISSING or practice is MISSING:
            return later(self._load_balance(info))
        assert practice is not None
        return MoneyType.of(amount, practice.currency)

    async def _load_balance(self, info: Info) -> MoneyType:
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
    def of(cls, page: Page[PersonRow]) -> ClientConnection:
        edges = [ClientEdge(cursor=c, node=Client(row=r)) for c, r in page.items]
        return cls(
            edges=edges,
            page_info=PageInfo.of(page),
            total_count=page.total_count,
        )
