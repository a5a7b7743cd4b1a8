"""The subscriptions of one view share their alert feed (resolvers/alert_feed.py): an alert is
read once for all of them — the same statements for two subscribers as for twelve — and
rendered once per distinct selection, while each subscriber still receives only its own view,
its own read marks and its own selection.

The subscriptions run through the real schema (`schema.subscribe`, as the websocket handlers
call it) on a database of their own, and alerts are announced as the relay does, through the
process's broker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select
from strawberry.types import ExecutionResult

from adapters.broker import AlertNote
from models import Alert, Membership, User
from models.enums import Role
from models.scope import Viewer
from resolvers import sessions
from resolvers.alert_feed import feed_of
from resolvers.root import build_schema
from schema.context import Context
from schema.node import encode_id
from schema.services import Services
from tests.factories import World, make_world

SELECTION = "id kind readAt invoice { id number status }"
SUBSCRIPTION = f"subscription($after: ID) {{ invoiceAlerts(after: $after) {{ {SELECTION} }} }}"
MARK_READ = "mutation($upTo: ID!) { markAlertsRead(upTo: $upTo) }"


class Subscriber:
    """One subscription through the schema, its results gathered as they come."""

    def __init__(self, services: Services, viewer: Viewer) -> None:
        self.context = Context(services=services, viewer=viewer, request_id="fanout-test")
        self.results: asyncio.Queue[ExecutionResult] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self, query: str = SUBSCRIPTION, **variables: Any) -> None:
        schema = build_schema(self.context.settings)
        stream = await schema.subscribe(query, variables, self.context)

        async def gather() -> None:
            async with contextlib.aclosing(stream):
                async for result in stream:
                    await self.results.put(result)

        self._task = asyncio.create_task(gather())

    async def next(self, within: float = 20) -> ExecutionResult:
        return await asyncio.wait_for(self.results.get(), within)

    async def alert(self) -> dict[str, Any]:
        result = await self.next()
        assert result.errors is None, result.errors
        assert result.data is not None
        alert: dict[str, Any] = result.data["invoiceAlerts"]
        return alert

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@contextlib.asynccontextmanager
async def subscribed(
    services: Services, viewers: list[Viewer], query: str = SUBSCRIPTION, **variables: Any
) -> AsyncIterator[list[Subscriber]]:
    """Subscriptions of `viewers`, each past its starting point."""
    subscribers = [Subscriber(services, viewer) for viewer in viewers]
    live = services.alerts.live
    try:
        for subscriber in subscribers:
            await subscriber.start(query, **variables)
        for _ in range(2000):
            if services.alerts.live >= live + len(subscribers):
                break
            await asyncio.sleep(0.01)
        assert services.alerts.live == live + len(subscribers)
        yield subscribers
    finally:
        for subscriber in subscribers:
            await subscriber.stop()


async def admins(world: World, count: int) -> list[Viewer]:
    """`count` new ADMINs of the world's practice, each signed in."""
    services = world.services
    async with services.db.writer() as session, session.begin():
        users = [
            User(email=f"admin-{uuid.uuid4().hex[:12]}@example.com", name="A") for i in range(count)
        ]
        session.add_all(users)
        await session.flush()
        session.add_all(
            Membership(user_id=u.id, practice_id=world.practice_id, role=Role.ADMIN) for u in users
        )
        await session.flush()
        return [
            (await sessions.issue(session, services, u.id, world.practice_id, Role.ADMIN))[1]
            for u in users
        ]


async def note_of(services: Services, world: World) -> AlertNote:
    """The note the relay publishes once the practice's newest alert committed."""
    async with services.db.reader() as session:
        latest = (
            await session.execute(
                select(func.max(Alert.commit_seq)).where(Alert.practice_id == world.practice_id)
            )
        ).scalar_one()
    return AlertNote(world.practice_id, int(latest or 0))


async def announce(services: Services, world: World) -> None:
    """What the relay does once an alert committed: ring the practice's doorbells."""
    await services.alerts.broker.publish([await note_of(services, world)])


async def settled(world: World, subscriptions: list[Subscriber]) -> None:
    """A first alert, received by all: every subscriber is past its first read, all wait for
    the next, and the feed is idle (no pass still under way that could read a later alert
    before its ring), so one ring serves them all in one pass."""
    services = world.services
    await world.invoice()
    await announce(services, world)
    for subscription in subscriptions:
        await subscription.alert()
    viewer = subscriptions[0].context.viewer
    assert viewer is not None
    feed = feed_of(services, viewer)
    for _ in range(2000):
        if feed.idle and all(m.waiting is not None for m in feed.members):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the subscribers never all waited")


@contextlib.contextmanager
def statements(services: Services) -> Iterator[list[str]]:
    """Every SQL statement the services' engine runs inside (the test's, there is no relay)."""
    seen: list[str] = []

    def on_execute(*args: Any) -> None:
        seen.append(str(args[2]))

    engine = services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


@pytest.fixture
async def world_of_own(own_database: Services) -> World:
    return await make_world(own_database)


async def _statements_for_one_alert(world: World, subscribers: int) -> list[str]:
    services = world.services
    # No idle re-check (every 10 s) during the count: on a busy machine one would fall between
    # the alert's commit and its ring, and its pass would be counted too. The ring is the only
    # thing that wakes the feed here.
    services.alerts.recheck_seconds = 3600
    viewers = await admins(world, subscribers)
    async with subscribed(services, viewers) as subscriptions:
        await settled(world, subscriptions)
        invoice_id = await world.invoice()
        note = await note_of(services, world)
        with statements(services) as seen:
            await services.alerts.broker.publish([note])
            alerts = [await s.alert() for s in subscriptions]
    assert {a["invoice"]["id"] for a in alerts} == {encode_id("Invoice", invoice_id)}
    return [s for s in seen if not s.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK"))]


async def test_an_alert_is_read_once_for_every_subscriber_of_a_view(world_of_own: World) -> None:
    """Given 2, then 12 ADMINs subscribed, when an alert commits, then delivering it to all of
    them runs the same statements: their sessions, the view's inbox, their read marks."""
    for_two = await _statements_for_one_alert(world_of_own, 2)
    for_twelve = await _statements_for_one_alert(world_of_own, 12)
    assert len(for_twelve) == len(for_two), (for_two, for_twelve)
    assert len(for_two) <= 3, for_two


async def test_one_view_shares_one_rendering_of_each_alert(world_of_own: World) -> None:
    """Subscribers of one view with the same selection receive the very same encoded result,
    whatever their `after` (it only decides where each starts)."""
    services = world_of_own.services
    viewers = await admins(world_of_own, 3)
    await world_of_own.invoice()
    async with services.db.reader() as session:
        latest = (await session.execute(select(func.max(Alert.id)))).scalar_one()
    async with subscribed(services, viewers[:2]) as first_two:
        after = encode_id("InvoiceAlert", latest)
        async with subscribed(services, viewers[2:], after=after) as third:
            await settled(world_of_own, [*first_two, *third])
            await world_of_own.invoice()
            await announce(services, world_of_own)
            results = [await s.next() for s in [*first_two, *third]]
    assert all(r.errors is None for r in results)
    assert results[0].data is results[1].data is results[2].data
    assert results[0].data is not None
    assert hasattr(results[0].data, "encoded")


async def test_each_subscriber_gets_its_own_read_marks(world_of_own: World) -> None:
    """Two ADMINs share a view; the one who marked an alert read replays it with its readAt,
    the other with none — and neither is told of the other's mark."""
    world = world_of_own
    services = world.services
    reader, other = await admins(world, 2)
    before = await world.invoice()
    await world.invoice()
    async with services.db.reader() as session:
        first, second = (
            (
                await session.execute(
                    select(Alert.id)
                    .where(Alert.practice_id == world.practice_id)
                    .order_by(Alert.commit_seq)
                )
            )
            .scalars()
            .all()
        )
    assert before
    marker = Context(services=services, viewer=reader, request_id="fanout-test")
    schema = build_schema(services.settings)
    marked = await schema.execute(
        MARK_READ, {"upTo": encode_id("InvoiceAlert", second)}, context_value=marker
    )
    assert marked.errors is None, marked.errors
    async with subscribed(services, [reader, other], after=encode_id("InvoiceAlert", first)) as (
        reader_sub,
        other_sub,
    ):
        mine, theirs = await reader_sub.alert(), await other_sub.alert()
    assert mine["id"] == theirs["id"] == encode_id("InvoiceAlert", second)
    assert mine["readAt"] is not None
    assert theirs["readAt"] is None


async def test_each_selection_is_rendered_for_itself(world_of_own: World) -> None:
    """Subscribers of one view with one document but different values of a variable their
    selection uses, and one with another selection, each receive what they asked for."""
    world = world_of_own
    services = world.services
    query = (
        "subscription($with: Boolean!) { invoiceAlerts {"
        " id invoice @include(if: $with) { number } } }"
    )
    with_invoice, without, other = await admins(world, 3)
    async with (
        subscribed(services, [with_invoice], query, **{"with": True}) as (a,),
        subscribed(services, [without], query, **{"with": False}) as (b,),
        subscribed(services, [other], "subscription { invoiceAlerts { kind } }") as (c,),
    ):
        invoice_id = await world.invoice()
        await announce(services, world)
        got_a, got_b, got_c = await a.alert(), await b.alert(), await c.alert()
    invoice = (await world.load_invoice(invoice_id)).display_number
    assert got_a == {"id": got_b["id"], "invoice": {"number": invoice}}
    assert got_b == {"id": got_a["id"]}
    assert got_c == {"kind": "INVOICE_SENT"}


async def test_views_of_one_practice_stay_apart(world_of_own: World) -> None:
    """An ADMIN, the provider of c1, the other provider and clients c1 and c3 subscribe; an
    invoice of c1 reaches the ADMIN, its provider and c1 only."""
    world = world_of_own
    services = world.services
    (admin,) = await admins(world, 1)
    async with world.services.db.writer() as session, session.begin():
        people = [
            (await sessions.issue(session, services, p.id, world.practice_id, role))[1]
            for p, role in [
                (world.provider, Role.PROVIDER),
                (world.provider2, Role.PROVIDER),
                (world.c1, Role.CLIENT),
                (world.c3, Role.CLIENT),
            ]
        ]
    provider, provider2, c1, c3 = people
    async with subscribed(services, [admin, provider, provider2, c1, c3]) as subscriptions:
        for_c1 = await world.invoice(client=world.c1, provider=world.provider)
        await announce(services, world)
        for_c3 = await world.invoice(client=world.c3, provider=world.provider2)
        await announce(services, world)
        firsts = [(await s.alert())["invoice"]["id"] for s in subscriptions]
    c1_invoice, c3_invoice = encode_id("Invoice", for_c1), encode_id("Invoice", for_c3)
    # Each one's first alert: the ADMIN's is c1's, and so are c1's and its provider's; the
    # other provider's and c3's is c3's (c1's never reached them).
    assert firsts == [c1_invoice, c1_invoice, c3_invoice, c1_invoice, c3_invoice]
