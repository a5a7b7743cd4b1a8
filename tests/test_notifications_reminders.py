"""Reminders: an INVOICE_REMINDER alert (and its email) for each unpaid invoice on each
configured day, once, in the practice's time zone — driven by a clock the test moves, across
restarts and downtime, and stopped by a payment. Also `Invoice.overdue` and its filter."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from adapters.scheduler import ReminderScheduler
from models import InvoiceReminder
from models.base import utcnow
from models.enums import Role
from schema.node import encode_id
from schema.services import Services
from tests.api import Api
from tests.factories import World, make_world
from tests.live_server import RECORD
from tests.notifications import MailServer, ManualClock, dispatcher, set_time_zone

AUCKLAND = ZoneInfo("Pacific/Auckland")
CONFIGURE = """mutation($input: ConfigureRemindersInput!) { configureReminders(input: $input) {
  practice { reminders { daysBeforeDue daysAfterDue } } errors { code field message } } }"""
REMINDERS = "{ practice { reminders { daysBeforeDue daysAfterDue } } }"
INBOX = """query($id: ID!) { alerts(first: 50) { edges { node { kind invoice { id } } } }
  invoice(id: $id) { overdue history { action } } }"""
OVERDUE = """query($overdue: Boolean) { invoices(filter: {overdue: $overdue}, first: 50) {
  totalCount edges { node { id overdue } } } }"""


def gid(type_name: str, pk: int) -> str:
    return str(encode_id(type_name, pk))


def auckland(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), AUCKLAND)


async def _configure(api: Api, world: World, before: list[int], after: list[int]) -> Any:
    admin = await world.token(world.admin, Role.ADMIN)
    data = await api.data(
        CONFIGURE, {"input": {"daysBeforeDue": before, "daysAfterDue": after}}, admin
    )
    return data["configureReminders"]


async def _records(services: Services, invoice_id: int) -> dict[int, bool]:
    """offset -> whether it was sent (True) or skipped (False)."""
    async with services.db.reader() as session:
        rows = await session.execute(
            select(InvoiceReminder.offset_days, InvoiceReminder.alert_id).where(
                InvoiceReminder.invoice_id == invoice_id
            )
        )
        return {offset: alert is not None for offset, alert in rows}


async def test_reminders_follow_the_practice_time_zone_once_each_and_catch_up(
    own_database: Services, own_api: Api, mail_server: MailServer
) -> None:
    world = await make_world(own_database)
    await set_time_zone(own_database, world.practice_id, "Pacific/Auckland")
    assert await _configure(own_api, world, [3], [1, 7]) == {
        "practice": {"reminders": {"daysBeforeDue": [3], "daysAfterDue": [1, 7]}},
        "errors": [],
    }
    due = utcnow().astimezone(AUCKLAND).date() + timedelta(days=10)
    invoice_id = await world.invoice(world.c1, due_date=due, description="Couples therapy")
    clock = ManualClock()
    sender = dispatcher(own_database, mail_server, clock)
    await sender.run_once()

    # 23:30 four days before, in Auckland: not yet. An hour later it is three days before
    # there, while UTC still says four days before.
    clock.set(auckland(due - timedelta(days=4), 23, 30))
    assert await ReminderScheduler(own_database.db, clock).run_once() == 0
    clock.set(auckland(due - timedelta(days=3), 0, 30))
    assert clock.now().astimezone(ZoneInfo("UTC")).date() == due - timedelta(days=4)
    assert await ReminderScheduler(own_database.db, clock).run_once() == 1
    await sender.run_once()
    assert await ReminderScheduler(own_database.db, clock).run_once() == 0  # a restart: once
    clock.advance(hours=20)
    assert await ReminderScheduler(own_database.db, clock).run_once() == 0
    clock.set(auckland(due, 9))  # the due date: no "before" reminder, no "after" one yet
    assert await ReminderScheduler(own_database.db, clock).run_once() == 0

    # Down from the due date to eight days after: one reminder, the latest, not a burst.
    clock.set(auckland(due + timedelta(days=8), 10))
    assert await ReminderScheduler(own_database.db, clock).run_once() == 1
    assert await ReminderScheduler(own_database.db, clock).run_once() == 0
    assert await _records(own_database, invoice_id) == {-3: True, 1: False, 7: True}
    await sender.run_once()

    client = await world.token(world.c1, Role.CLIENT)
    seen = await own_api.data(INBOX, {"id": gid("Invoice", invoice_id)}, client)
    kinds = [e["node"]["kind"] for e in seen["alerts"]["edges"]]
    assert kinds == ["INVOICE_REMINDER", "INVOICE_REMINDER", "INVOICE_SENT"]
    # A reminder is not a change of the invoice: its history holds only the sending.
    assert seen["invoice"]["history"] == [{"action": "SENT"}]

    subjects = sorted(m["Subject"].split(": ", 1)[1] for m in mail_server.mailbox.received())
    number = f"INV-{1:06d}"
    assert subjects == [
        f"reminder about invoice {number}",
        f"reminder about invoice {number}",
        f"you have a new invoice ({number})",
    ]
    bodies = [m.get_body(("plain",)).get_content() for m in mail_server.mailbox.received()]  # type: ignore[union-attr]
    assert any("is due in 3 days" in b for b in bodies)
    assert any(f"was due on {due.strftime('%B %-d, %Y')}" in b for b in bodies)
    assert not any("Couples" in b for b in bodies)


async def test_no_reminder_once_paid_and_no_stale_before_reminder(
    own_database: Services, own_api: Api
) -> None:
    world = await make_world(own_database)
    await _configure(own_api, world, [3, 1], [2])
    today = utcnow().astimezone(ZoneInfo("America/New_York")).date()
    due = today + timedelta(days=5)
    paid_later = await world.invoice(world.c1, amount=4_000, due_date=due)
    stale = await world.invoice(world.c2, due_date=due)
    late_sent = await world.invoice(world.c1, due_date=today + timedelta(days=2))
    forgiven = await world.invoice(world.c2, due_date=due, forgive=True)
    clock = ManualClock()

    clock.set(datetime.combine(due - timedelta(days=3), time(12), ZoneInfo("America/New_York")))
    assert await ReminderScheduler(own_database.db, clock).run_once() == 2
    assert await _records(own_database, paid_later) == {-3: True}
    assert await _records(own_database, stale) == {-3: True}
    provider = await world.token(world.provider, Role.PROVIDER)
    recorded = await own_api.data(
        RECORD,
        {"input": {"invoiceId": gid("Invoice", paid_later), "amount": 4_000, "method": "CASH"}},
        provider,
    )
    assert recorded["recordPayment"]["invoice"]["status"] == "PAID"

    # The server was down from three days before the due date to two days after it.
    clock.set(datetime.combine(due + timedelta(days=2), time(12), ZoneInfo("America/New_York")))
    assert await ReminderScheduler(own_database.db, clock).run_once() == 2
    assert await _records(own_database, paid_later) == {-3: True}
    # No stale "1 day before" after the due date: it is neither sent nor waiting.
    assert await _records(own_database, stale) == {-3: True, 2: True}
    # Sent two days before its due date: the "3 days before" had passed already.
    assert await _records(own_database, late_sent) == {2: True}
    assert await _records(own_database, forgiven) == {}


async def test_configure_reminders_validates_and_deduplicates(api: Api, world: World) -> None:
    assert await _configure(api, world, [7, 3, 7], [30, 1, 7]) == {
        "practice": {"reminders": {"daysBeforeDue": [3, 7], "daysAfterDue": [1, 7, 30]}},
        "errors": [],
    }
    admin = await world.token(world.admin, Role.ADMIN)
    refused = [
        ([-1], [], "daysBeforeDue"),
        ([], [0], "daysAfterDue"),
        ([], [366], "daysAfterDue"),
        (list(range(1, 12)), [], "daysBeforeDue"),
        ([1], list(range(1, 12)), "daysAfterDue"),
    ]
    for before, after, field in refused:
        payload = await _configure(api, world, before, after)
        assert payload["practice"] is None
        ((code, where),) = [(e["code"], e["field"]) for e in payload["errors"]]
        assert (code, where) == ("VALIDATION", field), (before, after)
    shown = await api.data(REMINDERS, token=admin)
    assert shown["practice"]["reminders"] == {"daysBeforeDue": [3, 7], "daysAfterDue": [1, 7, 30]}
    cleared = await _configure(api, world, [], [])
    assert cleared["practice"]["reminders"] == {"daysBeforeDue": [], "daysAfterDue": []}


async def test_overdue_is_unpaid_past_the_due_date_and_filters_in_sql(
    api: Api, world: World
) -> None:
    today = utcnow().date()
    overdue = await world.invoice(world.c1, days_ago=10, due_date=today - timedelta(days=5))
    paid = await world.invoice(
        world.c1, days_ago=10, due_date=today - timedelta(days=5), amount=100, paid=100
    )
    later = await world.invoice(world.c2, due_date=today + timedelta(days=5))
    undated = await world.invoice(world.c2)
    admin = await world.token(world.admin, Role.ADMIN)

    only = await api.data(OVERDUE, {"overdue": True}, admin)
    assert only["invoices"] == {
        "totalCount": 1,
        "edges": [{"node": {"id": gid("Invoice", overdue), "overdue": True}}],
    }
    others = await api.data(OVERDUE, {"overdue": False}, admin)
    assert {e["node"]["id"] for e in others["invoices"]["edges"]} == {
        gid("Invoice", i) for i in (paid, later, undated)
    }
    assert {e["node"]["overdue"] for e in others["invoices"]["edges"]} == {False}
    everything = await api.data(OVERDUE, {"overdue": None}, admin)
    assert everything["invoices"]["totalCount"] == 4


async def test_values_of_the_wrong_kind_are_typed_errors(api: Api, world: World) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    cases: list[tuple[str, dict[str, Any]]] = [
        (
            "query($s: DeliveryStatus) { notificationDeliveries(status: $s) { totalCount } }",
            {"s": "SOMETIMES"},
        ),
        (CONFIGURE, {"input": {"daysBeforeDue": ["three"], "daysAfterDue": []}}),
        (CONFIGURE, {"input": {"daysBeforeDue": [2**40], "daysAfterDue": []}}),
        (CONFIGURE, {"input": {"daysBeforeDue": None, "daysAfterDue": []}}),
    ]
    for query, variables in cases:
        body = await api.post(query, variables, admin)
        assert body["data"] is None, body
        assert body["errors"]
        codes = {e.get("extensions", {}).get("code") for e in body["errors"]}
        assert "INTERNAL_SERVER_ERROR" not in codes, body
    shown = await api.data(REMINDERS, token=admin)
    assert shown["practice"]["reminders"] == {"daysBeforeDue": [], "daysAfterDue": []}
