"""Reconciliation's look-ups: one unresolved attempt, or one card payment's refunds, asked of
the processor and settled through the same rules as our own requests and the webhooks
(`models.processing`, `models.refunding`, processor_refunds.py). What cannot be settled goes
into the run's `Report` for a person."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from adapters.payment_processor import (
    ChargeDeclined,
    ChargeRequiresAction,
    ChargeResult,
    ChargeSucceeded,
    PaymentProcessor,
)
from models import Invoice, Payment, PaymentAttempt, PaymentProcessorConfig, RefundAttempt
from models.base import utcnow
from models.processing import payment_metadata, settle_decline
from models.refunding import OPEN_REFUND, RefundStatus, settle_refund
from resolvers.payments.card_refunds import (
    RefundCall,
    claim_return,
    give_back,
    refund_lease,
    take_or_return,
)
from resolvers.payments.processor_refunds import record_refunds
from resolvers.payments.processors import processor_of
from schema.services import Services

# A payment looked up by its metadata is searched from a little before its attempt was made.
_CLOCK_SKEW = timedelta(minutes=10)


@dataclass
class Report:
    """What one run did, and what needs a person."""

    settled: list[str] = field(default_factory=list)
    needs_attention: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"settled: {s}" for s in self.settled] + [
            f"needs attention: {n}" for n in self.needs_attention
        ]


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


async def look_up_refund(services: Services, attempt: RefundAttempt, report: Report) -> None:
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
        elif row.updated_at == attempt.updated_at:  # else tried again since: that try tells
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
        report.needs_attention.append(failed_return(attempt))
    else:
        report.needs_attention.append(
            f"{what}: the processor did not answer; the return stays pending, tried again"
        )


def failed_return(attempt: RefundAttempt) -> str:
    return (
        f"return attempt {attempt.id} of invoice {attempt.invoice_id}: the processor did not "
        f"return charge {attempt.payment_reference} of {attempt.amount} "
        f"({attempt.failure_reason}); return it by hand"
    )


async def look_up_payment(services: Services, attempt: PaymentAttempt, report: Report) -> None:
    what = f"payment attempt {attempt.id} of invoice {attempt.invoice_id}"
    processor = await _processor(services, attempt.processor_id)
    if processor is None:
        report.needs_attention.append(f"{what}: its processor is gone; ask it by hand")
        return
    result: ChargeResult | None
    if attempt.processor_reference is not None:
        result = await processor.payment_status(attempt.processor_reference)
    else:
        # Our answer was lost before we learnt the payment's id: found by the metadata it
        # carries (a replay of its key would be a charge, never a look-up).
        result = await processor.find_payment(
            payment_metadata(attempt), attempt.created_at - _CLOCK_SKEW
        )
    to_return: RefundCall | None = None
    async with services.db.writer() as session, session.begin():
        invoice = await _locked(session, attempt.invoice_id)
        row = await session.get_one(PaymentAttempt, attempt.id)
        if row.ended or row.in_flight(utcnow()) or row.updated_at != attempt.updated_at:
            return  # settled, or tried again, since the look-up: that try tells
        if result is None:
            # Nobody is at the processor with it and the processor holds none: it never got
            # there. Closed without an event: nothing happened to the invoice.
            row.decline("the payment never reached the processor", None)
            report.settled.append(f"{what}: never reached the processor; closed")
        elif isinstance(result, ChargeSucceeded):
            settled, to_return = await take_or_return(
                session,
                invoice,
                row,
                charge=result,
                actor_id=row.created_by_id,
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
        elif isinstance(result, ChargeRequiresAction):
            row.await_customer(result.reference)
            report.settled.append(f"{what}: waiting for the customer ({result.reference})")
        else:
            row.found_at(result.reference)
            report.settled.append(f"{what}: still processing at the processor")
    if (
        to_return is not None
        and (await give_back(services.db, processor, to_return)) in OPEN_REFUND
    ):
        report.needs_attention.append(
            f"{what}: the charge could not be returned to the card yet; tried again"
        )


async def compare_refunds(services: Services, payment: Payment, report: Report) -> None:
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
    unknown = [r for r in theirs if r.succeeded and r.reference not in ours]
    if not unknown:
        return
    # Recorded as its webhook would have (it was lost, or has not come yet): one of our
    # attempts settles it, one made in the processor's dashboard is recorded within our cap.
    async with services.db.writer() as session, session.begin():
        locked = await _locked(session, payment.invoice_id)
        attempts = (
            await session.scalars(
                select(RefundAttempt).where(RefundAttempt.invoice_id == payment.invoice_id)
            )
        ).all()
        recorded = record_refunds(locked, payment.processor_reference, unknown, attempts)
    what = f"card payment {payment.id} of invoice {payment.invoice_id}: refund"
    for refund in recorded.settled:
        report.settled.append(
            f"{what} {refund.reference} of {refund.amount} at the processor recorded"
        )
    for refund, why in recorded.refused:
        report.needs_attention.append(
            f"{what} {refund.reference} of {refund.amount} at the processor is not recorded: {why}"
        )
