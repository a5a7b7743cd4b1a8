"""Email as the client meets it: real uvicorn processes with CAREBILL_SMTP_URL set, a real
SMTP server, invoices sent over HTTP. On PostgreSQL two server processes share the work (one
runner at a time, by advisory lock) and the runner may die: still nothing lost or doubled."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

from models.base import utcnow
from models.enums import DeliveryStatus, Role
from schema.node import encode_id
from schema.services import Services
from settings import Settings
from tests.factories import World, make_world
from tests.live_server import SEND, LiveServer, running_server, subscribed
from tests.notifications import (
    APP_URL,
    MAIL_FROM,
    MailServer,
    deliveries,
    eventually,
    own_api_of,
    settled,
)

CONFIGURE_REMINDERS = """mutation($input: ConfigureRemindersInput!) {
  configureReminders(input: $input) { errors { code message } } }"""
INBOX = "{ alerts(first: 10) { edges { node { id kind } } } }"

DESCRIPTION = "Medication review"


def _mail_env(mail: MailServer) -> dict[str, str]:
    return {
        "CAREBILL_SMTP_URL": mail.url,
        "CAREBILL_MAIL_FROM": MAIL_FROM,
        "CAREBILL_APP_URL": APP_URL,
        "CAREBILL_MAIL_RETRY_MAX_SECONDS": "1",
    }


@contextlib.contextmanager
def _servers(settings: Settings, mail: MailServer, count: int) -> Iterator[list[LiveServer]]:
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(running_server(settings, env=_mail_env(mail))) for _ in range(count)
        ]


async def _send(server: LiveServer, world: World, client_id: int, n: int) -> str:
    token = await world.token(world.provider, Role.PROVIDER)
    invoice = await server.change(
        SEND,
        token,
        clientId=str(encode_id("Client", client_id)),
        description=DESCRIPTION,
        amount=1_000 + n,
        idempotencyKey=f"email-{world.practice_id}-{n}",
    )
    number: str = invoice["number"]
    return number


async def test_an_invoice_sent_over_http_is_emailed_once(
    own_database: Services, mail_server: MailServer
) -> None:
    world = await make_world(own_database)
    with _servers(own_database.settings, mail_server, 1) as (server,):
        number = await _send(server, world, world.c1.id, 1)
        (delivery,) = await settled(own_database, world.practice_id)
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 1)
        (message,) = mail_server.mailbox.received()
    assert message["To"] == world.c1.email
    assert message["Message-ID"] == delivery.message_id
    assert number in message["Subject"]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert DESCRIPTION not in text
    assert f"{APP_URL}/notifications/unsubscribe?token=" in message["List-Unsubscribe"]


async def test_mail_server_away_with_server_processes_coming_and_going(
    own_database: Services, mail_server: MailServer
) -> None:
    world = await make_world(own_database)
    processes = 1 if own_database.db.is_sqlite else 2
    mail_server.stop()
    with _servers(own_database.settings, mail_server, processes) as servers:
        clients = [world.c1.id, world.c2.id, world.c1.id, world.c2.id]
        for n, client_id in enumerate(clients):
            await _send(servers[n % processes], world, client_id, n)
        waiting = await eventually(
            lambda: deliveries(own_database, world.practice_id),
            lambda rows: len(rows) == 4 and all(r.attempts >= 1 for r in rows),
        )
        assert {r.status for r in waiting} == {DeliveryStatus.PENDING}
        assert all(r.last_error for r in waiting)
        if processes == 2:
            servers[0].stop()  # maybe the runner: the other process takes over
        mail_server.start()
        done = await settled(own_database, world.practice_id)
        received = mail_server.mailbox.received()
        logs = "\n".join(s.log() for s in servers)
    assert {r.status for r in done} == {DeliveryStatus.SENT}, logs
    assert sorted(m["Message-ID"] for m in received) == sorted(r.message_id for r in done)
    assert len(received) == 4


async def test_a_reminder_reaches_the_clients_subscription(own_database: Services) -> None:
    """A server that starts catches up on reminders at once; the reminder is an alert like
    any other, so the client's invoiceAlerts subscription receives it."""
    world = await make_world(own_database)
    today = utcnow().astimezone(ZoneInfo("America/New_York")).date()
    # Sent two days ago, due tomorrow: today is its "1 day before" reminder.
    invoice_id = await world.invoice(world.c1, days_ago=2, due_date=today + timedelta(days=1))
    async with own_api_of(own_database) as api:
        admin = await world.token(world.admin, Role.ADMIN)
        configured = await api.data(
            CONFIGURE_REMINDERS, {"input": {"daysBeforeDue": [1], "daysAfterDue": []}}, admin
        )
        assert configured["configureReminders"]["errors"] == []
    client = await world.token(world.c1, Role.CLIENT)
    with running_server(own_database.settings) as server:
        inbox = await server.data(INBOX, token=client)
        kinds = [e["node"]["kind"] for e in inbox["alerts"]["edges"]]
        first = inbox["alerts"]["edges"][-1]["node"]
        assert first["kind"] == "INVOICE_SENT"
        async with subscribed(server, client, after=first["id"]) as socket_:
            alert = await socket_.next_alert(within=30)
    assert alert["kind"] == "INVOICE_REMINDER", kinds
    assert alert["invoice"]["id"] == str(encode_id("Invoice", invoice_id))
