"""Invoice reminders: which one is due when — pure functions over dates in the practice's
time zone — and the record that makes each reminder happen at most once.

A reminder is named by its signed offset from the due date: -3 is "3 days before", 7 is "7
days after". Its day is `due_date + offset` in the practice's time zone, and from that day on
it is due, with three limits:

- a "before" reminder is never sent on or after the due date (it would be stale);
- a reminder whose day is not after the day the invoice was sent is not sent (the invoice's
  own email has just said it);
- after downtime several reminders may be due at once: only the latest is sent, the earlier
  ones are recorded as skipped, so a client gets one email, not a burst.

A reminder is not a change of the invoice, so it writes an INVOICE_REMINDER alert (seen by
subscriptions and emailed like any other) but no history event: "every successful mutation
appends one event" is about mutations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, ForeignKey, Integer, UniqueConstraint, and_
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IdColumn, UTCDateTime, utcnow
from models.enums import InvoiceStatus
from models.invoice import Invoice


class InvoiceReminder(Base):
    """A reminder of one invoice at one offset, sent (with its alert) or skipped."""

    __tablename__ = "invoice_reminders"
    __table_args__ = (UniqueConstraint("invoice_id", "offset_days"),)

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    offset_days: Mapped[int] = mapped_column(Integer)
    # NULL when skipped (a later reminder was due at the same time).
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def local_date(moment: datetime, time_zone: str) -> date:
    """The calendar day of `moment` in `time_zone`."""
    return moment.astimezone(ZoneInfo(time_zone)).date()


def is_overdue(status: InvoiceStatus, due: date | None, today: date) -> bool:
    """UNPAID and past its due date (a due date is the whole day, in the practice's zone)."""
    return status is InvoiceStatus.UNPAID and due is not None and due < today


def overdue_condition(today: date) -> ColumnElement[bool]:
    """`is_overdue` as SQL on `invoices`."""
    return and_(
        Invoice.status == InvoiceStatus.UNPAID,
        Invoice.due_date.is_not(None),
        Invoice.due_date < today,
    )


def offsets(days_before_due: Iterable[int], days_after_due: Iterable[int]) -> list[int]:
    return sorted({-d for d in days_before_due} | set(days_after_due))


@dataclass(frozen=True, slots=True)
class ReminderPlan:
    send: int | None
    skip: tuple[int, ...]


def plan_reminders(
    *, due: date, sent_on: date, today: date, configured: Iterable[int], done: Iterable[int]
) -> ReminderPlan:
    """What to do today for an unpaid invoice due on `due`, sent on `sent_on`, given the
    configured offsets and those already sent or skipped."""
    finished = set(done)
    ready = [
        offset
        for offset in sorted(set(configured) - finished)
        if sent_on < due + timedelta(days=offset) <= today and (offset > 0 or today < due)
    ]
    if not ready:
        return ReminderPlan(send=None, skip=())
    return ReminderPlan(send=ready[-1], skip=tuple(ready[:-1]))


def latest_due_date(today: date, days_before_due: Iterable[int]) -> date:
    """The latest due date that may have a reminder today (the furthest "before" reminder);
    any earlier unpaid invoice may still have an "after" one to catch up on."""
    return today + timedelta(days=max(days_before_due, default=0))
