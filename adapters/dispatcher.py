"""The notification dispatcher: alert outbox → delivery rows → a channel, with retries.

Two steps, each durable before the next:

1. **Plan.** Committed alerts not yet planned (`alerts.planned_at IS NULL`) get one
   `NotificationDelivery` per recipient (models/notification.py `recipients`), written in the
   same transaction that sets `planned_at`: an alert is planned exactly once, and a crash
   before the commit only means it is planned again. Deliveries are written here rather than
   in the business transaction so that invoice mutations stay as they are (no extra reads of
   people and preferences under the invoice lock), and because the alert row is already the
   durable outbox: nothing can be lost between the two. Alerts older than `PLANNING_HORIZON`
   when first seen (email was off then) are planned without deliveries: no stale emails when
   email is switched on.
2. **Send.** PENDING deliveries whose `next_attempt_at` has come are rendered and handed to
   the channel. Accepted → SENT with `sent_at`, recorded at once. A connection failure, a
   timeout or a 4xx answer → still PENDING, `attempts` + 1, `last_error`, and the next attempt
   after an exponential backoff (1 s, 2 s, 4 s … up to `max_backoff`). A 5xx answer → FAILED
   with the server's reason. A delivery still failing a day after it was written → FAILED.

Only one process runs this (adapters/leadership.py), and a delivery leaves PENDING the moment
the channel accepted it, so a message is sent twice only if the process dies between the
server's acceptance and that write — and then it carries the same Message-ID, which lets the
receiving side recognise it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.clock import Clock
from adapters.crypto import Vault
from adapters.database import Database
from adapters.mail import DeliveryFailed, Notification, NotificationChannel
from adapters.mail_templates import render
from models import (
    Alert,
    Invoice,
    NotificationDelivery,
    NotificationPreference,
    Payment,
    Practice,
    PracticeNotificationSettings,
    Refund,
    User,
)
from models.enums import DeliveryStatus
from models.invoice import Amounts
from models.money import Money
from models.notification import (
    Audience,
    EmailFacts,
    Person,
    amount_shown,
    compose,
    message_id,
    recipients,
)
from models.reminders import local_date

log = logging.getLogger("carebill.dispatcher")

PLANNING_HORIZON = timedelta(days=1)
GIVE_UP_AFTER = timedelta(days=1)
UNSUBSCRIBE_PATH = "/notifications/unsubscribe"


def unsubscribe_token(vault: Vault, user_id: int) -> str:
    return f"{user_id}.{vault.link_signature(f'unsubscribe:{user_id}')}"


def unsubscribed_user(vault: Vault, token: str) -> int | None:
    """The user an unsubscribe token was signed for, or None for a forged or altered one."""
    user, _, signature = token.partition(".")
    if not user.isdigit() or len(user) > 12 or not signature:
        return None
    if not vault.link_signature_matches(f"unsubscribe:{user}", signature):
        return None
    return int(user)


@dataclass(frozen=True)
class MailSettings:
    mail_from: str
    app_url: str


class Dispatcher:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        channel: NotificationChannel,
        mail: MailSettings,
        clock: Clock,
        *,
        batch: int = 100,
        max_backoff: float = 300.0,
    ) -> None:
        self.db = db
        self.vault = vault
        self.channel = channel
        self.mail = mail
        self.clock = clock
        self.batch = batch
        self.max_backoff = max_backoff

    async def run_once(self) -> int:
        """Plan what was committed, then send what is due; how many deliveries were tried."""
        while await self.plan() == self.batch:
            pass
        tried = 0
        while (sent := await self.send_due()) > 0:
            tried += sent
            if sent < self.batch:
                break
        return tried

    # --- plan --------------------------------------------------------------------------

    async def plan(self) -> int:
        """Write the deliveries of one batch of unplanned alerts; how many alerts it held."""
        now = self.clock.now()
        unplanned = select(Alert.id).where(
            Alert.planned_at.is_(None), Alert.commit_seq.is_not(None)
        )
        async with self.db.reader() as session:
            # Usually nothing: look before taking a writer (on SQLite, the database's write lock).
            if (await session.execute(unplanned.limit(1))).first() is None:
                return 0
        async with self.db.writer() as session, session.begin():
            rows = (
                await session.execute(
                    select(Alert, Invoice.client_id, Invoice.provider_id)
                    .join(Invoice, Invoice.id == Alert.invoice_id)
                    .where(Alert.planned_at.is_(None), Alert.commit_seq.is_not(None))
                    .order_by(Alert.id)
                    .limit(self.batch)
                )
            ).all()
            if not rows:
                return 0
            people = await _people(session, {u for _a, c, p in rows for u in (c, p)})
            for alert, client_id, provider_id in rows:
                if alert.occurred_at < now - PLANNING_HORIZON:
                    continue
                for _audience, person in recipients(
                    alert.kind, people[client_id], people[provider_id]
                ):
                    session.add(
                        NotificationDelivery(
                            practice_id=alert.practice_id,
                            alert_id=alert.id,
                            user_id=person.user_id,
                            channel=self.channel.name,
                            kind=alert.kind,
                            recipient=person.email,
                            message_id=message_id(alert.id, person.user_id, self.mail.mail_from),
                            status=DeliveryStatus.PENDING,
                            attempts=0,
                            next_attempt_at=now,
                            created_at=now,
                        )
                    )
            await session.execute(
                update(Alert).where(Alert.id.in_([r[0].id for r in rows])).values(planned_at=now)
            )
        return len(rows)

    # --- send --------------------------------------------------------------------------

    async def send_due(self) -> int:
        """Try one batch of the deliveries whose time has come; how many were tried."""
        now = self.clock.now()
        async with self.db.reader() as session:
            due = list(
                (
                    await session.execute(
                        select(NotificationDelivery)
                        .where(
                            NotificationDelivery.status == DeliveryStatus.PENDING,
                            NotificationDelivery.next_attempt_at <= now,
                        )
                        .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
                        .limit(self.batch)
                    )
                ).scalars()
            )
        for delivery in due:
            await self._attempt(delivery)
        return len(due)

    async def _attempt(self, delivery: NotificationDelivery) -> None:
        notification = await self._notification(delivery)
        now = self.clock.now()
        values: dict[str, object] = {"attempts": delivery.attempts + 1}
        if notification is None:
            values.update(status=DeliveryStatus.FAILED, last_error="the recipient turned email off")
        else:
            try:
                await self.channel.deliver(notification)
            except DeliveryFailed as failure:
                values["last_error"] = failure.reason[:1000]
                if failure.permanent or now - delivery.created_at >= GIVE_UP_AFTER:
                    values["status"] = DeliveryStatus.FAILED
                    log.warning("delivery %s failed: %s", delivery.id, failure.reason)
                else:
                    wait = min(2.0**delivery.attempts, self.max_backoff)
                    values["next_attempt_at"] = now + timedelta(seconds=wait)
            else:
                values.update(status=DeliveryStatus.SENT, sent_at=now, last_error=None)
        async with self.db.writer() as session, session.begin():
            await session.execute(
                update(NotificationDelivery)
                .where(
                    NotificationDelivery.id == delivery.id,
                    NotificationDelivery.status == DeliveryStatus.PENDING,
                )
                .values(**values)
            )

    async def _notification(self, delivery: NotificationDelivery) -> Notification | None:
        """The rendered message, or None when the recipient has since turned email off."""
        async with self.db.reader() as session:
            alert, invoice, practice, settings, preference = (
                await session.execute(
                    select(
                        Alert,
                        Invoice,
                        Practice,
                        PracticeNotificationSettings,
                        NotificationPreference,
                    )
                    .join(Invoice, Invoice.id == Alert.invoice_id)
                    .join(Practice, Practice.id == Alert.practice_id)
                    .outerjoin(
                        PracticeNotificationSettings,
                        PracticeNotificationSettings.practice_id == Practice.id,
                    )
                    .outerjoin(
                        NotificationPreference,
                        NotificationPreference.user_id == delivery.user_id,
                    )
                    .where(Alert.id == delivery.alert_id)
                )
            ).one()
            if preference is not None and not preference.email_enabled:
                return None
            amount: str | None = None
            if settings is not None and settings.include_amount:
                figure = amount_shown(alert.kind, await _amounts(session, invoice))
                if figure is not None:
                    amount = Money(figure, invoice.currency).formatted()
        audience = Audience.CLIENT if delivery.user_id == invoice.client_id else Audience.PROVIDER
        token = unsubscribe_token(self.vault, delivery.user_id)
        facts = EmailFacts(
            kind=alert.kind,
            audience=audience,
            practice_name=practice.name,
            invoice_number=invoice.display_number,
            amount=amount,
            due_date=invoice.due_date,
            occurred_on=local_date(alert.occurred_at, practice.time_zone),
            sign_in_url=f"{self.mail.app_url}/",
            unsubscribe_url=f"{self.mail.app_url}{UNSUBSCRIBE_PATH}?token={token}",
        )
        content = compose(facts)
        text, html = render(content, facts)
        return Notification(
            to=delivery.recipient,
            subject=content.subject,
            text=text,
            html=html,
            message_id=delivery.message_id,
            unsubscribe_url=facts.unsubscribe_url,
        )


async def _people(session: AsyncSession, user_ids: set[int]) -> dict[int, Person]:
    rows = await session.execute(
        select(User.id, User.email, NotificationPreference)
        .outerjoin(NotificationPreference, NotificationPreference.user_id == User.id)
        .where(User.id.in_(user_ids))
    )
    people = {}
    for user_id, email, preference in rows.all():
        people[user_id] = Person(
            user_id=user_id,
            email=email,
            email_enabled=preference.email_enabled if preference else True,
            payment_received_emails=preference.payment_received_emails if preference else False,
        )
    return people


async def _amounts(session: AsyncSession, invoice: Invoice) -> Amounts:
    paid = await session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0)).where(Payment.invoice_id == invoice.id)
    )
    refunded = await session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(Refund.invoice_id == invoice.id)
    )
    return Amounts(
        total=invoice.total_amount,
        paid=int(paid or 0),
        refunded=int(refunded or 0),
        status=invoice.status,
    )
