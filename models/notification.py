"""Notifications beyond the app: who is emailed about which alert, and what the email may say.

Every alert (models/alert.py) is a candidate. The dispatcher turns each committed alert into
one `NotificationDelivery` per recipient (see `recipients`), then sends them. What an email
says is the minimum necessary (HIPAA): the practice's name, what kind of news it is, the
invoice number and a link to sign in — never the service description, and the amount only
when the practice turned `include_amount` on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, EnumText, IdColumn, UTCDateTime, utcnow
from models.enums import AlertKind, DeliveryStatus
from models.errors import validation
from models.invoice import Amounts

EMAIL = "email"
# More reminder days than this per list is a mistake, not a schedule.
MAX_REMINDER_DAYS = 10
# Reminders further out than this are refused (a year either side of the due date).
MAX_REMINDER_OFFSET = 365


class NotificationPreference(Base):
    """A user's choices; a user without a row gets the defaults (email on, no opt-ins)."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    email_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Providers opt in to an email for each payment on their invoices.
    payment_received_emails: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PracticeNotificationSettings(Base):
    """A practice's reminder days and what its emails may show; no row = no reminders and
    no amounts."""

    __tablename__ = "practice_notification_settings"

    practice_id: Mapped[int] = mapped_column(
        ForeignKey("practices.id", ondelete="CASCADE"), primary_key=True
    )
    days_before_due: Mapped[list[int]] = mapped_column(JSON, default=list)
    days_after_due: Mapped[list[int]] = mapped_column(JSON, default=list)
    include_amount: Mapped[bool] = mapped_column(Boolean, default=False)


class NotificationDelivery(Base):
    """One alert to one recipient over one channel: written once, then sent until SENT or
    FAILED. `message_id` is fixed when the row is written, so every attempt carries the same
    Message-ID and a receiving server can recognise a repeat."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "user_id", "channel"),
        Index("ix_notification_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_notification_deliveries_practice_id_id", "practice_id", "id"),
    )

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16), default=EMAIL)
    kind: Mapped[AlertKind] = mapped_column(EnumText(AlertKind))
    recipient: Mapped[str] = mapped_column(String(254))
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[DeliveryStatus] = mapped_column(
        EnumText(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- who gets what -----------------------------------------------------------------------


class Audience(enum.StrEnum):
    CLIENT = "CLIENT"
    PROVIDER = "PROVIDER"


# What the invoice's client is told: a new invoice, receipts, a failed card, a refund and
# reminders. Forgiving or voiding an invoice asks nothing of the client.
CLIENT_KINDS = frozenset(
    {
        AlertKind.INVOICE_SENT,
        AlertKind.INVOICE_PAID,
        AlertKind.PAYMENT_RECORDED,
        AlertKind.PAYMENT_FAILED,
        AlertKind.INVOICE_REFUNDED,
        AlertKind.INVOICE_REMINDER,
    }
)
# What the invoice's provider is told when they opted in: payments received.
PROVIDER_KINDS = frozenset({AlertKind.INVOICE_PAID, AlertKind.PAYMENT_RECORDED})


@dataclass(frozen=True, slots=True)
class Person:
    """A possible recipient with their preferences."""

    user_id: int
    email: str
    email_enabled: bool = True
    payment_received_emails: bool = False


def recipients(kind: AlertKind, client: Person, provider: Person) -> list[tuple[Audience, Person]]:
    """Who is emailed about an alert of `kind` on an invoice of `client` by `provider`."""
    chosen: list[tuple[Audience, Person]] = []
    if kind in CLIENT_KINDS and client.email_enabled:
        chosen.append((Audience.CLIENT, client))
    if (
        kind in PROVIDER_KINDS
        and provider.email_enabled
        and provider.payment_received_emails
        and provider.user_id != client.user_id
    ):
        chosen.append((Audience.PROVIDER, provider))
    return chosen


def message_id(alert_id: int, user_id: int, mail_from: str) -> str:
    """The stable Message-ID of one alert's email to one user."""
    domain = mail_from.rsplit("@", 1)[-1].strip(" >") or "carebill.invalid"
    return f"<alert-{alert_id}.user-{user_id}@{domain}>"


def normalized_reminder_days(days: list[int], field: str) -> list[int]:
    """Reminder days as stored: distinct, ascending, each 1..365, at most 10 of them."""
    for day in days:
        if not 1 <= day <= MAX_REMINDER_OFFSET:
            raise validation(f"each day must be between 1 and {MAX_REMINDER_OFFSET}", field)
    distinct = sorted(set(days))
    if len(distinct) > MAX_REMINDER_DAYS:
        raise validation(f"at most {MAX_REMINDER_DAYS} reminder days", field)
    return distinct


# --- what an email says ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmailFacts:
    """Everything an email may draw on: nothing else is ever given to the templates."""

    kind: AlertKind
    audience: Audience
    practice_name: str
    invoice_number: str
    # Already in the practice's currency and time zone.
    amount: str | None
    due_date: date | None
    occurred_on: date
    sign_in_url: str
    unsubscribe_url: str


@dataclass(frozen=True, slots=True)
class EmailContent:
    subject: str
    headline: str
    lines: tuple[str, ...]


def _due_phrase(facts: EmailFacts) -> str:
    due = facts.due_date
    if due is None:
        return "is waiting for you"
    days = (due - facts.occurred_on).days
    when = due.strftime("%B %-d, %Y")
    if days > 1:
        return f"is due in {days} days, on {when}"
    if days == 1:
        return f"is due tomorrow, {when}"
    if days == 0:
        return f"is due today, {when}"
    return f"was due on {when}"


def amount_shown(kind: AlertKind, amounts: Amounts) -> int | None:
    """The figure an email of `kind` shows (when the practice allows amounts at all)."""
    if kind is AlertKind.INVOICE_SENT:
        return amounts.total
    if kind is AlertKind.INVOICE_REMINDER:
        return amounts.due
    if kind in (AlertKind.INVOICE_PAID, AlertKind.PAYMENT_RECORDED):
        return amounts.paid
    if kind is AlertKind.INVOICE_REFUNDED:
        return amounts.refunded
    return None


def compose(facts: EmailFacts) -> EmailContent:
    """The subject and sentences of one email: the minimum necessary."""
    practice, number, amount = facts.practice_name, facts.invoice_number, facts.amount
    kind = facts.kind
    if facts.audience is Audience.PROVIDER:
        so_far = f" (paid so far: {amount})" if amount else ""
        return EmailContent(
            subject=f"{practice}: payment received on invoice {number}",
            headline="A payment was received",
            lines=(f"A payment was recorded on invoice {number}{so_far}.",),
        )
    if kind is AlertKind.INVOICE_SENT:
        total = f" of {amount}" if amount else ""
        due = f" It {_due_phrase(facts)}." if facts.due_date else ""
        return EmailContent(
            subject=f"{practice}: you have a new invoice ({number})",
            headline="You have a new invoice",
            lines=(f"{practice} sent you invoice {number}{total}.{due}",),
        )
    if kind in (AlertKind.INVOICE_PAID, AlertKind.PAYMENT_RECORDED):
        so_far = f" (paid so far: {amount})" if amount else ""
        settled = " It is now paid in full." if kind is AlertKind.INVOICE_PAID else ""
        return EmailContent(
            subject=f"{practice}: receipt for invoice {number}",
            headline="Thank you: your payment was received",
            lines=(f"We received a payment on invoice {number}{so_far}.{settled}",),
        )
    if kind is AlertKind.PAYMENT_FAILED:
        return EmailContent(
            subject=f"{practice}: a payment on invoice {number} did not go through",
            headline="Your card payment did not go through",
            lines=(f"A card payment on invoice {number} was declined. Nothing was charged.",),
        )
    if kind is AlertKind.INVOICE_REFUNDED:
        so_far = f" (refunded so far: {amount})" if amount else ""
        return EmailContent(
            subject=f"{practice}: refund on invoice {number}",
            headline="You have a refund",
            lines=(f"{practice} made a refund on invoice {number}{so_far}.",),
        )
    if kind is AlertKind.INVOICE_REMINDER:
        due = f" ({amount} due)" if amount else ""
        return EmailContent(
            subject=f"{practice}: reminder about invoice {number}",
            headline="A reminder about your invoice",
            lines=(f"Invoice {number}{due} {_due_phrase(facts)}.",),
        )
    return EmailContent(
        subject=f"{practice}: news about invoice {number}",
        headline="There is news about your invoice",
        lines=(f"Invoice {number} has changed.",),
    )
