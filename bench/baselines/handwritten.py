"""The hand-written baseline: a Starlette endpoint that answers the documents of
bench/baselines/documents.py with the scoped SQL CareBill needs for them, in a handful of
statements on one connection, and builds the same JSON by hand (no GraphQL library).

The page: the session, the count, the page, its payments, refunds and events, then every person
they name — 7 statements, the scope of models/scope.py in each, as CareBill's loaders have it.
One invoice: the session, the invoice, its payments, refunds and events, the people — 6.

    CAREBILL_DATABASE_URL=... CAREBILL_SECRET_KEY=... \\
        python -m uvicorn bench.baselines.handwritten:create_app --factory --port 18101

The document is recognised by its text (the bench sends exactly these); anything else is a 400.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.crypto import Vault
from adapters.database import Database
from bench.baselines.auth import bearer, session_of, viewer_of
from bench.baselines.documents import ONE, PAGE, WARM
from models import Invoice, InvoiceEvent, Membership, Payment, Refund, User
from models.enums import Role
from models.invoice import Amounts, format_invoice_number
from models.money import Money
from models.scope import Viewer, visible_client, visible_invoices
from schema.node import decode_id, encode_id
from schema.pagination import encode_cursor

MAX_PAGE_SIZE = 100  # CareBill's default `max_page_size`

INVOICE_COLUMNS = (
    Invoice.id,
    Invoice.number,
    Invoice.status,
    Invoice.sent_at,
    Invoice.due_date,
    Invoice.currency,
    Invoice.total_amount,
    Invoice.client_id,
    Invoice.provider_id,
)
PAYMENT_COLUMNS = (
    Payment.id,
    Payment.invoice_id,
    Payment.amount,
    Payment.method,
    Payment.reference,
    Payment.processor_reference,
    Payment.received_at,
    Payment.recorded_by_id,
)
REFUND_COLUMNS = (
    Refund.id,
    Refund.invoice_id,
    Refund.amount,
    Refund.reason,
    Refund.created_at,
    Refund.created_by_id,
)
EVENT_COLUMNS = (
    InvoiceEvent.id,
    InvoiceEvent.invoice_id,
    InvoiceEvent.action,
    InvoiceEvent.at,
    InvoiceEvent.amount,
    InvoiceEvent.note,
    InvoiceEvent.actor_id,
)


def _visible_people(viewer: Viewer) -> ColumnElement[bool]:
    """Whom the viewer may name (schema/loaders.py `PeopleByIdLoader`): themselves, the staff,
    the clients in their view, anyone on a visible invoice."""
    staff = select(Membership.user_id).where(
        Membership.practice_id == viewer.practice_id,
        Membership.role.in_((Role.ADMIN, Role.PROVIDER)),
    )
    on_invoice = exists().where(
        or_(Invoice.client_id == User.id, Invoice.provider_id == User.id),
        visible_invoices(viewer),
    )
    return or_(
        User.id == viewer.user_id,
        User.id.in_(staff),
        visible_client(viewer, User.id),
        on_invoice,
    )


class Rows:
    """The payments, refunds and events of some invoices and the people they name, read in
    four statements."""

    def __init__(self) -> None:
        self.payments: dict[int, list[Any]] = defaultdict(list)
        self.refunds: dict[int, list[Any]] = defaultdict(list)
        self.events: dict[int, list[Any]] = defaultdict(list)
        self.people: dict[int, Any] = {}

    async def load(self, conn: AsyncConnection, viewer: Viewer, invoices: Sequence[Any]) -> None:
        ids = [r.id for r in invoices]
        if not ids:
            return
        visible = visible_invoices(viewer)
        named: set[int] = set()
        for target, columns, model in (
            (self.payments, PAYMENT_COLUMNS, Payment),
            (self.refunds, REFUND_COLUMNS, Refund),
            (self.events, EVENT_COLUMNS, InvoiceEvent),
        ):
            statement = (
                select(*columns)
                .join(Invoice, Invoice.id == model.invoice_id)
                .where(model.invoice_id.in_(ids), visible)
                .order_by(model.id)
            )
            for row in await conn.execute(statement):
                target[row.invoice_id].append(row)
                named.add(row[-1])  # recorded_by_id, created_by_id, actor_id
        named.update(r.client_id for r in invoices)
        named.update(r.provider_id for r in invoices)
        named.discard(None)
        people = select(User.id, User.name, User.email).where(
            User.id.in_(sorted(named)), _visible_people(viewer)
        )
        self.people = {row.id: row for row in await conn.execute(people)}

    def person(self, user_id: int | None, type_name: str = "User", *, email: bool = False) -> Any:
        row = self.people.get(user_id) if user_id is not None else None
        if row is None:
            return None
        found = {"id": encode_id(type_name, row.id), "name": row.name}
        if email:
            found["email"] = row.email
        return found

    def invoice(self, r: Any) -> dict[str, Any]:
        payments, refunds = self.payments[r.id], self.refunds[r.id]
        amounts = Amounts(
            total=r.total_amount,
            paid=sum(p.amount for p in payments),
            refunded=sum(f.amount for f in refunds),
            status=r.status,
        )
        return {
            "id": encode_id("Invoice", r.id),
            "number": format_invoice_number(r.number),
            "status": r.status.value,
            "sentAt": r.sent_at.isoformat(),
            "dueDate": None if r.due_date is None else r.due_date.isoformat(),
            "currency": r.currency,
            "total": {
                "amount": r.total_amount,
                "currency": r.currency,
                "formatted": Money(r.total_amount, r.currency).formatted(),
            },
            "amountDue": {"amount": amounts.due},
            "client": self.person(r.client_id, "Client", email=True),
            "provider": self.person(r.provider_id, email=True),
            "payments": [
                {
                    "id": encode_id("Payment", p.id),
                    "amount": {"amount": p.amount},
                    "method": p.method.value,
                    "reference": p.reference or p.processor_reference,
                    "receivedAt": p.received_at.isoformat(),
                    "recordedBy": self.person(p.recorded_by_id),
                }
                for p in payments
            ],
            "refunds": [
                {
                    "id": encode_id("Refund", f.id),
                    "amount": {"amount": f.amount},
                    "reason": f.reason,
                    "createdAt": f.created_at.isoformat(),
                    "createdBy": self.person(f.created_by_id),
                }
                for f in refunds
            ],
            "history": [
                {
                    "id": encode_id("InvoiceEvent", e.id),
                    "action": e.action.value,
                    "at": e.at.isoformat(),
                    "amount": None if e.amount is None else {"amount": e.amount},
                    "note": e.note,
                    "actor": self.person(e.actor_id),
                }
                for e in self.events[r.id]
            ],
        }


async def page(conn: AsyncConnection, viewer: Viewer, first: int) -> dict[str, Any]:
    visible = visible_invoices(viewer)
    total = (await conn.execute(select(func.count()).where(visible))).scalar_one()
    statement = (
        select(*INVOICE_COLUMNS)
        .where(visible)
        .order_by(Invoice.sent_at.desc(), Invoice.id.desc())
        .limit(first + 1)
    )
    rows = (await conn.execute(statement)).all()
    shown = rows[:first]
    related = Rows()
    await related.load(conn, viewer, shown)
    cursors = [encode_cursor([r.sent_at.isoformat(), r.id]) for r in shown]
    return {
        "invoices": {
            "totalCount": int(total),
            "pageInfo": {
                "hasNextPage": len(rows) > first,
                "endCursor": cursors[-1] if cursors else None,
            },
            "edges": [
                {"cursor": c, "node": related.invoice(r)}
                for c, r in zip(cursors, shown, strict=True)
            ],
        }
    }


async def one(conn: AsyncConnection, viewer: Viewer, global_id: str) -> dict[str, Any]:
    pk = decode_id(global_id, "Invoice")
    row = None
    if pk is not None:
        statement = select(*INVOICE_COLUMNS).where(Invoice.id == pk, visible_invoices(viewer))
        row = (await conn.execute(statement)).first()
    if row is None:
        return {"invoice": None}
    related = Rows()
    await related.load(conn, viewer, [row])
    return {"invoice": related.invoice(row)}


def _json(document: dict[str, Any], status: int = 200) -> Response:
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json")


def _error(message: str, code: str) -> Response:
    return _json({"data": None, "errors": [{"message": message, "extensions": {"code": code}}]})


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def graphql(request: Request) -> Response:
    try:
        body = await request.json()
        query, variables = body["query"], body.get("variables") or {}
    except (ValueError, KeyError, TypeError):
        return Response("a JSON body with a query", status_code=400)
    if query == WARM:
        return _json({"data": {"__typename": "Query"}})
    if query not in (PAGE, ONE):
        return Response("this endpoint answers only bench/baselines/documents.py", 400)
    db: Database = request.app.state.db
    vault: Vault = request.app.state.vault
    token = bearer(request.headers.get("authorization"))
    async with db.engine.connect() as conn:
        viewer = (
            viewer_of((await conn.execute(session_of(vault, token))).first()) if token else None
        )
        if viewer is None:
            return _error("Sign in first", "UNAUTHENTICATED")
        if query == ONE:
            return _json({"data": await one(conn, viewer, str(variables.get("id")))})
        first = _int(variables.get("first"))
        if first is None or not 0 <= first <= MAX_PAGE_SIZE:
            return _error(f"`first` must be between 0 and {MAX_PAGE_SIZE}", "BAD_USER_INPUT")
        return _json({"data": await page(conn, viewer, first)})


def build(database_url: str, secret_key: str) -> Starlette:
    """The endpoint on `database_url` (its pool as CareBill's: adapters/database.py)."""
    db = Database(database_url)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await db.dispose()

    app = Starlette(routes=[Route("/graphql", graphql, methods=["POST"])], lifespan=lifespan)
    app.state.db = db
    app.state.vault = Vault(secret_key)
    return app


def create_app() -> Starlette:
    """For `uvicorn --factory`: the database and key of CAREBILL_DATABASE_URL and
    CAREBILL_SECRET_KEY."""
    return build(os.environ["CAREBILL_DATABASE_URL"], os.environ["CAREBILL_SECRET_KEY"])
