"""Notification settings and deliveries: `updateNotificationPreferences` (the viewer's own),
`configureReminders` and `configureNotificationEmails` (ADMIN), `notificationDeliveries`
(ADMIN, the practice's own, newest first)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import NotificationDelivery as DeliveryRow
from models import NotificationPreference, Practice, PracticeNotificationSettings
from models.base import utcnow
from models.enums import DeliveryStatus
from models.notification import normalized_reminder_days
from schema.context import Info, viewer_of
from schema.errors import bad_input
from schema.notifications import (
    ConfigureNotificationEmailsInput,
    ConfigureRemindersInput,
    NotificationDeliveryConnection,
    NotificationPreferences,
    NotificationPreferencesPayload,
    UpdateNotificationPreferencesInput,
)
from schema.pagination import Page, decode_cursor, encode_cursor, page_size
from schema.practice import PracticePayload, PracticeType


async def save_preferences(session: AsyncSession, user_id: int, **values: Any) -> None:
    """Insert or update one user's preferences (only the columns given change)."""
    is_sqlite = session.get_bind().dialect.name == "sqlite"
    insert = sqlite_insert if is_sqlite else pg_insert
    row = {"email_enabled": True, "payment_received_emails": False} | values
    await session.execute(
        insert(NotificationPreference)
        .values(user_id=user_id, updated_at=utcnow(), **row)
        .on_conflict_do_update(index_elements=["user_id"], set_={**values, "updated_at": utcnow()})
    )


async def update_notification_preferences(
    info: Info, input: UpdateNotificationPreferencesInput
) -> NotificationPreferencesPayload:
    viewer = viewer_of(info)
    values: dict[str, bool] = {"email_enabled": input.email_enabled}
    if input.payment_received_emails is not None:
        values["payment_received_emails"] = input.payment_received_emails
    async with info.context.db.writer() as session, session.begin():
        await save_preferences(session, viewer.user_id, **values)
        row = await session.get(NotificationPreference, viewer.user_id, populate_existing=True)
    return NotificationPreferencesPayload(preferences=NotificationPreferences.of(row))


async def _locked_settings(
    session: AsyncSession, practice_id: int
) -> tuple[Practice, PracticeNotificationSettings]:
    practice = (
        await session.execute(select(Practice).where(Practice.id == practice_id).with_for_update())
    ).scalar_one()
    settings = await session.get(PracticeNotificationSettings, practice_id)
    if settings is None:
        settings = PracticeNotificationSettings(
            practice_id=practice_id, days_before_due=[], days_after_due=[], include_amount=False
        )
        session.add(settings)
    return practice, settings


async def configure_reminders(info: Info, input: ConfigureRemindersInput) -> PracticePayload:
    """The days (before and after the due date) on which unpaid invoices are reminded."""
    viewer = viewer_of(info)  # ADMIN: declared where the mutation is (resolvers/root.py)
    before = normalized_reminder_days(input.days_before_due, "daysBeforeDue")
    after = normalized_reminder_days(input.days_after_due, "daysAfterDue")
    async with info.context.db.writer() as session, session.begin():
        practice, settings = await _locked_settings(session, viewer.practice_id)
        settings.days_before_due = before
        settings.days_after_due = after
    return PracticePayload(practice=PracticeType(row=practice))


async def configure_notification_emails(
    info: Info, input: ConfigureNotificationEmailsInput
) -> PracticePayload:
    """Whether the practice's emails show amounts."""
    viewer = viewer_of(info)  # ADMIN: declared where the mutation is (resolvers/root.py)
    async with info.context.db.writer() as session, session.begin():
        practice, settings = await _locked_settings(session, viewer.practice_id)
        settings.include_amount = input.include_amount
    return PracticePayload(practice=PracticeType(row=practice))


async def notification_deliveries(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    status: DeliveryStatus | None = None,
) -> NotificationDeliveryConnection:
    """ADMIN: the practice's notification deliveries, newest first, optionally by status."""
    viewer = viewer_of(info)  # ADMIN: declared where the field is (resolvers/root.py)
    limit = page_size(first, info.context.settings.max_page_size)
    conditions = [DeliveryRow.practice_id == viewer.practice_id]
    if status is not None:
        conditions.append(DeliveryRow.status == status)
    page = select(DeliveryRow).where(*conditions)
    if after is not None:
        (last_id,) = decode_cursor(after, 1)
        if isinstance(last_id, bool) or not isinstance(last_id, int) or not 0 < last_id < 2**31:
            raise bad_input("`after` is not a cursor this API gave out")
        page = page.where(DeliveryRow.id < last_id)
    page = page.order_by(DeliveryRow.id.desc()).limit(limit + 1)
    async with info.context.db.reader() as session:
        total = (await session.execute(select(func.count()).where(*conditions))).scalar_one()
        rows = list((await session.execute(page)).scalars())
    return NotificationDeliveryConnection.of(
        Page(
            items=[(encode_cursor([r.id]), r) for r in rows[:limit]],
            has_next_page=len(rows) > limit,
            total_count=int(total),
        )
    )
