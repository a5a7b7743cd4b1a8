"""Reconciliation: every attempt left unresolved is looked up at its processor and settled,
and the processor's refunds of our card payments are compared with our rows.

Run by `carebill reconcile [--practice ID] [--since DATE]` and periodically by the server
(`Reconciler`, one runner at a time across processes: a PostgreSQL advisory lock, or a lock
file beside the SQLite database). It settles what it can through the same rules as our own
requests and the webhooks (`models.processing`, `models.refunding`) and reports what needs a
person (the look-ups are in lookups.py). The only money it moves is a return owed (a charge
the invoice could not take, looked up first, then made with its own key): a refund attempt
the processor never received is marked failed (its reservation released, and the caller may
refund again), a payment attempt it never received is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from adapters.payment_processor import ProcessorRefused, ProcessorUnavailable
from models import Invoice, Payment, PaymentAttempt, RefundAttempt
from models.base import utcnow
from models.enums import PaymentMethodKind
from models.errors import DomainError
from models.processing import OPEN_ATTEMPT
from models.refunding import OPEN_REFUND, RefundKind, RefundStatus
from resolvers.payments.lookups import (
    Report,
    compare_refunds,
    failed_return,
    look_up_payment,
    look_up_refund,
)
from schema.services import Services

log = logging.getLogger("carebill.reconcile")

# Any constant shared by every CareBill process on one PostgreSQL database.
_ADVISORY_LOCK = 0x0CA8EB11


async def reconcile(
    services: Services, *, practice_id: int | None = None, since: datetime | None = None
) -> Report:
    """Look up every unresolved attempt (of a practice, created since a time) and compare the
    processor's refunds of our card payments with our rows."""
    report = Report()
    now = utcnow()
    refunds = select(RefundAttempt).where(RefundAttempt.status.in_(OPEN_REFUND))
    failed_returns = select(RefundAttempt).where(
        RefundAttempt.kind == RefundKind.RETURN, RefundAttempt.status == RefundStatus.FAILED
    )
    payments = select(PaymentAttempt).where(PaymentAttempt.status.in_(OPEN_ATTEMPT))
    cards = select(Payment).where(
        Payment.method == PaymentMethodKind.CARD, Payment.processor_reference.is_not(None)
    )
    if practice_id is not None:
        in_practice = select(Invoice.id).where(Invoice.practice_id == practice_id)
        refunds = refunds.where(RefundAttempt.invoice_id.in_(in_practice))
        failed_returns = failed_returns.where(RefundAttempt.invoice_id.in_(in_practice))
        payments = payments.where(PaymentAttempt.invoice_id.in_(in_practice))
        cards = cards.where(Payment.invoice_id.in_(in_practice))
    if since is not None:
        refunds = refunds.where(RefundAttempt.created_at >= since)
        failed_returns = failed_returns.where(RefundAttempt.created_at >= since)
        payments = payments.where(PaymentAttempt.created_at >= since)
        cards = cards.where(Payment.created_at >= since)
    async with services.db.reader() as session:
        open_refunds = list((await session.scalars(refunds.order_by(RefundAttempt.id))).all())
        unreturned = list((await session.scalars(failed_returns.order_by(RefundAttempt.id))).all())
        open_payments = list((await session.scalars(payments.order_by(PaymentAttempt.id))).all())
        card_payments = list((await session.scalars(cards.order_by(Payment.id))).all())
    for refund in open_refunds:
        if not refund.in_flight(now):
            await _guard(
                report, f"refund attempt {refund.id}", look_up_refund(services, refund, report)
            )
    for attempt in open_payments:
        if not attempt.in_flight(now):
            await _guard(
                report, f"payment attempt {attempt.id}", look_up_payment(services, attempt, report)
            )
    for payment in card_payments:
        await _guard(
            report, f"card payment {payment.id}", compare_refunds(services, payment, report)
        )
    # A charge the processor refused to give back stays with the practice: a person decides.
    report.needs_attention.extend(failed_return(r) for r in unreturned)
    return report


async def _guard(report: Report, what: str, work: Awaitable[None]) -> None:
    try:
        await work
    except (ProcessorUnavailable, ProcessorRefused, DomainError) as error:
        report.needs_attention.append(f"{what}: the processor could not be asked ({error})")


# --- the periodic job ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def sole_runner(services: Services) -> AsyncIterator[bool]:
    """True when this process may run reconciliation now (no other process is)."""
    db = services.db
    if not db.is_sqlite:
        async with db.engine.connect() as conn:
            got = bool(
                (
                    await conn.execute(
                        text("SELECT pg_try_advisory_lock(:k)"), {"k": _ADVISORY_LOCK}
                    )
                ).scalar_one()
            )
            try:
                yield got
            finally:
                if got:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_LOCK})
        return
    database = make_url(db.url).database or ""
    path = Path(f"{database}.reconcile.lock") if database and database != ":memory:" else None
    if path is None:
        yield True
        return
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class Reconciler:
    """Runs `reconcile` every `interval` seconds in the server, one process at a time."""

    def __init__(self, services: Services, interval: float) -> None:
        self._services = services
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._interval > 0:
            self._task = asyncio.create_task(self._run(), name="carebill-reconcile")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                async with sole_runner(self._services) as mine:
                    if mine:
                        report = await reconcile(self._services)
                        for line in report.lines():
                            log.warning("reconcile %s", line)
            except Exception:  # the job must outlive one bad run; the next one tries again
                log.exception("reconciliation failed")
