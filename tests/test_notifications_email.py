"""Email from the alert outbox, through a real SMTP server (aiosmtpd): what is sent, to whom,
exactly once, with which headers; retries while the server is away or answers 4xx; a final
failure on 5xx. The dispatcher runs on a clock the tests move, so no test waits for time."""

from __future__ import annotations

from datetime import timedelta

from models.enums import DeliveryStatus, Role
from schema.services import Services
from tests.api import Api
from tests.factories import World, make_world
from tests.notifications import (
    APP_URL,
    MAIL_FROM,
    MailServer,
    ManualClock,
    deliveries,
    dispatcher,
    headers,
)

DESCRIPTION = "Trauma-focused psychotherapy, 50 minutes"

PREFERENCES = """mutation($input: UpdateNotificationPreferencesInput!) {
  updateNotificationPreferences(input: $input) {
    preferences { emailEnabled paymentReceivedEmails } errors { code field message } } }"""
EMAIL_CONTENT = """mutation($input: ConfigureNotificationEmailsInput!) {
  configureNotificationEmails(input: $input) {
    practice { notificationEmails { includeAmount } } errors { code field message } } }"""
DELIVERIES = """query($status: DeliveryStatus, $first: Int, $after: String) {
  notificationDeliveries(status: $status, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { recipient kind status attempts lastError sentAt messageId } } } }"""


async def _world(services: Services) -> World:
    return await make_world(services)


async def test_a_sent_invoice_reaches_the_client_once_with_the_minimum_necessary(
    own_database: Services, mail_server: MailServer
) -> None:
    world = await _world(own_database)
    invoice_id = await world.invoice(world.c1, amount=12_345, description=DESCRIPTION)
    clock = ManualClock()
    sender = dispatcher(own_database, mail_server, clock)

    await sender.run_once()
    await sender.run_once()  # nothing left: nothing sent again

    (message,) = mail_server.mailbox.received()
    invoice = await world.load_invoice(invoice_id)
    (delivery,) = await deliveries(own_database, world.practice_id)
    seen = headers(message)
    assert seen["From"] == MAIL_FROM
    assert seen["To"] == world.c1.email
    assert seen["Message-ID"] == f"<alert-{delivery.alert_id}.user-{world.c1.id}@carebill.test>"
    practice_name = message["Subject"].split(":")[0]
    assert seen["Subject"] == f"{practice_name}: you have a new invoice ({invoice.display_number})"
    assert seen["List-Unsubscribe"].startswith(
        f"<{APP_URL}/notifications/unsubscribe?token={world.c1.id}."
    )
    assert seen["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # As sent: one <URL>, never folded into encoded words a mail client would not follow.
    (raw,) = mail_server.mailbox.raw
    link = f"List-Unsubscribe: <{APP_URL}/notifications/unsubscribe?token={world.c1.id}."
    assert link.encode() in raw
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for body in (text, html):
        assert invoice.display_number in body
        assert f"{APP_URL}/" in body
        assert "Trauma" not in body
        assert "psychotherapy" not in body
        assert "123.45" not in body  # amounts only when the practice allows them
    assert (delivery.status, delivery.attempts, delivery.sent_at) == (
        DeliveryStatus.SENT,
        1,
        clock.now(),
    )
    assert delivery.last_error is None


async def test_the_mail_server_away_delays_but_loses_and_doubles_nothing(
    own_database: Services, mail_server: MailServer
) -> None:
    world = await _world(own_database)
    await world.invoice(world.c1)
    await world.invoice(world.c2)
    clock = ManualClock()
    sender = dispatcher(own_database, mail_server, clock)
    mail_server.stop()

    await sender.run_once()
    waiting = await deliveries(own_database, world.practice_id)
    assert [(d.status, d.attempts) for d in waiting] == [(DeliveryStatus.PENDING, 1)] * 2
    assert all(d.last_error for d in waiting)
    await sender.run_once()  # the backoff has not passed: no new attempt
    assert [d.attempts for d in await deliveries(own_database, world.practice_id)] == [1, 1]
    clock.advance(seconds=1)
    await sender.run_once()
    assert [d.attempts for d in await deliveries(own_database, world.practice_id)] == [2, 2]

    mail_server.start()
    clock.advance(seconds=2)
    await sender.run_once()
    clock.advance(minutes=10)
    await sender.run_once()

    done = await deliveries(own_database, world.practice_id)
    assert [(d.status, d.attempts) for d in done] == [(DeliveryStatus.SENT, 3)] * 2
    received = mail_server.mailbox.received()
    assert sorted(m["Message-ID"] for m in received) == sorted(d.message_id for d in done)
    assert sorted(m["To"] for m in received) == sorted([world.c1.email, world.c2.email])


async def test_a_4xx_answer_is_retried_with_the_same_message_id(
    own_database: Services, mail_server: MailServer
) -> None:
    world = await _world(own_database)
    await world.invoice(world.c1)
    clock = ManualClock()
    sender = dispatcher(own_database, mail_server, clock)
    mail_server.mailbox.answer = "451 4.3.0 Mailbox busy, try again later"

    await sender.run_once()
    (delivery,) = await deliveries(own_database, world.practice_id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert delivery.last_error == "451 4.3.0 Mailbox busy, try again later"
    assert delivery.next_attempt_at == clock.now() + timedelta(seconds=1)

    mail_server.mailbox.answer = None
    clock.advance(seconds=1)
    await sender.run_once()
    (delivery,) = await deliveries(own_database, world.practice_id)
    (message,) = mail_server.mailbox.received()
    assert message["Message-ID"] == delivery.message_id
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.SENT,
        2,
        None,
    )


async def test_a_permanent_550_is_failed_with_the_reason(
    own_database: Services, mail_server: MailServer
) -> None:
    world = await _world(own_database)
    await world.invoice(world.c1)
    clock = ManualClock()
    sender = dispatcher(own_database, mail_server, clock)
    mail_server.mailbox.answer = "550 5.1.1 No such mailbox"

    await sender.run_once()
    clock.advance(hours=1)
    await sender.run_once()

    (delivery,) = await deliveries(own_database, world.practice_id)
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.FAILED,
        1,
        "550 5.1.1 No such mailbox",
    )
    assert delivery.sent_at is None
    assert mail_server.mailbox.received() == []


async def test_receipts_go_to_the_client_and_to_a_provider_who_opted_in(
    own_database: Services, own_api: Api, mail_server: MailServer
) -> None:
    world = await _world(own_database)
    provider = await world.token(world.provider, Role.PROVIDER)
    opted = await own_api.data(
        PREFERENCES, {"input": {"emailEnabled": True, "paymentReceivedEmails": True}}, provider
    )
    assert opted["updateNotificationPreferences"] == {
        "preferences": {"emailEnabled": True, "paymentReceivedEmails": True},
        "errors": [],
    }
    admin = await world.token(world.admin, Role.ADMIN)
    shown = await own_api.data(EMAIL_CONTENT, {"input": {"includeAmount": True}}, admin)
    assert shown["configureNotificationEmails"] == {
        "practice": {"notificationEmails": {"includeAmount": True}},
        "errors": [],
    }
    await world.invoice(world.c1, amount=5_000, paid=5_000)  # sent, then paid in full
    await world.invoice(world.c2, amount=7_000, forgive=True)  # nobody is emailed a write-off
    clock = ManualClock()
    await dispatcher(own_database, mail_server, clock).run_once()

    received = {(m["To"], m["Subject"].split(": ", 1)[1]) for m in mail_server.mailbox.received()}
    assert len(mail_server.mailbox.received()) == 4
    paid = [m for m in mail_server.mailbox.received() if "receipt" in m["Subject"]]
    assert len(paid) == 1
    assert "$50.00" in paid[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    numbers = sorted({s.rsplit(" ", 1)[-1].strip("()") for _to, s in received})
    first, second = numbers
    assert received == {
        (world.c1.email, f"you have a new invoice ({first})"),
        (world.c1.email, f"receipt for invoice {first}"),
        (world.provider.email, f"payment received on invoice {first}"),
        (world.c2.email, f"you have a new invoice ({second})"),
    }

    listed = await own_api.data(DELIVERIES, {"status": "SENT", "first": 3}, admin)
    connection = listed["notificationDeliveries"]
    assert connection["totalCount"] == 4
    assert connection["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["kind"] for e in connection["edges"]] == [
        "INVOICE_SENT",
        "INVOICE_PAID",
        "INVOICE_PAID",
    ]
    rest = await own_api.data(
        DELIVERIES, {"first": 3, "after": connection["pageInfo"]["endCursor"]}, admin
    )
    (last,) = rest["notificationDeliveries"]["edges"]
    assert last["node"] | {"sentAt": None, "messageId": None} == {
        "recipient": world.c1.email,
        "kind": "INVOICE_SENT",
        "status": "SENT",
        "attempts": 1,
        "lastError": None,
        "sentAt": None,
        "messageId": None,
    }
    failed = await own_api.data(DELIVERIES, {"status": "FAILED"}, admin)
    assert failed["notificationDeliveries"]["totalCount"] == 0


async def test_alerts_from_before_email_was_on_are_not_emailed(
    own_database: Services, mail_server: MailServer
) -> None:
    world = await _world(own_database)
    await world.invoice(world.c1)
    clock = ManualClock()
    clock.advance(days=2)  # email is switched on two days after the invoice was sent

    await dispatcher(own_database, mail_server, clock).run_once()

    assert await deliveries(own_database, world.practice_id) == []
    assert mail_server.mailbox.received() == []
