"""The naive baseline: what a first try at the same API looks like — a minimal strawberry schema
for the documents of bench/baselines/documents.py on the same models, where every resolver runs
its own query: one per row and nested field (each invoice's client, provider, payments, refunds,
history and amount due; each payment's, refund's and event's person), no dataloaders, no
batching. The list and the single invoice are scoped to the viewer as in CareBill
(models/scope.py); the nested rows are read by their foreign keys.

A request has one session (CareBill's database adapter, adapters/database.py: the same pool),
opened before the request and closed after it; an AsyncSession is not safe for concurrent use,
so the resolvers that strawberry runs concurrently take turns on it.

    CAREBILL_DATABASE_URL=... CAREBILL_SECRET_KEY=... \\
        python -m uvicorn bench.baselines.naive:create_app --factory --port 18102
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeAlias

import strawberry
from sqlalchemy import Executable, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from adapters.crypto import Vault
from adapters.database import Database
from bench.baselines.auth import bearer, session_of, viewer_of
from models import Invoice, InvoiceEvent, Payment, Refund, User
from models.invoice import Amounts, format_invoice_number
from models.money import Money
from models.scope import Viewer, visible_invoices
from schema.enums import InvoiceAction, InvoiceStatus, PaymentMethodKind
from schema.node import decode_id, encode_id
from schema.pagination import encode_cursor

MAX_PAGE_SIZE = 100


@dataclass
class RequestSession:
    """The session of one request, and whose turn it is."""

    session: AsyncSession
    turn: asyncio.Lock

    async def rows(self, statement: Executable) -> Any:
        async with self.turn:
            return (await self.session.execute(statement)).scalars()


_CURRENT: ContextVar[RequestSession] = ContextVar("naive_session")


@dataclass
class NaiveContext:
    db: RequestSession
    viewer: Viewer | None


Info: TypeAlias = strawberry.Info[NaiveContext, None]


async def scalar(info: Info, statement: Executable) -> Any:
    """The first column of the first row."""
    return (await info.context.db.rows(statement)).first()


async def scalars(info: Info, statement: Executable) -> list[Any]:
    return list(await info.context.db.rows(statement))


async def user(info: Info, user_id: int | None) -> User | None:
    if user_id is None:
        return None
    found: User | None = await scalar(info, select(User).where(User.id == user_id))
    return found


def viewer(info: Info) -> Viewer:
    if info.context.viewer is None:
        raise PermissionError("Sign in first")
    return info.context.viewer


@strawberry.type(name="Money")
class MoneyType:
    amount: int
    currency: str
    formatted: str


def money(amount: int, currency: str) -> MoneyType:
    return MoneyType(
        amount=amount, currency=currency, formatted=Money(amount, currency).formatted()
    )


@strawberry.type(name="User")
class UserType:
    row: strawberry.Private[User]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return encode_id("User", self.row.id)

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def email(self) -> str:
        return self.row.email


@strawberry.type(name="Client")
class ClientType(UserType):
    @strawberry.field
    def id(self) -> strawberry.ID:
        return encode_id("Client", self.row.id)


@strawberry.type(name="Payment")
class PaymentType:
    row: strawberry.Private[Payment]
    currency: strawberry.Private[str]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return encode_id("Payment", self.row.id)

    @strawberry.field
    def amount(self) -> MoneyType:
        return money(self.row.amount, self.currency)

    @strawberry.field
    def method(self) -> PaymentMethodKind:
        return self.row.method

    @strawberry.field
    def reference(self) -> str | None:
        return self.row.reference or self.row.processor_reference

    @strawberry.field
    def received_at(self) -> datetime:
        return self.row.received_at

    @strawberry.field
    async def recorded_by(self, info: Info) -> UserType | None:
        row = await user(info, self.row.recorded_by_id)
        return None if row is None else UserType(row=row)


@strawberry.type(name="Refund")
class RefundType:
    row: strawberry.Private[Refund]
    currency: strawberry.Private[str]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return encode_id("Refund", self.row.id)

    @strawberry.field
    def amount(self) -> MoneyType:
        return money(self.row.amount, self.currency)

    @strawberry.field
    def reason(self) -> str:
        return self.row.reason

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    async def created_by(self, info: Info) -> UserType | None:
        row = await user(info, self.row.created_by_id)
        return None if row is None else UserType(row=row)


@strawberry.type(name="InvoiceEvent")
class EventType:
    row: strawberry.Private[InvoiceEvent]
    currency: strawberry.Private[str]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return encode_id("InvoiceEvent", self.row.id)

    @strawberry.field
    def action(self) -> InvoiceAction:
        return self.row.action

    @strawberry.field
    def at(self) -> datetime:
        return self.row.at

    @strawberry.field
    def amount(self) -> MoneyType | None:
        return None if self.row.amount is None else money(self.row.amount, self.currency)

    @strawberry.field
    def note(self) -> str | None:
        return self.row.note

    @strawberry.field
    async def actor(self, info: Info) -> UserType | None:
        row = await user(info, self.row.actor_id)
        return None if row is None else UserType(row=row)


@strawberry.type(name="Invoice")
class InvoiceType:
    row: strawberry.Private[Invoice]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return encode_id("Invoice", self.row.id)

    @strawberry.field
    def number(self) -> str:
        return format_invoice_number(self.row.number)

    @strawberry.field
    def status(self) -> InvoiceStatus:
        return self.row.status

    @strawberry.field
    def sent_at(self) -> datetime:
        return self.row.sent_at

    @strawberry.field
    def due_date(self) -> date | None:
        return self.row.due_date

    @strawberry.field
    def currency(self) -> str:
        return self.row.currency

    @strawberry.field
    def total(self) -> MoneyType:
        return money(self.row.total_amount, self.row.currency)

    @strawberry.field
    async def amount_due(self, info: Info) -> MoneyType:
        paid_sum = select(func.coalesce(func.sum(Payment.amount), 0))
        paid = await scalar(info, paid_sum.where(Payment.invoice_id == self.row.id))
        amounts = Amounts(self.row.total_amount, int(paid), 0, self.row.status)
        return money(amounts.due, self.row.currency)

    @strawberry.field
    async def client(self, info: Info) -> ClientType:
        row = await user(info, self.row.client_id)
        assert row is not None
        return ClientType(row=row)

    @strawberry.field
    async def provider(self, info: Info) -> UserType:
        row = await user(info, self.row.provider_id)
        assert row is not None
        return UserType(row=row)

    @strawberry.field
    async def payments(self, info: Info) -> list[PaymentType]:
        statement = select(Payment).where(Payment.invoice_id == self.row.id).order_by(Payment.id)
        rows = await scalars(info, statement)
        return [PaymentType(row=r, currency=self.row.currency) for r in rows]

    @strawberry.field
    async def refunds(self, info: Info) -> list[RefundType]:
        statement = select(Refund).where(Refund.invoice_id == self.row.id).order_by(Refund.id)
        rows = await scalars(info, statement)
        return [RefundType(row=r, currency=self.row.currency) for r in rows]

    @strawberry.field
    async def history(self, info: Info) -> list[EventType]:
        statement = (
            select(InvoiceEvent)
            .where(InvoiceEvent.invoice_id == self.row.id)
            .order_by(InvoiceEvent.id)
        )
        rows = await scalars(info, statement)
        return [EventType(row=r, currency=self.row.currency) for r in rows]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class InvoiceEdge:
    cursor: str
    node: InvoiceType


@strawberry.type
class InvoiceConnection:
    edges: list[InvoiceEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class Query:
    @strawberry.field
    async def invoices(self, info: Info, first: int = 20) -> InvoiceConnection:
        if not 0 <= first <= MAX_PAGE_SIZE:
            raise ValueError(f"`first` must be between 0 and {MAX_PAGE_SIZE}")
        visible = visible_invoices(viewer(info))
        total = await scalar(info, select(func.count()).where(visible))
        page = (
            select(Invoice)
            .where(visible)
            .order_by(Invoice.sent_at.desc(), Invoice.id.desc())
            .limit(first + 1)
        )
        rows = await scalars(info, page)
        edges = [
            InvoiceEdge(
                cursor=encode_cursor([r.sent_at.isoformat(), r.id]), node=InvoiceType(row=r)
            )
            for r in rows[:first]
        ]
        return InvoiceConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=len(rows) > first, end_cursor=edges[-1].cursor if edges else None
            ),
            total_count=int(total),
        )

    @strawberry.field
    async def invoice(self, info: Info, id: strawberry.ID) -> InvoiceType | None:
        pk = decode_id(id, "Invoice")
        if pk is None:
            return None
        statement = select(Invoice).where(Invoice.id == pk, visible_invoices(viewer(info)))
        row: Invoice | None = await scalar(info, statement)
        return None if row is None else InvoiceType(row=row)


class NaiveGraphQL(GraphQL[NaiveContext, None]):
    def __init__(self, db: Database, vault: Vault) -> None:
        super().__init__(strawberry.Schema(query=Query), graphql_ide=None)
        self.db = db
        self.vault = vault

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request, with a session of its own from start to end."""
        async with self.db.reader() as session:
            token = _CURRENT.set(RequestSession(session, asyncio.Lock()))
            try:
                await super().__call__(scope, receive, send)
            finally:
                _CURRENT.reset(token)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> NaiveContext:
        db = _CURRENT.get()
        token = bearer(request.headers.get("authorization"))
        found = None
        if token:
            found = viewer_of((await db.session.execute(session_of(self.vault, token))).first())
        return NaiveContext(db=db, viewer=found)


def build(database_url: str, secret_key: str) -> Starlette:
    db = Database(database_url)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await db.dispose()

    view = NaiveGraphQL(db, Vault(secret_key))
    app = Starlette(routes=[Route("/graphql", view, methods=["POST"])], lifespan=lifespan)
    app.state.db = db
    return app


def create_app() -> Starlette:
    """For `uvicorn --factory`: CAREBILL_DATABASE_URL and CAREBILL_SECRET_KEY."""
    return build(os.environ["CAREBILL_DATABASE_URL"], os.environ["CAREBILL_SECRET_KEY"])
