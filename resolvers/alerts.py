"""Alerts: the `alerts` inbox, `markAlertsRead`, and the `invoiceAlerts` subscription.

A viewer's inbox is the alerts of the invoices in the view of their active role, filtered in
SQL. Its order is commit order (`Alert.commit_seq`, see models/alert.py): `alerts` pages it
newest first, `invoiceAlerts` replays it oldest first from `after` and then follows it live.
The subscription is one loop for both: read the inbox after the cursor, send, wait for the
broker's doorbell (or a periodic re-check), repeat; the subscriptions of one view share that
loop's reads and renderings (resolvers/alert_feed.py). The broker only says *that* something
happened in the practice; what the viewer receives is always what the database shows them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import datetime
from typing import Any, cast

import strawberry
from sqlalchemy import ColumnElement, CursorResult, Row, Select, and_, exists, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from models import Alert, AlertRead, Invoice
from models.base import UTCDateTime, utcnow
from models.scope import Viewer
from resolvers.alert_feed import Member, feed_of, inbox
from resolvers.sessions import is_active
from schema.alerts import InvoiceAlert, InvoiceAlertConnection, alert_not_found
from schema.context import Context, Info, viewer_of
from schema.errors import PublicError, bad_input, unauthenticated
from schema.node import decode_id
from schema.pagination import Page, decode_cursor, encode_cursor, page_size
from schema.services import AlertHub
from schema.shared_events import direct_send

AlertRow = Row[Alert, Invoice, datetime | None]


def _inbox(viewer: Viewer, *, unread_only: bool = False) -> list[ColumnElement[bool]]:
    conditions = inbox(viewer)
    if unread_only:
        # An alias: markAlertsRead selects from this inside INSERT INTO alert_reads.
        read = aliased(AlertRead)
        conditions.append(
            ~exists().where(read.alert_id == Alert.id, read.user_id == viewer.user_id)
        )
    return conditions


def _with_invoice_and_read(viewer: Viewer) -> Select[Alert, Invoice, datetime | None]:
    """Alerts with their invoice (one query primes the invoice loader) and the viewer's read."""
    return (
        select(Alert, Invoice, AlertRead.read_at)
        .join(Invoice, Invoice.id == Alert.invoice_id)
        .outerjoin(
            AlertRead, and_(AlertRead.alert_id == Alert.id, AlertRead.user_id == viewer.user_id)
        )
    )


def _wrap(ctx: Context, rows: Sequence[AlertRow]) -> list[InvoiceAlert]:
    loaders = ctx.loaders
    for _alert, invoice, _read_at in rows:
        loaders.invoices.prime(invoice.id, invoice)
    return [InvoiceAlert(row=alert, read_at_value=read_at) for alert, _invoice, read_at in rows]


async def _position(ctx: Context, viewer: Viewer, global_id: str) -> int:
    """The commit position of an alert of the viewer's practice; NOT_FOUND for anything else.

    Only the practice is checked, not the viewer's view: an alert the viewer was given may
    leave their view later (its client reassigned to another provider), and a cursor must
    still say where they were, or the alerts of the view after it could not be replayed or
    marked read. The position is all that is read of it; what follows is the viewer's inbox."""
    pk = decode_id(global_id, "InvoiceAlert")
    if pk is None:
        raise alert_not_found()
    async with ctx.db.reader() as session:
        seq = (
            await session.execute(
                select(Alert.commit_seq).where(
                    Alert.id == pk,
                    Alert.practice_id == viewer.practice_id,
                    Alert.commit_seq.is_not(None),
                )
            )
        ).scalar_one_or_none()
    if seq is None:
        raise alert_not_found()
    return seq


async def alerts(
    info: Info,
    after: str | None = None,
    first: int | None = None,
    unread_only: bool | None = None,
) -> InvoiceAlertConnection:
    """The viewer's inbox, newest first (commit order), optionally only what is unread."""
    viewer = viewer_of(info)
    ctx = info.context
    limit = page_size(first, ctx.settings.max_page_size)
    unread_only = bool(unread_only)
    conditions = _inbox(viewer, unread_only=unread_only)
    page = _with_invoice_and_read(viewer).where(*conditions)
    if after is not None:
        (before_seq,) = decode_cursor(after, 1)
        # bool is an int in Python; the sequence is a 64-bit column (a larger number would
        # reach the database as an out-of-range parameter).
        if isinstance(before_seq, bool) or not isinstance(before_seq, int):
            raise bad_input("`after` is not a cursor this API gave out")
        if not 0 < before_seq < 2**63:
            raise bad_input("`after` is not a cursor this API gave out")
        page = page.where(Alert.commit_seq < before_seq)
    page = page.order_by(Alert.commit_seq.desc()).limit(limit + 1)
    counts = (
        select(func.count(), func.count(AlertRead.id))
        .select_from(Alert)
        .join(Invoice, Invoice.id == Alert.invoice_id)
        .outerjoin(
            AlertRead, and_(AlertRead.alert_id == Alert.id, AlertRead.user_id == viewer.user_id)
        )
        .where(*_inbox(viewer))
    )
    async with ctx.db.reader() as session:
        total, read = (await session.execute(counts)).one()
        rows = (await session.execute(page)).all()
    unread = int(total) - int(read)
    items = _wrap(ctx, rows[:limit])
    return InvoiceAlertConnection.of(
        Page(
            items=[(encode_cursor([a.row.commit_seq]), a) for a in items],
            has_next_page=len(rows) > limit,
            total_count=unread if unread_only else int(total),
        ),
        unread_count=unread,
    )


async def mark_alerts_read(info: Info, up_to: strawberry.ID) -> int:
    """Mark every alert of the inbox up to `upTo` (in inbox order) read for this user; returns
    how many were not read before. NOT_FOUND (top-level) when `upTo` is not an alert of the
    practice (one that left the viewer's view still marks what came before it)."""
    viewer = viewer_of(info)
    ctx = info.context
    position = await _position(ctx, viewer, up_to)
    chosen = (
        select(Alert.id, literal(viewer.user_id), literal(utcnow(), UTCDateTime()))
        .join(Invoice, Invoice.id == Alert.invoice_id)
        .where(*_inbox(viewer, unread_only=True), Alert.commit_seq <= position)
    )
    insert = pg_insert if not ctx.db.is_sqlite else sqlite_insert
    statement = (
        insert(AlertRead)
        .from_select(["alert_id", "user_id", "read_at"], chosen)
        # A concurrent markAlertsRead may have marked some of them: count each mark once.
        .on_conflict_do_nothing(index_elements=["alert_id", "user_id"])
    )
    async with ctx.db.writer() as session, session.begin():
        result = cast(CursorResult[Any], await session.execute(statement))
    return int(result.rowcount)


async def _still_valid(ctx: Context, hub: AlertHub, viewer: Viewer) -> bool:
    """The token behind the subscription is still a valid session (logout ends it)."""
    current = ctx.viewer
    if current is None or current.session_id != viewer.session_id:
        return False  # logged out (or switched role) over this very socket
    async with hub.reads:
        return await is_active(ctx.services, viewer.session_id)


async def _start(ctx: Context, viewer: Viewer, after: str | None) -> int:
    """The cursor to follow from: `after`'s position, or the practice's latest (live only)."""
    if after is not None:
        return await _position(ctx, viewer, after)
    async with ctx.db.reader() as session:
        latest = (
            await session.execute(
                select(func.coalesce(func.max(Alert.commit_seq), 0)).where(
                    Alert.practice_id == viewer.practice_id
                )
            )
        ).scalar_one()
    return int(latest or 0)


async def invoice_alerts(
    info: Info, after: strawberry.ID | None = None
) -> AsyncGenerator[InvoiceAlert, None]:
    """Every alert of the viewer's inbox committed after `after` (oldest first), then each new
    one as it commits — exactly once, in commit order. Ends with UNAUTHENTICATED when the
    token is revoked or expires. The reads are the feed's of the viewer's view, shared with
    the other subscriptions of that view (resolvers/alert_feed.py)."""
    ctx = info.context
    viewer = viewer_of(info)
    hub = ctx.services.alerts
    if not await _still_valid(ctx, hub, viewer):
        raise unauthenticated()
    limit = ctx.settings.max_subscriptions_per_user
    if hub.per_user[viewer.user_id] >= limit:
        raise PublicError(
            f"at most {limit} alert subscriptions may be open per user; close one first",
            "TOO_MANY_SUBSCRIPTIONS",
        )
    # Listen before reading the starting point, so that no doorbell falls in between (the
    # member is served once it waits for its first batch).
    feed = feed_of(ctx.services, viewer)
    member = Member(ctx, viewer, direct=direct_send.get())
    feed.join(member)
    started = False
    hub.per_user[viewer.user_id] += 1
    try:
        member.cursor = await _start(ctx, viewer, after)
        hub.live += 1
        started = True
        while True:
            for alert in await feed.next_batch(member):
                yield alert
    finally:
        hub.live -= started
        feed.leave(member)
        hub.per_user[viewer.user_id] -= 1
        if not hub.per_user[viewer.user_id]:
            del hub.per_user[viewer.user_id]
