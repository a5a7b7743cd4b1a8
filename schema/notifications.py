"""Notifications in the API: a viewer's preferences, a practice's reminders and email content,
and the deliveries an admin may inspect."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import NotificationDelivery as DeliveryRow
from models import NotificationPreference, PracticeNotificationSettings
from models.enums import DeliveryStatus
from schema.context import Info
from schema.enums import AlertKind
from schema.errors import UserError
from schema.node import encode_id
from schema.pagination import Page, PageInfo

strawberry.enum(DeliveryStatus)


@strawberry.type(description="How the viewer hears of alerts outside the app")
class NotificationPreferences:
    email_enabled: bool = strawberry.field(
        description="Email at all (every email's unsubscribe link turns it off)"
    )
    payment_received_emails: bool = strawberry.field(
        description="Providers: an email for each payment on their invoices (opt-in)"
    )

    @classmethod
    def of(cls, row: NotificationPreference | None) -> NotificationPreferences:
        if row is None:
            return cls(email_enabled=True, payment_received_emails=False)
        return cls(
            email_enabled=row.email_enabled, payment_received_emails=row.payment_received_emails
        )


async def preferences_of(info: Info, user_id: int) -> NotificationPreferences:
    async with info.context.db.reader() as session:
        row = await session.get(NotificationPreference, user_id)
    return NotificationPreferences.of(row)


@strawberry.type(
    description="Days, counted in the practice's time zone, on which unpaid invoices are reminded"
)
class Reminders:
    days_before_due: list[int]
    days_after_due: list[int]


@strawberry.type(description="What the practice's notification emails may show")
class NotificationEmails:
    include_amount: bool = strawberry.field(
        description="Show the amount (otherwise only the practice, the invoice number and a link)"
    )


async def practice_settings(info: Info, practice_id: int) -> PracticeNotificationSettings:
    async with info.context.db.reader() as session:
        row = await session.get(PracticeNotificationSettings, practice_id)
    return row or PracticeNotificationSettings(
        practice_id=practice_id, days_before_due=[], days_after_due=[], include_amount=False
    )


@strawberry.input
class UpdateNotificationPreferencesInput:
    email_enabled: bool
    payment_received_emails: bool | None = strawberry.field(
        default=None, description="Omitted = unchanged"
    )


@strawberry.type
class NotificationPreferencesPayload:
    preferences: NotificationPreferences | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ConfigureRemindersInput:
    days_before_due: list[int] = strawberry.field(description="e.g. [3]; each 1..365, at most 10")
    days_after_due: list[int] = strawberry.field(
        description="e.g. [1, 7, 30]; each 1..365, at most 10"
    )


@strawberry.input
class ConfigureNotificationEmailsInput:
    include_amount: bool


@strawberry.type(
    name="NotificationDelivery", description="One alert emailed (or to be emailed) to one person"
)
class NotificationDeliveryType:
    row: strawberry.Private[DeliveryRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return encode_id("NotificationDelivery", self.row.id)

    @strawberry.field(description="The email address it goes to")
    def recipient(self) -> str:
        return self.row.recipient

    @strawberry.field
    def kind(self) -> AlertKind:
        return self.row.kind

    @strawberry.field
    def status(self) -> DeliveryStatus:
        return self.row.status

    @strawberry.field
    def attempts(self) -> int:
        return self.row.attempts

    @strawberry.field(description="Why the last attempt failed (the mail server's answer)")
    def last_error(self) -> str | None:
        return self.row.last_error

    @strawberry.field
    def sent_at(self) -> datetime | None:
        return self.row.sent_at

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(description="The next attempt while PENDING")
    def next_attempt_at(self) -> datetime | None:
        return self.row.next_attempt_at if self.row.status is DeliveryStatus.PENDING else None

    @strawberry.field(description="The email's Message-ID, the same on every attempt")
    def message_id(self) -> str:
        return self.row.message_id


@strawberry.type
class NotificationDeliveryEdge:
    cursor: str
    node: NotificationDeliveryType


@strawberry.type(description="Deliveries, newest first")
class NotificationDeliveryConnection:
    edges: list[NotificationDeliveryEdge]
    page_info: PageInfo
    total_count: int

    @classmethod
    def of(cls, page: Page[DeliveryRow]) -> NotificationDeliveryConnection:
        return cls(
            edges=[
                NotificationDeliveryEdge(cursor=c, node=NotificationDeliveryType(row=r))
                for c, r in page.items
            ],
            page_info=PageInfo.of(page),
            total_count=page.total_count,
        )
