"""Shared alert feeds: the subscriptions of one view read and render each alert once.

A view is what decides which alerts a subscriber sees (models/scope.py): the practice and the
active role, and for a PROVIDER or a CLIENT the user too (an ADMIN sees the whole practice,
whoever they are). Every `invoiceAlerts` subscription of a process joins the feed of its view,
which listens to the broker with one doorbell. When it rings (or at the idle re-check), the
feed serves the subscribers that wait for more:

1. it checks their sessions in one query: a revoked or expired token ends its subscription;
2. it reads the view's inbox after each distinct cursor among them — one, as a rule, since
   live subscribers all stand at the newest alert — in the inbox's SQL (scoped, commit order);
3. it reads, in one query, which of those alerts their users marked read;
4. it hands each subscriber the alerts after its own cursor, as events shared by everyone with
   the same read mark: a subscription's selection runs once per event and distinct selection,
   in a context of the view, and its JSON is encoded once (schema/shared_events.py);
5. a subscriber whose socket can take them now is sent its messages by the feed itself, in
   the same pass (`DirectSend`); the others' subscriptions are woken to send theirs.

A subscriber still sending its previous batch is served at the next pass, from its own cursor:
a slow socket holds up nobody and makes nothing queue up for it. Catch-up (`after`) is the same
path: a new subscriber is served at once from its starting point, a hundred alerts at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import ColumnElement, Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.broker import Broker
from adapters.id_lists import one_of
from models import Alert, AlertRead, Invoice
from models.enums import Role
from models.scope import Viewer, visible_invoices
from resolvers.sessions import active_sessions
from schema.alerts import InvoiceAlert
from schema.context import Context
from schema.errors import unauthenticated
from schema.services import Services
from schema.shared_events import DirectSend, EncodedData, SharedEvent, direct_send, sendable

# Alerts handed to a subscriber per pass (a catch-up continues at the next pass).
CATCH_UP_BATCH = 100

ViewKey = tuple[int, Role, int | None]


def view_of(viewer: Viewer) -> ViewKey:
    """Who sees the same alerts: an ADMIN's view is the practice's, anyone else's their own."""
    return (viewer.practice_id, viewer.role, None if viewer.is_admin else viewer.user_id)


def inbox(viewer: Viewer) -> list[ColumnElement[bool]]:
    """The viewer's inbox: committed alerts of the practice on invoices in their view."""
    return [
        Alert.practice_id == viewer.practice_id,
        Alert.commit_seq.is_not(None),
        visible_invoices(viewer),
    ]


class Member:
    """One subscription in a feed: where it stands, and the batch it waits for."""

    __slots__ = ("context", "cursor", "direct", "more", "served_at", "viewer", "waiting")

    def __init__(
        self, context: Context, viewer: Viewer, cursor: int = 0, direct: DirectSend | None = None
    ) -> None:
        self.context = context
        self.viewer = viewer
        self.cursor = cursor
        # How the feed may send this subscription's messages itself (None: it never does).
        self.direct = direct
        # The feed's ring count when this member's inbox was last read; `more`: read it again
        # without waiting for a ring (a new subscriber, a full catch-up batch).
        self.served_at = -1
        self.more = True
        self.waiting: asyncio.Future[list[InvoiceAlert]] | None = None


class ViewFeed:
    """The subscriptions of this process that share one view."""

    def __init__(self, services: Services, viewer: Viewer, key: ViewKey) -> None:
        self.services = services
        self.hub = services.alerts
        self.key = key
        self.members: dict[Member, None] = {}  # in joining order
        self.rings = 0
        self._wake = asyncio.Event()
        # A client's doorbell rings only for notes about its own invoices (a wake-up hint).
        as_client = viewer.user_id if viewer.role is Role.CLIENT else None
        self._bell = self.hub.broker.subscribe(viewer.practice_id, as_client, on_ring=self._rang)
        self._task: asyncio.Task[None] | None = None
        self._between_passes = False

    @property
    def idle(self) -> bool:
        """No pass under way or about to start: the feed waits for a ring (or its re-check)."""
        return self._between_passes and not self._wake.is_set()

    def _rang(self) -> None:
        self.rings += 1
        self._wake.set()

    def _due(self, member: Member) -> bool:
        """Waiting for a batch, and something may have committed since its last read."""
        waiting = member.waiting
        return (
            waiting is not None
            and not waiting.done()
            and (member.more or member.served_at < self.rings)
        )

    def join(self, member: Member) -> None:
        self.members[member] = None
        if self._task is None:
            # Started by its first subscription's task: not with that operation's DirectSend.
            context = contextvars.copy_context()
            context.run(direct_send.set, None)
            self._task = asyncio.create_task(
                self._run(), name="carebill-alert-feed", context=context
            )

    def leave(self, member: Member) -> None:
        self.members.pop(member, None)
        if not self.members:
            _feeds_of(self.hub.broker).pop(self.key, None)
            self._bell.close()
            if self._task is not None:
                self._task.cancel()
                self._task = None

    async def next_batch(self, member: Member) -> list[InvoiceAlert]:
        """The member's next alerts (at least one), once there are; raises UNAUTHENTICATED
        when its session ends."""
        member.waiting = asyncio.get_running_loop().create_future()
        if self._due(member):
            self._wake.set()
        try:
            return await member.waiting
        finally:
            member.waiting = None

    async def _run(self) -> None:
        while True:
            due = [m for m in self.members if self._due(m)]
            if not due:
                self._wake.clear()
                # Spread the idle re-checks of many feeds over time.
                pause = self.hub.recheck_seconds * random.uniform(0.8, 1.2)  # noqa: S311
                self._between_passes = True
                try:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), pause)
                finally:
                    self._between_passes = False
                if not self._wake.is_set():
                    self.rings += 1  # the idle re-check: everyone's session and inbox
                continue
            try:
                await self._serve(due)
            except Exception as exc:
                for member in due:
                    _fail(member, exc)

    async def _serve(self, due: list[Member]) -> None:
        for member in due:
            # Before reading: a ring from now on is for a commit this read may not see.
            member.served_at, member.more = self.rings, False
        serving = await self._still_valid(due)
        if not serving:
            return
        viewer = serving[0].viewer
        batches: dict[int, list[Row[Alert, Invoice]]] = {}
        async with self.hub.reads, self.services.db.reader() as session:
            for cursor in sorted({m.cursor for m in serving}):
                statement = (
                    select(Alert, Invoice)
                    .join(Invoice, Invoice.id == Alert.invoice_id)
                    .where(*inbox(viewer), Alert.commit_seq > cursor)
                    .order_by(Alert.commit_seq)
                    .limit(CATCH_UP_BATCH)
                )
                batches[cursor] = list((await session.execute(statement)).all())
            alert_ids = sorted({alert.id for batch in batches.values() for alert, _ in batch})
            users = {m.viewer.user_id for m in serving}
            marks = await _marks(session, alert_ids, users, sqlite=self.services.db.is_sqlite)
        if not alert_ids:
            return
        view = Context(services=self.services, viewer=viewer, request_id="alert-feed")
        events = _events(view, batches)
        handed: list[tuple[Member, list[InvoiceAlert], list[Any] | None]] = []
        renderings: set[asyncio.Future[Any]] = set()
        for member in serving:
            batch = batches[member.cursor]
            if not batch or member.waiting is None or member.waiting.done():
                continue
            user = member.viewer.user_id
            alerts = [events[alert.id][marks.get((alert.id, user))] for alert, _ in batch]
            results = _rendered(member.direct, alerts, renderings)
            handed.append((member, alerts, results))
            member.cursor = batch[-1][0].commit_seq or member.cursor
            member.more = len(batch) == CATCH_UP_BATCH
        if renderings:  # the first rendering of a selection that awaits: once for everyone
            await asyncio.wait(renderings)
        for member, alerts, results in handed:
            _hand_over(member, alerts, results)

    async def _still_valid(self, due: list[Member]) -> list[Member]:
        """The members whose session is still valid; the others' subscriptions end."""
        async with self.hub.reads:
            valid = await active_sessions(self.services, {m.viewer.session_id for m in due})
        serving = []
        for member in due:
            current = member.context.viewer
            if current is None or current.session_id != member.viewer.session_id:
                _fail(member, unauthenticated())  # logged out over this very socket
            elif member.viewer.session_id not in valid:
                _fail(member, unauthenticated())
            else:
                serving.append(member)
        return serving


def _rendered(
    direct: DirectSend | None, alerts: list[InvoiceAlert], renderings: set[asyncio.Future[Any]]
) -> list[Any] | None:
    """What a subscription with a DirectSend renders `alerts` to (a selection rendered for the
    first time may be a future: added to `renderings`); None without a DirectSend."""
    if direct is None or direct.renderer is None:
        return None
    results = []
    for alert in alerts:
        result = direct.render(alert)
        if isinstance(result, asyncio.Future) and not result.done():
            renderings.add(result)
        results.append(result)
    return results


def _hand_over(member: Member, alerts: list[InvoiceAlert], results: list[Any] | None) -> None:
    """Sends the member's alerts through its DirectSend as far as it can, in order, and wakes
    its subscription for the rest (a result with errors, a busy socket)."""
    waiting = member.waiting
    if waiting is None or waiting.done():  # it left meanwhile
        return
    sent = 0
    if results is not None and member.direct is not None:
        write = member.direct.write
        for result in results:
            data = _data_of(result)
            if data is None or not write(data):
                break
            sent += 1
    if sent < len(alerts):
        waiting.set_result(alerts[sent:])


def _data_of(result: Any) -> EncodedData | None:
    if isinstance(result, asyncio.Future):
        if not result.done() or result.cancelled() or result.exception() is not None:
            return None
        result = result.result()
    return sendable(result)


def _fail(member: Member, error: Exception) -> None:
    if member.waiting is not None and not member.waiting.done():
        member.waiting.set_exception(error)


async def _marks(
    session: AsyncSession, alert_ids: list[int], user_ids: set[int], *, sqlite: bool
) -> dict[tuple[int, int], datetime]:
    """When each of `user_ids` marked each of `alert_ids` read (the marks that exist)."""
    if not alert_ids:
        return {}
    statement = select(AlertRead.alert_id, AlertRead.user_id, AlertRead.read_at).where(
        AlertRead.alert_id.in_(alert_ids), one_of(AlertRead.user_id, user_ids, sqlite=sqlite)
    )
    rows = await session.execute(statement)
    return {(alert_id, user_id): read_at for alert_id, user_id, read_at in rows}


class _ByMark(dict[datetime | None, InvoiceAlert]):
    """An alert's events by read mark (None: unread), each made on first use."""

    def __init__(self, view: Context, alert: Alert) -> None:
        super().__init__()
        self.view = view
        self.alert = alert

    def __missing__(self, read_at: datetime | None) -> InvoiceAlert:
        event = InvoiceAlert(row=self.alert, read_at_value=read_at, shared=SharedEvent(self.view))
        self[read_at] = event
        return event


def _events(view: Context, batches: dict[int, list[Row[Alert, Invoice]]]) -> dict[int, _ByMark]:
    """The events of the alerts read, rendered in `view` (the view's context, whose loaders
    know the invoices read with the alerts) for everyone who receives them."""
    loaders = view.loaders
    events: dict[int, _ByMark] = {}
    for batch in batches.values():
        for alert, invoice in batch:
            loaders.invoices.prime(invoice.id, invoice)
            events.setdefault(alert.id, _ByMark(view, alert))
    return events


_feeds: WeakKeyDictionary[Broker, dict[ViewKey, ViewFeed]] = WeakKeyDictionary()


def _feeds_of(broker: Broker) -> dict[ViewKey, ViewFeed]:
    feeds = _feeds.get(broker)
    if feeds is None:
        feeds = _feeds[broker] = {}
    return feeds


def feed_of(services: Services, viewer: Viewer) -> ViewFeed:
    """The feed of the viewer's view in this process (listening from now on)."""
    feeds = _feeds_of(services.alerts.broker)
    key = view_of(viewer)
    feed = feeds.get(key)
    if feed is None:
        feed = feeds[key] = ViewFeed(services, viewer, key)
    return feed
