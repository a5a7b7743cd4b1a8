"""refundInvoice — refunds recorded payments, the card portion through the processor, never
refunded twice and with no database lock held while the processor answers.

A refund with a card portion goes in three steps (the rules are in `models.refunding`):
1. claim: one short transaction locks the invoice, checks who may refund and how much is
   refundable (what open attempts reserve is not), and commits a `RefundAttempt` with its own
   processor idempotency key and the caller's key;
2. call: the processor is asked with the attempt's key — or, for an attempt left open (a lost
   answer, a crash), first asked whether it already holds a refund carrying the attempt's
   metadata, and only then replayed with the same key;
3. settle: a second short transaction records the refund (rows, one event, one alert) — unless
   the processor's webhook recorded it first, which settles the same attempt.
A retry with the caller's idempotency key finds its attempt: it answers the first outcome, or
resolves the attempt still open, and never makes a second refund. A refund with no card portion
is recorded in one transaction, as other invoice changes are.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from adapters.payment_processor import (
    PaymentProcessor,
    ProcessorRefused,
    ProcessorUnavailable,
    RefundResult,
)
from models import Invoice, Payment, PaymentProcessorConfig, RefundAttempt
from models.base import utcnow
from models.enums import PaymentMethodKind
from models.errors import DomainError, ErrorCode, validation
from models.idempotency import Claim, claim_of, remember, replayed
from models.invoice import Operation
from models.permissions import check_may_perform
from models.refunding import OPEN_REFUND, RefundKind, RefundStatus, reserved_by, settle_refund
from models.scope import Viewer
from resolvers.payments.card_refunds import RefundCall, ask, refund_lease
from resolvers.payments.processors import processor_of, refused
from schema.context import Info, viewer_of
from schema.invoices import InvoicePayload, InvoiceType, RefundInvoiceInput
from schema.node import encode_id
from schema.reads import locked_invoice

_CONCURRENT = DomainError(
    ErrorCode.CONFLICT, "the invoice was changed by a concurrent request; read it and retry"
)


@dataclass(frozen=True)
class _Work:
    """What the claim step hands to the processor call."""

    processor: PaymentProcessor
    call: RefundCall
    own: bool  # this request's own attempt (not one left open by another request)


async def refund_invoice(info: Info, input: RefundInvoiceInput) -> InvoicePayload:
    """Refund recorded payments of a PAID invoice, partly or wholly."""
    viewer = viewer_of(info)
    reason = input.reason.strip() if input.reason else ""
    if not reason:
        raise validation("a reason is required to refund", "reason")
    if len(reason) > 1000:
        raise validation("reason must be at most 1000 characters", "reason")
    claim = claim_of(
        viewer,
        "refundInvoice",
        input.idempotency_key,
        {"invoiceId": input.invoice_id, "amount": input.amount, "reason": reason},
    )
    # At most: resolve an attempt another request left open, then make (or resolve) our own.
    for _ in range(3):
        step = await _claim(info, viewer, input, reason, claim)
        if isinstance(step, InvoicePayload):
            return step
        answer: RefundResult | ProcessorUnavailable | ProcessorRefused
        try:
            answer = await ask(step.processor, step.call)
        except (ProcessorUnavailable, ProcessorRefused) as error:
            answer = error
        payload = await _settle(info, viewer, step, answer, claim)
        if payload is not None:
            return payload
    raise _CONCURRENT


async def _attempts(session: AsyncSession, invoice_id: int) -> list[RefundAttempt]:
    return list(
        (
            await session.scalars(
                select(RefundAttempt)
                .where(
                    RefundAttempt.invoice_id == invoice_id,
                    # Returns of charges the invoice never took are not its refunds.
                    RefundAttempt.kind == RefundKind.REFUND,
                )
                .order_by(RefundAttempt.id)
            )
        ).all()
    )


async def _own_attempt(session: AsyncSession, claim: Claim | None) -> RefundAttempt | None:
    if claim is None:
        return None
    attempt = (
        await session.execute(
            select(RefundAttempt).where(
                RefundAttempt.practice_id == claim.practice_id,
                RefundAttempt.requested_by_id == claim.user_id,
                RefundAttempt.request_key == claim.key,
            )
        )
    ).scalar_one_or_none()
    if attempt is not None and attempt.request_hash != claim.request_hash:
        raise DomainError(
            ErrorCode.CONFLICT,
            "this idempotencyKey was already used with different input",
            "idempotencyKey",
        )
    return attempt


async def _claim(
    info: Info,
    viewer: Viewer,
    input: RefundInvoiceInput,
    reason: str,
    claim: Claim | None,
) -> InvoicePayload | _Work:
    """Step 1: lock, authorise, reserve — and commit the attempt before the processor hears."""
    now = utcnow()
    services = info.context.services
    lease = refund_lease(services.processors.options)
    try:
        async with info.context.db.writer() as session, session.begin():
            invoice = await locked_invoice(session, viewer, input.invoice_id)
            done = InvoicePayload(invoice=InvoiceType(row=invoice))
            if await replayed(session, claim) is not None:
                return done
            own = await _own_attempt(session, claim)
            if own is not None and own.invoice_id != invoice.id:
                raise DomainError(
                    ErrorCode.CONFLICT,
                    "this idempotencyKey was already used with different input",
                    "idempotencyKey",
                )
            if own is not None and own.status is RefundStatus.SUCCEEDED:
                remember(session, claim, invoice.id)
                return done
            if own is not None and own.status is RefundStatus.FAILED:
                raise _declined(own.failure_reason)
            check_may_perform(viewer, invoice, Operation.REFUND)
            attempts = await _attempts(session, invoice.id)
            if any(a.in_flight(now) for a in attempts):
                raise DomainError(
                    ErrorCode.CONFLICT,
                    "a refund of this invoice is in progress; read the invoice in a moment",
                )
            # Our own attempt first; else the oldest one left open by someone else.
            attempt = own or next((a for a in attempts if a.status in OPEN_REFUND), None)
            created = attempt is None
            if attempt is None:
                attempt = await _new_attempt(session, invoice, viewer, input, reason, claim)
                if attempt is None:  # no card portion: recorded already
                    remember(session, claim, invoice.id)
                    return done
            config = (
                await session.get(PaymentProcessorConfig, attempt.processor_id)
                if attempt.processor_id is not None
                else None
            )
            if config is None:
                raise DomainError(
                    ErrorCode.NOT_CONFIGURED,
                    "the processor that took this card payment is no longer configured",
                )
            processor = processor_of(services, config)
            attempt.claim(now, lease)
            await session.flush()
            work = _Work(
                processor=processor,
                call=RefundCall.of(attempt, resolving=not created),
                own=created or attempt is own,
            )
    except (StaleDataError, IntegrityError):
        raise _CONCURRENT from None
    return work


async def _new_attempt(
    session: AsyncSession,
    invoice: Invoice,
    viewer: Viewer,
    input: RefundInvoiceInput,
    reason: str,
    claim: Claim | None,
) -> RefundAttempt | None:
    """This request's refund: recorded at once when it has no card portion, else an attempt
    reserving its amount."""
    reserved = reserved_by(await _attempts(session, invoice.id))
    plan = invoice.refund_plan(input.amount, reserved)
    if any(_unreachable(payment) for payment, _ in plan):
        plan = _without_unreachable_cards(invoice, input.amount, reserved)
    cards = [
        (payment, part)
        for payment, part in plan
        if payment.method is PaymentMethodKind.CARD and payment.processor_reference is not None
    ]
    if not cards:
        invoice.refund(amount=input.amount, reason=reason, actor_id=viewer.user_id, plan=plan)
        return None
    if len(cards) > 1:
        # payInvoice takes what is due in one charge, so an invoice holds one card payment.
        raise validation("refund one card payment at a time", "amount")
    ((payment, card_amount),) = cards
    assert payment.processor_reference is not None
    attempt = RefundAttempt(
        practice_id=invoice.practice_id,
        invoice_id=invoice.id,
        payment_id=payment.id,
        processor_id=payment.processor_id,
        payment_reference=payment.processor_reference,
        plan={str(p.id): part for p, part in plan},
        amount=sum(part for _, part in plan),
        card_amount=card_amount,
        reason=reason,
        requested_by_id=viewer.user_id,
        request_key=claim.key if claim is not None else None,
        request_hash=claim.request_hash if claim is not None else None,
        # Random, never derived from amounts that change: a retry replays exactly this key.
        idempotency_key=f"carebill-refund-{invoice.id}-{secrets.token_hex(12)}",
        status=RefundStatus.PROCESSING,
    )
    session.add(attempt)
    await session.flush()
    return attempt


def _unreachable(payment: Payment) -> bool:
    """A card payment whose processor configuration was removed: it cannot go back to the card."""
    return payment.method is PaymentMethodKind.CARD and payment.processor_id is None


def _without_unreachable_cards(
    invoice: Invoice, amount: int | None, reserved: dict[int, int]
) -> list[tuple[Payment, int]]:
    """The refund taken from the other payments (cash, check…) when a card part cannot be
    given back; NOT_CONFIGURED when they do not cover it."""
    held = dict(reserved)
    for payment in invoice.payments:
        if _unreachable(payment):
            held[payment.id] = payment.amount
    try:
        return invoice.refund_plan(amount, held)
    except DomainError:
        raise DomainError(
            ErrorCode.NOT_CONFIGURED,
            "the card payment cannot be refunded: the processor that took it is no longer "
            "configured; refund it at the processor, or refund at most what was paid otherwise",
        ) from None


async def _settle(
    info: Info,
    viewer: Viewer,
    work: _Work,
    answer: RefundResult | ProcessorUnavailable | ProcessorRefused,
    claim: Claim | None,
) -> InvoicePayload | None:
    """Step 3: record the answer. None = an attempt left open was resolved, go on."""
    now = utcnow()
    error: DomainError | None = None
    payload: InvoicePayload | None = None
    try:
        async with info.context.db.writer() as session, session.begin():
            invoice = await locked_invoice(
                session, viewer, encode_id("Invoice", work.call.invoice_id)
            )
            attempt = await session.get_one(RefundAttempt, work.call.attempt_id)
            done = InvoicePayload(invoice=InvoiceType(row=invoice))
            match answer:
                case RefundResult(reference=reference):
                    settle_refund(invoice, attempt, reference=reference, now=now)
                case ProcessorRefused():
                    attempt.fail(answer.message)
                case ProcessorUnavailable():
                    attempt.unanswered()
            if attempt.status is RefundStatus.SUCCEEDED:
                if work.own:
                    remember(session, claim, invoice.id)
                    payload = done
            elif attempt.status is RefundStatus.FAILED:
                if work.own:
                    error = (
                        refused(answer, None)
                        if isinstance(answer, ProcessorRefused) and answer.credentials
                        else _declined(attempt.failure_reason)
                    )
            else:
                error = _pending()
    except (StaleDataError, IntegrityError):
        raise _CONCURRENT from None
    if error is not None:
        raise error
    return payload


def _declined(reason: str | None) -> DomainError:
    return DomainError(
        ErrorCode.PAYMENT_DECLINED,
        f"the processor refused the refund: {reason or 'no reason given'}",
    )


def _pending() -> DomainError:
    return DomainError(
        ErrorCode.PROCESSOR_UNAVAILABLE,
        "the payment processor did not answer while refunding the card; the refund is kept "
        "as pending (its amount is not refundable again) until the processor tells. Retrying "
        "with the same idempotencyKey is safe: the refund is never carried out twice",
    )
