"""Money back to the card: the processor call of a claimed refund attempt (shared by refunds and
returns), and the return of a charge an invoice could not take.

A return is a `RefundAttempt` of kind RETURN, committed (claimed) in the very transaction that
found the invoice could not take the charge — our own payInvoice, a webhook, a reconciliation —
then made outside any transaction with its own idempotency key, and settled by the answer, the
processor's refund webhook, or a later look-up (`carebill reconcile`), whoever learns first. One
charge has at most one return (a unique index), whoever finds it first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.database import Database
from adapters.payment_processor import (
    ChargeSucceeded,
    PaymentProcessor,
    ProcessorOptions,
    ProcessorRefused,
    ProcessorUnavailable,
    RefundResult,
)
from models import Invoice, PaymentAttempt, RefundAttempt
from models.base import utcnow
from models.processing import Settlement, settle_success
from models.refunding import RefundKind, RefundStatus, refund_metadata

log = logging.getLogger("carebill.payments")

# One call asks the processor up to three things, one after the other: whether it holds the
# refund already, the payment's currency, the refund itself. A claim's lease outlasts them all.
_REQUESTS_PER_CALL = 3


def refund_lease(options: ProcessorOptions) -> timedelta:
    """How long a claimed refund attempt is left to the request that claimed it."""
    return timedelta(seconds=_REQUESTS_PER_CALL * options.longest_call_seconds)


@dataclass(frozen=True)
class RefundCall:
    """What a claimed refund attempt asks of the processor."""

    attempt_id: int
    invoice_id: int
    payment_reference: str
    amount: int  # the card portion, in ISO 4217 minor units
    idempotency_key: str
    metadata: Mapping[str, str]
    resolving: bool  # left open before: look it up before replaying it

    @classmethod
    def of(cls, attempt: RefundAttempt, *, resolving: bool) -> RefundCall:
        return cls(
            attempt_id=attempt.id,
            invoice_id=attempt.invoice_id,
            payment_reference=attempt.payment_reference,
            amount=attempt.card_amount,
            idempotency_key=attempt.idempotency_key,
            metadata=dict(refund_metadata(attempt)),
            resolving=resolving,
        )


async def ask(processor: PaymentProcessor, call: RefundCall) -> RefundResult:
    """The only network part. An attempt left open is looked up before it is replayed: after
    24 hours the processor has forgotten the key, and a replay would give the money back twice."""
    if call.resolving:
        for found in await processor.refunds(call.payment_reference):
            if found.metadata.get("carebill_refund_attempt") == str(call.attempt_id):
                if not found.succeeded:
                    raise ProcessorRefused("the refund failed at the processor")
                return RefundResult(reference=found.reference, amount=found.amount)
    return await processor.refund(
        call.payment_reference, call.amount, call.idempotency_key, call.metadata
    )


async def take_or_return(
    session: AsyncSession,
    invoice: Invoice,
    attempt: PaymentAttempt,
    *,
    charge: ChargeSucceeded,
    actor_id: int | None,
    lease: timedelta,
    unreturned: int | None = None,
) -> tuple[Settlement, RefundCall | None]:
    """A charge the processor made for `attempt`: recorded on the invoice (locked) once, or,
    when the invoice cannot take it, owed back to the card — `unreturned` of it (all of it
    unless said), the return claimed in this transaction for the caller to make."""
    settled = settle_success(
        invoice,
        attempt,
        reference=charge.reference,
        amount=charge.amount,
        actor_id=actor_id,
        now=utcnow(),
    )
    if settled is not Settlement.NOT_PAYABLE:
        return settled, None
    owed = await owe_return(
        session,
        invoice,
        processor_id=attempt.processor_id,
        charge=charge.reference,
        amount=charge.amount if unreturned is None else unreturned,
        lease=lease,
    )
    return settled, owed


async def owe_return(
    session: AsyncSession,
    invoice: Invoice,
    *,
    processor_id: int | None,
    charge: str,
    amount: int,
    lease: timedelta,
) -> RefundCall | None:
    """In the transaction that found the invoice (locked) cannot take `charge`: its return,
    claimed for the caller to make once this transaction commits. A return that exists
    already is claimed again when still open and nobody is at the processor with it. None:
    nothing to call now (returned already, failed for a person, or being made)."""
    now = utcnow()
    existing = (
        await session.execute(
            select(RefundAttempt).where(
                RefundAttempt.kind == RefundKind.RETURN, RefundAttempt.payment_reference == charge
            )
        )
    ).scalar_one_or_none()
    if existing is None:
        if amount <= 0:
            return None
        attempt = RefundAttempt.returning(
            invoice, processor_id=processor_id, charge=charge, amount=amount
        )
        attempt.claim(now, lease)
        session.add(attempt)
        await session.flush()
        return RefundCall.of(attempt, resolving=False)
    return claim_return(existing, now, lease)


def claim_return(attempt: RefundAttempt, now: datetime, lease: timedelta) -> RefundCall | None:
    """A return left open, claimed again (its invoice locked); None when it needs no call."""
    if not attempt.open or attempt.in_flight(now):
        return None
    attempt.claim(now, lease)
    return RefundCall.of(attempt, resolving=True)


async def give_back(db: Database, processor: PaymentProcessor, call: RefundCall) -> RefundStatus:
    """Make a claimed return and settle the answer; the return's status afterwards. UNKNOWN:
    the processor did not answer, and it is tried again (the webhook's next delivery,
    `carebill reconcile`); FAILED: the processor refused it, a person must act."""
    answer: RefundResult | ProcessorUnavailable | ProcessorRefused
    try:
        answer = await ask(processor, call)
    except (ProcessorUnavailable, ProcessorRefused) as error:
        answer = error
    async with db.writer() as session, session.begin():
        # Settled under the invoice's lock, as every other report of the processor is.
        await session.execute(
            select(Invoice.id).where(Invoice.id == call.invoice_id).with_for_update()
        )
        attempt = await session.get_one(RefundAttempt, call.attempt_id)
        match answer:
            case RefundResult(reference=reference):
                attempt.succeed(reference)  # a return touches no row of the invoice
            case ProcessorRefused():
                attempt.fail(answer.message)
            case ProcessorUnavailable():
                attempt.unanswered()
        status = attempt.status
    if status is RefundStatus.SUCCEEDED:
        log.warning(
            "card payment %s returned: invoice %s was settled otherwise",
            call.payment_reference,
            call.invoice_id,
        )
    elif status is RefundStatus.FAILED:
        log.error(
            "card payment %s of invoice %s could not be returned (%s): return it by hand",
            call.payment_reference,
            call.invoice_id,
            attempt.failure_reason,
        )
    else:
        log.error(
            "card payment %s could not be returned yet for invoice %s: kept pending, tried "
            "again by the processor's next delivery or by reconciliation",
            call.payment_reference,
            call.invoice_id,
        )
    return status
