"""Reconciliation: every attempt left unresolved is looked up at its processor and settled,
and the processor's refunds of our card payments are compared with our rows.

Run by `carebill reconcile [--practice ID] [--since DATE]` and periodically by the server
(`Reconciler`, one runner at a time across processes: a PostgreSQL advisory lock, or a lock
file beside the SQLite database). It settles what it can through the same rules as our own
requests and the webhooks (`models.processing`, `models.refunding`) and reports what needs a
person. It never makes a new charge or refund: a refund attempt the processor never received
is marked failed (its reservation released), and the caller may refund again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from adapters.payment_processor import (
    ChargeDeclined,
    ChargeResult,
    ChargeSucceeded,
    PaymentProcessor,
    ProcessorRefused,
    ProcessorUnavailable,
)
from models import Invoice, Payment, PaymentAttempt, PaymentProcessorConfig, RefundAttempt
from models.base import utcnow
from models.enums import PaymentMethodKind
from models.errors import DomainError
from models.processing import OPEN_ATTEMPT, Settlement, settle_decline, settle_success
from models.refunding import OPEN_REFUND, RefundKind, RefundStatus, settle_refund
from resolvers.payments.card_refunds import (
    RefundCall,
    claim_return,
    give_back,
    owe_return,
    refund_lease,
)
from resolvers.payments.processors import processor_of
from schema.services import Services

log = logging.getLogger("carebill.reconcile")

# Any constant shared by every CareBill process on one PostgreSQL database.
_ADVISORY_LOCK = 0x0CA8EB11


@dataclass
class Report:
    """What one run did, and what needs a person."""

    settled: list[str] = field(default_factory=list)
    needs_attention: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"settled: {s}" for s in self.settled] + [
            f"needs attention: {n}" for n in self.needs_attention
        ]


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
            await _guard(report, f"refund attempt {refund.id}", _refund(services, refund, report))
    for attempt in open_payments:
        if not attempt.in_flight(now):
            await _guard(
                report, f"payment attempt {attempt.id}", _payment(services, attempt, report)
            )
    for payment in card_payments:
        await _guard(report, f"card payment {payment.id}", _compare(services, payment, report))
    # A charge the processor refused to give back stays with the practice: a person decides.
    report.needs_attention.extend(_failed_return(r) for r in unreturned)
    return report


async def _guard(report: Report, what: str, work: Awaitable[None]) -> None:
    try:
        await work
    except (ProcessorUnavailable, ProcessorRefused, DomainError) as error:
        report.needs_attention.append(f"{what}: the processor could not be asked ({error})")


async def _processor(services: Services, processor_id: int | None) -> PaymentProcessor | None:
    if processor_id is None:
        return None
    async with services.db.reader() as session:
        config = await session.get(PaymentProcessorConfig, processor_id)
    return processor_of(services, config) if config is not None else None


async def _locked(session: AsyncSession, invoice_id: int) -> Invoice:
    return (
        await session.execute(
            select(Invoice)
            .where(Invoice.id == invoice_id)
            .options(selectinload(Invoice.payments), selectinload(Invoice.refunds))
            .with_for_update(of=Invoice)
        )
    ).scalar_one()


async def _refund(services: Services, attempt: RefundAttempt, report: Report) -> None:
    processor = await _processor(services, attempt.processor_id)
    what = f"{attempt.kind.value.lower()} attempt {attempt.id} of invoice {attempt.invoice_id}"
    if processor is None:
        report.needs_attention.append(f"{what}: its processor is gone; ask it by hand")
        return
    if attempt.is_return:
        await _return(services, processor, attempt, what, report)
        return
    found = next(
        (
            r
            for r in await processor.refunds(attempt.payment_reference)
            if r.metadata.get("carebill_refund_attempt") == str(attempt.id)
        ),
        None,
    )
    async with services.db.writer() as session, session.begin():
        invoice = await _locked(session, attempt.invoice_id)
        row = await session.get_one(RefundAttempt, attempt.id)
        if not row.open or row.in_flight(utcnow()):
            return
        if found is not None and found.succeeded:
            settle_refund(invoice, row, reference=found.reference, now=utcnow())
            report.settled.append(f"{what}: refunded at the processor as {found.reference}")
        elif found is not None:
            row.fail("the refund failed at the processor")
            report.settled.append(f"{what}: failed at the processor")
        else:
            row.fail("the refund never reached the processor")
            report.settled.append(f"{what}: never reached the processor; released")


async def _return(
    services: Services,
    processor: PaymentProcessor,
    attempt: RefundAttempt,
    what: str,
    report: Report,
) -> None:
    """A return is owed: looked up, and made with its own key when the processor holds none."""
    lease = refund_lease(services.processors.options)
    async with services.db.writer() as session, session.begin():
        await _locked(session, attempt.invoice_id)
        row = await session.get_one(RefundAttempt, attempt.id)
        call = claim_return(row, utcnow(), lease)
    if call is None:
        return
    status = await give_back(services.db, processor, call)
    if status is RefundStatus.SUCCEEDED:
        report.settled.append(f"{what}: charge {attempt.payment_reference} returned to the card")
    elif status is RefundStatus.FAILED:
        report.needs_attention.append(_failed_return(attempt))
    else:
        report.needs_attention.append(
            f"{what}: the processor did not answer; the return stays pending, tried again"
        )


def _failed_return(attempt: RefundAttempt) -> str:
    return (
        f"return attempt {attempt.id} of invoice {attempt.invoice_id}: the processor did not "
        f"return charge {attempt.payment_reference} of {attempt.amount} "
        f"({attempt.failure_reason}); return it by hand"
    )


async def _payment(services: Services, attempt: PaymentAttempt, report: Report) -> None:
    what = f"payment attempt {attempt.id} of invoice {attempt.invoice_id}"
    processor = await _processor(services, attempt.processor_id)
    if processor is None or attempt.processor_reference is None:
        # No payment id: only a replay of its key could tell, and that is a charge — left to
        # the client's next payInvoice (which replays it) or a person.
        report.needs_attention.append(f"{what}: unresolved, no payment id known at the processor")
        return
    result: ChargeResult = await processor.payment_status(attempt.processor_reference)
    to_return: RefundCall | None = None
    async with services.db.writer() as session, session.begin():
        invoice = await _locked(session, attempt.invoice_id)
        row = await session.get_one(PaymentAttempt, attempt.id)
        if row.ended or row.in_flight(utcnow()):
            return
        if isinstance(result, ChargeSucceeded):
            settled = settle_success(
                invoice,
                row,
                reference=result.reference,
                amount=result.amount,
                actor_id=row.created_by_id,
                now=utcnow(),
            )
            if settled is Settlement.NOT_PAYABLE:
                to_return = await owe_return(
                    session,
                    invoice_id=invoice.id,
                    processor_id=row.processor_id,
                    charge=result.reference,
                    amount=result.amount,
                    lease=refund_lease(services.processors.options),
                )
            report.settled.append(f"{what}: {settled.value}")
        elif isinstance(result, ChargeDeclined):
            settle_decline(
                invoice,
                row,
                reason=result.reason,
                reference=result.reference,
                actor_id=row.created_by_id,
                now=utcnow(),
            )
            report.settled.append(f"{what}: declined at the processor")
    if (
        to_return is not None
        and (await give_back(services.db, processor, to_return)) in OPEN_REFUND
    ):
        report.needs_attention.append(
            f"{what}: the charge could not be returned to the card yet; tried again"
        )


async def _compare(services: Services, payment: Payment, report: Report) -> None:
    """The processor's refunds of a card payment that CareBill has not recorded."""
    processor = await _processor(services, payment.processor_id)
    if processor is None:
        report.needs_attention.append(
            f"card payment {payment.id} of invoice {payment.invoice_id}: its processor is gone"
        )
        return
    assert payment.processor_reference is not None
    theirs = await processor.refunds(payment.processor_reference)
    async with services.db.reader() as session:
        ours = set(
            (
                await session.scalars(
                    select(RefundAttempt.processor_reference).where(
                        RefundAttempt.payment_id == payment.id
                    )
                )
            ).all()
        )
        invoice = (
            await session.execute(
                select(Invoice)
                .where(Invoice.id == payment.invoice_id)
                .options(selectinload(Invoice.refunds))
            )
        ).scalar_one()
    ours |= {r.processor_reference for r in invoice.refunds}
    for refund in theirs:
        if refund.succeeded and refund.reference not in ours:
            report.needs_attention.append(
                f"card payment {payment.id} of invoice {payment.invoice_id}: refund "
                f"{refund.reference} of {refund.amount} at the processor is not recorded"
            )


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
