"""The root query fields."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import strawberry
from sqlalchemy import select

from models import Invoice as InvoiceRow
from models import Payment as PaymentRow
from models import Refund as RefundRow
from models.permissions import READ_PAYMENT_PROCESSORS
from models.scope import visible_invoices
from schema.clients import Client, ClientConnection
from schema.context import Info, viewer_of
from schema.invoices import InvoiceConnection, InvoiceFilter, InvoiceType, PaymentType, RefundType
from schema.node import Node, decode_any, decode_id
from schema.practice import PaymentProcessorType, PracticeType
from schema.preload import preload_invoices, selected_names, top_names
from schema.reads import InvoiceQuery, list_clients, list_invoices
from schema.users import UserType, ViewerType


async def viewer(info: Info) -> ViewerType | None:
    """Who is logged in; null without a valid token."""
    current = info.context.viewer
    if current is None:
        return None
    user = await info.context.loaders.people.load(current.user_id)
    if user is None:
        return None
    roles = await info.context.loaders.roles.load(current.user_id)
    return ViewerType(user_row=user, role=current.role, roles=roles)


async def practice(info: Info) -> PracticeType | None:
    current = viewer_of(info)
    row = await info.context.loaders.practices.load(current.practice_id)
    return None if row is None else PracticeType(row=row)


async def clients(
    info: Info, first: int | None = None, after: str | None = None, search: str | None = None
) -> ClientConnection:
    count = "totalCount" in top_names(info)
    page = await list_clients(info.context, viewer_of(info), search, first, after, count=count)
    names = selected_names(info)
    ids = [row.id for _, row in page.items]
    loaders = info.context.loaders
    loading: list[Awaitable[Any]] = []
    if "balance" in names and ids:
        loading += [
            loaders.balances.load_many(ids),
            loaders.practices.load(viewer_of(info).practice_id),
        ]
    if "providers" in names and ids:
        loading.append(loaders.providers_of_client.load_many(ids))
    await asyncio.gather(*loading)
    return ClientConnection.of(page)


async def client(info: Info, id: strawberry.ID) -> Client | None:
    viewer_of(info)
    pk = decode_id(id, "Client")
    if pk is None:
        return None
    row = await info.context.loaders.clients.load(pk)
    return None if row is None else Client(row=row)


async def invoices(
    info: Info,
    filter: InvoiceFilter | None = None,
    first: int | None = None,
    after: str | None = None,
) -> InvoiceConnection:
    query = filter.to_query() if filter is not None else InvoiceQuery()
    count = "totalCount" in top_names(info)
    page = await list_invoices(info.context, viewer_of(info), query, first, after, count=count)
    await preload_invoices(info, [row for _, row in page.items], selected_names(info))
    return InvoiceConnection.of(page)


async def invoice(info: Info, id: strawberry.ID) -> InvoiceType | None:
    viewer_of(info)
    pk = decode_id(id, "Invoice")
    if pk is None:
        return None
    row = await info.context.loaders.invoices.load(pk)
    if row is None:
        return None
    await preload_invoices(info, [row], selected_names(info))
    return InvoiceType(row=row)


async def node(info: Info, id: strawberry.ID) -> Node | None:
    """Any object by its global id, within the viewer's view."""
    current = viewer_of(info)
    decoded = decode_any(id)
    if decoded is None:
        return None
    type_name, pk = decoded
    loaders = info.context.loaders
    if type_name == "Invoice":
        return await invoice(info, id)
    if type_name == "Client":
        return await client(info, id)
    if type_name == "Practice":
        return await practice(info) if pk == current.practice_id else None
    if type_name == "User":
        user = await loaders.people.load(pk)
        return None if user is None else UserType(row=user)
    if type_name == "PaymentProcessor" and READ_PAYMENT_PROCESSORS.allows(current):
        processors = await loaders.processors.load(current.practice_id)
        return next((PaymentProcessorType(row=p) for p in processors if p.id == pk), None)
    if type_name in ("Payment", "Refund"):
        return await _payment_or_refund(info, type_name, pk)
    return None


async def _payment_or_refund(info: Info, type_name: str, pk: int) -> Node | None:
    """A payment or refund of an invoice within the viewer's view."""
    model: type[PaymentRow] | type[RefundRow] = PaymentRow if type_name == "Payment" else RefundRow
    statement = (
        select(model, InvoiceRow.currency)
        .join(InvoiceRow, InvoiceRow.id == model.invoice_id)
        .where(model.id == pk, visible_invoices(viewer_of(info)))
    )
    async with info.context.db.reader() as session:
        found = (await session.execute(statement)).first()
    if found is None:
        return None
    row, currency = found
    if isinstance(row, PaymentRow):
        return PaymentType(row=row, currency=currency)
    assert isinstance(row, RefundRow)
    return RefundType(row=row, currency=currency)
