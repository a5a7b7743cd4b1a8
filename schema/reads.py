"""Read side: the scoped list queries behind `clients` and `invoices`, with cursor paging, and
the scoped, locked read of the invoice a mutation changes (`locked_invoice`)."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, contains_eager

from adapters.database import Database
from models import Invoice, Membership, Payment, Practice, Refund, User
from models.base import utcnow
from models.enums import InvoiceStatus, Role
from models.errors import not_found
from models.reminders import local_date, overdue_condition
from models.scope import Viewer, visible_client_ids, visible_invoices
from schema.errors import PublicError, bad_input
from schema.node import MAX_PK, decode_id
from schema.pagination import Page, decode_cursor, encode_cursor, page_size
from schema.rows import PERSON_COLUMNS, PersonRow

if TYPE_CHECKING:  # the context holds the loaders, which page invoices through this module
    from schema.context import Context


@dataclass(frozen=True)
class InvoiceQuery:
    statuses: tuple[InvoiceStatus, ...] = ()
    client_id: int | None = None
    provider_id: int | None = None
    sent_from: datetime | None = None
    sent_to: datetime | None = None
    overdue: bool | None = None
    # The practice's date today, needed by `overdue` (filled in by `_dated`).
    today: date | None = None


# Longest search worth running: an email address is at most 254 characters.
MAX_SEARCH_LENGTH = 254


def _bad_cursor() -> PublicError:
    return bad_input("`after` is not a cursor this API gave out")


def _cursor_id(value: object) -> int:
    # bool is an int in Python; JSON `true` is not an id. Ids are 32-bit INTEGER columns: a
    # larger number would reach the database as an out-of-range parameter.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_PK:
        raise _bad_cursor()
    return value


def _cursor_moment(value: object) -> datetime:
    """The aware `sent_at` of an invoice cursor (ours always carry the UTC offset)."""
    if not isinstance(value, str):
        raise _bad_cursor()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _bad_cursor() from None
    if moment.tzinfo is None:
        raise _bad_cursor()
    try:
        moment.astimezone(UTC)
    except OverflowError:  # an offset pushing year 1 or 9999 off the calendar
        raise _bad_cursor() from None
    return moment


def _invoice_conditions(viewer: Viewer, query: InvoiceQuery) -> list[ColumnElement[bool]]:
    conditions = [visible_invoices(viewer)]
    if query.statuses:
        conditions.append(Invoice.status.in_(query.statuses))
    if query.client_id is not None:
        conditions.append(Invoice.client_id == query.client_id)
    if query.provider_id is not None:
        conditions.append(Invoice.provider_id == query.provider_id)
    if query.sent_from is not None:
        conditions.append(Invoice.sent_at >= query.sent_from)
    if query.sent_to is not None:
        conditions.append(Invoice.sent_at <= query.sent_to)
    if query.overdue is not None and query.today is not None:
        overdue = overdue_condition(query.today)
        conditions.append(overdue if query.overdue else ~overdue)
    return conditions


async def _dated(session: AsyncSession, viewer: Viewer, query: InvoiceQuery) -> InvoiceQuery:
    """The query with the practice's date today when its `overdue` filter needs it."""
    if query.overdue is None or query.today is not None:
        return query
    time_zone = (
        await session.execute(select(Practice.time_zone).where(Practice.id == viewer.practice_id))
    ).scalar_one()
    return replace(query, today=local_date(utcnow(), time_zone))


def _after_invoice(after: str | None) -> list[ColumnElement[bool]]:
    """The condition for the invoices after cursor `after` in newest-first order."""
    if after is None:
        return []
    sent_raw, last_id = decode_cursor(after, 2)
    sent_at = _cursor_moment(sent_raw)
    last_id = _cursor_id(last_id)
    return [or_(Invoice.sent_at < sent_at, and_(Invoice.sent_at == sent_at, Invoice.id < last_id))]


def _invoice_cursor(invoice: Invoice) -> str:
    return encode_cursor([invoice.sent_at.isoformat(), invoice.id])


NEWEST_FIRST = (Invoice.sent_at.desc(), Invoice.id.desc())


async def list_invoices(
    ctx: Context,
    viewer: Viewer,
    query: InvoiceQuery,
    first: int | None,
    after: str | None,
    *,
    count: bool = True,
) -> Page[Invoice]:
    """Newest first; ties on `sent_at` broken by id so the order is stable. The total only when
    `count` (its field is selected): on the first page it comes with the page, a window count
    over the same conditions; after a cursor the page is narrower than the total, which then
    takes a statement of its own."""
    limit = page_size(first, ctx.settings.max_page_size)
    async with ctx.db.reader() as session:
        conditions = _invoice_conditions(viewer, await _dated(session, viewer, query))
        windowed = count and after is None
        columns = [Invoice, func.count().over().label("total")] if windowed else [Invoice]
        page = (
            select(*columns)
            .where(*conditions, *_after_invoice(after))
            .order_by(*NEWEST_FIRST)
            .limit(limit + 1)
        )
        found = (await session.execute(page)).all()
        total = 0
        if windowed:
            total = int(found[0].total) if found else 0
        elif count:
            total = (await session.execute(select(func.count()).where(*conditions))).scalar_one()
    rows = [row[0] for row in found]
    items = [(_invoice_cursor(r), r) for r in rows[:limit]]
    return Page(items=items, has_next_page=len(rows) > limit, total_count=int(total))


async def invoice_pages_by_client(
    db: Database,
    viewer: Viewer,
    query: InvoiceQuery,
    client_ids: Sequence[int],
    limit: int,
    after: str | None,
) -> list[Page[Invoice]]:
    """The same page of invoices for each of several clients, in two statements whatever the
    number of clients: a window function numbers each client's invoices newest first."""
    async with db.reader() as session:
        query = await _dated(session, viewer, query)
        conditions = [*_invoice_conditions(viewer, query), Invoice.client_id.in_(client_ids)]
        rank = func.row_number().over(partition_by=Invoice.client_id, order_by=NEWEST_FIRST)
        ranked = (
            select(Invoice.id.label("id"), rank.label("rank"))
            .where(*conditions, *_after_invoice(after))
            .subquery()
        )
        page = (
            select(Invoice)
            .join(ranked, ranked.c.id == Invoice.id)
            .where(ranked.c.rank <= limit + 1)
            .order_by(*NEWEST_FIRST)
        )
        totals = (
            select(Invoice.client_id, func.count()).where(*conditions).group_by(Invoice.client_id)
        )
        counts = {client: int(n) for client, n in (await session.execute(totals)).all()}
        rows = list((await session.execute(page)).scalars())
    by_client: dict[int, list[Invoice]] = defaultdict(list)
    for row in rows:
        by_client[row.client_id].append(row)
    return [
        Page(
            items=[(_invoice_cursor(r), r) for r in by_client[client][:limit]],
            has_next_page=len(by_client[client]) > limit,
            total_count=counts.get(client, 0),
        )
        for client in client_ids
    ]


async def list_clients(
    ctx: Context,
    viewer: Viewer,
    search: str | None,
    first: int | None,
    after: str | None,
    *,
    count: bool = True,
) -> Page[PersonRow]:
    """Clients in the viewer's view, by name then id; `search` matches name or email. The
    total only when `count` (its field is selected)."""
    limit = page_size(first, ctx.settings.max_page_size)
    conditions: list[ColumnElement[bool]] = [visible_client_ids(viewer)]
    term = (search or "").strip().lower()
    if len(term) > MAX_SEARCH_LENGTH:
        # Also SQLite refuses LIKE patterns over 50 000 bytes (an unexpected error otherwise).
        raise bad_input(f"`search` must be at most {MAX_SEARCH_LENGTH} characters")
    if term:
        # The user's % and _ are characters to find, not wildcards.
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        conditions.append(
            or_(
                func.lower(User.name).like(pattern, escape="\\"),
                func.lower(User.email).like(pattern, escape="\\"),
            )
        )
    base = (
        select(*PERSON_COLUMNS).join(Membership, Membership.user_id == User.id).where(*conditions)
    )
    page = base
    if after is not None:
        name, last_id = decode_cursor(after, 2)
        if not isinstance(name, str):
            raise _bad_cursor()
        last_id = _cursor_id(last_id)
        page = page.where(or_(User.name > name, and_(User.name == name, User.id > last_id)))
    page = page.order_by(User.name, User.id).limit(limit + 1)
    total = 0
    if count:
        counted = select(func.count()).select_from(base.subquery())
        total = (await ctx.db.execute(counted)).scalar_one()
    rows = [PersonRow(r.id, r.name, r.email) for r in (await ctx.db.execute(page)).all()]
    items = [(encode_cursor([r.name, r.id]), r) for r in rows[:limit]]
    return Page(items=items, has_next_page=len(rows) > limit, total_count=int(total))


# A mutation's invoice in two statements: its row locked (scoped), then the row again with
# its payments and its refunds in one statement, each read from its own table (a few rows
# each, so their product stays small). Not in one statement: under READ COMMITTED a statement
# that waited for the lock sees the invoice row as the lock's holder committed it but its
# joined payments as they were when the statement started, so a concurrent payment would be
# missed (tests/test_concurrency.py); a statement after the lock sees what its holder wrote.
# Built once with a bound invoice id: an alias built per call costs more than it saves.
_PAYMENTS = aliased(
    Payment, select(Payment).where(Payment.invoice_id == bindparam("invoice_id")).subquery()
)
_REFUNDS = aliased(
    Refund, select(Refund).where(Refund.invoice_id == bindparam("invoice_id")).subquery()
)
_WITH_COLLECTIONS = (
    select(Invoice)
    .outerjoin(_PAYMENTS, _PAYMENTS.invoice_id == Invoice.id)
    .outerjoin(_REFUNDS, _REFUNDS.invoice_id == Invoice.id)
    .where(Invoice.id == bindparam("invoice_id"))
    .options(
        contains_eager(Invoice.payments.of_type(_PAYMENTS)),
        contains_eager(Invoice.refunds.of_type(_REFUNDS)),
    )
    .order_by(_PAYMENTS.id, _REFUNDS.id)
    .execution_options(populate_existing=True)
)


@functools.cache
def _lock(role: Role) -> Select[int]:
    """The scoped lock of an invoice for a viewer of `role`, built once per role: the viewer's
    ids are bound at execution (`user_id`, `practice_id`), the scope is `visible_invoices`'s."""
    viewer = Viewer(
        user_id=cast(int, bindparam("user_id")),
        practice_id=cast(int, bindparam("practice_id")),
        role=role,
        session_id=0,
    )
    return (
        select(Invoice.id)
        .where(Invoice.id == bindparam("invoice_id"), visible_invoices(viewer))
        .with_for_update(of=Invoice)
    )


async def locked_invoice(session: AsyncSession, viewer: Viewer, global_id: str) -> Invoice:
    """The invoice, locked for this transaction with its payments and refunds, if the viewer
    can see it; NOT_FOUND otherwise (as for an id that does not exist)."""
    pk = decode_id(global_id, "Invoice")
    if pk is None:
        raise not_found("invoice", "invoiceId")
    bound = {"invoice_id": pk, "user_id": viewer.user_id, "practice_id": viewer.practice_id}
    if (await session.execute(_lock(viewer.role), bound)).first() is None:
        raise not_found("invoice", "invoiceId")
    loaded = await session.execute(_WITH_COLLECTIONS, {"invoice_id": pk})
    return loaded.unique().scalar_one()
