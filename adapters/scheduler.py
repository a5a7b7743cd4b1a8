"""The reminder scheduler: an INVOICE_REMINDER alert for each reminder that has come due.

Each pass looks at every practice with reminder days, computes "today" in its time zone from
the injected clock, and asks models/reminders.py what each unpaid invoice with a due date needs
now. A reminder is written in one transaction with the invoice row locked and its status
checked again (so a payment committed meanwhile stops it), together with its
`invoice_reminders` row, whose unique (invoice, offset) key makes it happen at most once —
across restarts, and even if two processes ever ran a pass at the same time. A pass after
downtime catches up (see models/reminders.py for what it will not send late).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from adapters.clock import Clock
from adapters.database import Database
from models import Alert, Invoice, InvoiceReminder, Practice, PracticeNotificationSettings
from models.enums import AlertKind, InvoiceStatus
from models.reminders import ReminderPlan, latest_due_date, local_date, offsets, plan_reminders

log = logging.getLogger("carebill.scheduler")


class ReminderScheduler:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def run_once(self) -> int:
        """One pass over every practice; how many reminders it sent."""
        now = self.clock.now()
        async with self.db.reader() as session:
            practices = (
                await session.execute(
                    select(PracticeNotificationSettings, Practice.time_zone).join(
                        Practice, Practice.id == PracticeNotificationSettings.practice_id
                    )
                )
            ).all()
        sent = 0
        for settings, time_zone in practices:
            if settings.days_before_due or settings.days_after_due:
                sent += await self._practice(settings, time_zone, now)
        return sent

    async def _practice(
        self, settings: PracticeNotificationSettings, time_zone: str, now: datetime
    ) -> int:
        today = local_date(now, time_zone)
        configured = offsets(settings.days_before_due, settings.days_after_due)
        candidates = (
            select(Invoice.id, Invoice.due_date, Invoice.sent_at)
            .where(
                Invoice.practice_id == settings.practice_id,
                Invoice.status == InvoiceStatus.UNPAID,
                Invoice.due_date.is_not(None),
                Invoice.due_date <= latest_due_date(today, settings.days_before_due),
            )
            .order_by(Invoice.id)
        )
        async with self.db.reader() as session:
            invoices = (await session.execute(candidates)).all()
            done: dict[int, set[int]] = defaultdict(set)
            ids = [row[0] for row in invoices]
            if ids:
                for invoice_id, offset in await session.execute(
                    select(InvoiceReminder.invoice_id, InvoiceReminder.offset_days).where(
                        InvoiceReminder.invoice_id.in_(ids)
                    )
                ):
                    done[invoice_id].add(offset)
        sent = 0
        for invoice_id, due, sent_at in invoices:
            assert due is not None  # selected so
            plan = plan_reminders(
                due=due,
                sent_on=local_date(sent_at, time_zone),
                today=today,
                configured=configured,
                done=done[invoice_id],
            )
            if plan.send is not None and await self._remind(invoice_id, plan, now):
                sent += 1
        return sent

    async def _remind(self, invoice_id: int, plan: ReminderPlan, now: datetime) -> bool:
        assert plan.send is not None
        try:
            async with self.db.writer() as session, session.begin():
                invoice = (
                    await session.execute(
                        select(Invoice).where(Invoice.id == invoice_id).with_for_update()
                    )
                ).scalar_one()
                if invoice.status is not InvoiceStatus.UNPAID:
                    return False  # paid, forgiven or voided since the pass began
                alert = Alert(
                    practice_id=invoice.practice_id,
                    invoice_id=invoice.id,
                    kind=AlertKind.INVOICE_REMINDER,
                    occurred_at=now,
                )
                session.add(alert)
                await session.flush()
                session.add_all(
                    InvoiceReminder(invoice_id=invoice.id, offset_days=o, created_at=now)
                    for o in plan.skip
                )
                session.add(
                    InvoiceReminder(
                        invoice_id=invoice.id,
                        offset_days=plan.send,
                        alert_id=alert.id,
                        created_at=now,
                    )
                )
        except IntegrityError:
            log.info("reminder %s of invoice %s was already written", plan.send, invoice_id)
            return False
        return True
