"""payInvoice — a card payment through the practice's processor, never charged twice.

No lock is held while the processor is called. A payment goes in three steps:
1. claim: one transaction locks the invoice, checks who may pay and that it is payable, and
   commits an attempt holding the processor idempotency key, marked PROCESSING for a lease.
   A concurrent request finds that attempt in flight and gets CONFLICT, so the processor hears
   of the invoice once — even from a processor that ignores idempotency keys.
2. call: the processor is asked with the attempt's key.
3. settle: a second transaction locks the invoice again and records the answer (the rules are
   in `models.processing`, shared with the webhooks, so whoever reports first records it).
An attempt left open (the processor timed out, the customer must authenticate, a server died)
is resolved first by the next request: its payment is looked up, or its request replayed with
the same key and parameters, so the processor returns the first result instead of charging again.
So a retry that brings another card after an outage may end up paid by the first card (the one
the outage left in doubt) — never by both. A payment still waiting for 3-D Secure is cancelled
when the customer brings another card.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from adapters.payment_processor import (
    ChargeDeclined,
    ChargePending,
    ChargeRequest,
    ChargeRequiresAction,
    ChargeResult,
    ChargeSucceeded,
    PaymentProcessor,
    ProcessorRefused,
    ProcessorUnavailable,
    charge_refusal,
)
from models import PaymentAttempt, PaymentProcessorConfig
from models.base import utcnow
from models.errors import DomainError, ErrorCode, invalid_state, validation
from models.idempotency import Claim, claim_of, remember, replayed
from models.invoice import Operation, refusal
from models.permissions import check_may_perform
from models.processing import (
    AttemptStatus,
    Settlement,
    payment_metadata,
    settle_decline,
)
from models.scope import Viewer
from resolvers.payments.attempts import new_attempt, open_attempt
from resolvers.payments.card_refunds import RefundCall, give_back, refund_lease, take_or_return
from resolvers.payments.processors import (
    card_processor,
    processor_of,
    refused,
    unavailable,
)
from schema.context import Info, viewer_of
from schema.invoices import InvoicePayload, InvoiceType, PayInvoiceInput
from schema.node import encode_id
from schema.reads import locked_invoice

_PROCESSORS = "payment_processors"
# A processor's token for a card (pm_…, card_…, tok_…): letters, digits and underscores.
_TOKEN = re.compile(r"^[A-Za-z0-9_]{3,255}$")
# What a card number looks like; it must never reach us, let alone a log or a row.
_CARD_NUMBER = re.compile(r"^[0-9 -]{12,23}$")

_CONCURRENT = DomainError(
    ErrorCode.CONFLICT, "the invoice was changed by a concurrent request; read it and retry"
)


@dataclass(frozen=True)
class _Work:
    """What the claim step hands to the processor call."""

    invoice_id: int
    attempt_id: int
    processor: PaymentProcessor
    request: ChargeRequest  # the attempt's own request: replayed exactly as first sent
    reference: str | None  # the processor's id of the payment, when already known
    resolving: AttemptStatus | None  # the open attempt being resolved; None = a new attempt
    wanted_method: str  # the card this request brings


async def pay_invoice(info: Info, input: PayInvoiceInput) -> InvoicePayload:
    """The invoice's CLIENT pays what is due by card (a token from the processor's SDK)."""
    viewer = viewer_of(info)
    method = input.payment_method_id.strip()
    if _CARD_NUMBER.match(method):
        raise validation(
            "send the payment method id made by the processor's SDK, never a card number",
            "paymentMethodId",
        )
    if not _TOKEN.match(method):
        raise validation("not a payment method id", "paymentMethodId")
    claim = claim_of(
        viewer,
        "payInvoice",
        input.idempotency_key,
        {"invoiceId": input.invoice_id, "paymentMethodId": method},
    )
    # At most two rounds: resolve an attempt left open, then make this request's own.
    for _ in range(2):
        step = await _claim(info, viewer, input.invoice_id, method, claim)
        if isinstance(step, InvoicePayload):
            return step
        answer: ChargeResult | ProcessorUnavailable | ProcessorRefused
        try:
            answer = await _ask(step.processor, step)
        except (ProcessorUnavailable, ProcessorRefused) as error:
            answer = error
        payload = await _settle(info, viewer, step, answer, claim)
        if payload is not None:
            return payload
    raise _CONCURRENT


async def _claim(
    info: Info, viewer: Viewer, invoice_id: str, method: str, claim: Claim | None
) -> InvoicePayload | _Work:
    """Step 1: lock, authorise, and commit the attempt before anyone calls the processor."""
    now = utcnow()
    services = info.context.services
    # A request makes at most two calls (where an open payment stands, then cancel it).
    lease = timedelta(seconds=2 * services.processors.options.longest_call_seconds)
    try:
        async with info.context.db.writer() as session, session.begin():
            invoice = await locked_invoice(session, viewer, invoice_id)
            if await replayed(session, claim) is not None:
                return InvoicePayload(invoice=InvoiceType(row=invoice))
            check_may_perform(viewer, invoice, Operation.PAY)
            reason = refusal(Operation.PAY, invoice.amounts())
            if reason is not None:
                raise invalid_state(reason)
            config = await card_processor(session, invoice.practice_id)
            if config is None:
                raise DomainError(
                    ErrorCode.NOT_CONFIGURED, "this practice does not take card payments yet"
                )
            processor = processor_of(services, config)  # before anything is claimed
            attempt = await open_attempt(session, invoice.id)
            if attempt is not None and attempt.in_flight(now):
                raise DomainError(
                    ErrorCode.CONFLICT,
                    "a payment of this invoice is in progress; read the invoice in a moment",
                )
            if attempt is not None and attempt.processor_id != config.id:
                # Its processor was removed or replaced: the payment may still be open there
                # (3-D Secure, a lost answer). It is looked up — and cancelled if it waits for
                # the customer — with the kept credentials of the processor that made it.
                made_by = (
                    await session.get(PaymentProcessorConfig, attempt.processor_id)
                    if attempt.processor_id is not None
                    else None
                )
                if made_by is None:  # removed before processors were kept: nothing to ask
                    attempt.abandon("the payment processor was changed")
                    attempt = None
                else:
                    processor = processor_of(services, made_by)
            resolving = attempt.status if attempt is not None else None
            if attempt is None:
                due = invoice.amounts().due
                unchargeable = charge_refusal(config.type, due, invoice.currency)
                if unchargeable is not None:
                    # Refused before a new attempt exists: no amount is rounded, nothing sent
                    # (an open attempt is still resolved above: it asks, it never charges).
                    raise invalid_state(f"this invoice cannot be paid by card: {unchargeable}")
                attempt = await new_attempt(session, invoice, config, method, viewer)
            attempt.claim(now, lease)
            await session.flush()
            assert attempt.payment_method is not None
            request = ChargeRequest(
                amount=attempt.amount,
                currency=invoice.currency,
                payment_method=attempt.payment_method,
                idempotency_key=attempt.idempotency_key,
                description=f"Invoice {invoice.display_number}",
                metadata={
                    **payment_metadata(attempt),
                    "carebill_invoice_number": invoice.display_number,
                },
            )
            work = _Work(
                invoice_id=invoice.id,
                attempt_id=attempt.id,
                processor=processor,
                request=request,
                reference=attempt.processor_reference,
                resolving=resolving,
                wanted_method=method,
            )
    except (StaleDataError, IntegrityError):
        raise _CONCURRENT from None
    return work


async def _ask(processor: PaymentProcessor, work: _Work) -> ChargeResult:
    """Step 2: the only network part. Resolving an open attempt never makes a new payment."""
    if work.reference is not None:
        result = await processor.payment_status(work.reference)
    else:
        result = await processor.charge(work.request)  # new, or replayed with its own key
    if (
        isinstance(result, ChargeRequiresAction)
        and work.resolving is not None
        and work.request.payment_method != work.wanted_method
    ):
        # The customer brings another card: the one waiting for authentication is abandoned.
        result = await processor.cancel(result.reference)
    return result


def _superseded(work: _Work) -> bool:
    """The open attempt waited for 3-D Secure and the customer brings another card."""
    return (
        work.resolving is AttemptStatus.REQUIRES_ACTION
        and work.request.payment_method != work.wanted_method
    )


async def _settle(
    info: Info,
    viewer: Viewer,
    work: _Work,
    answer: ChargeResult | ProcessorUnavailable | ProcessorRefused,
    claim: Claim | None,
) -> InvoicePayload | None:
    """Step 3: record the answer. None = the open attempt is resolved, make a new one."""
    now = utcnow()
    error: DomainError | None = None
    payload: InvoicePayload | None = None
    to_return: RefundCall | None = None
    lease = refund_lease(info.context.services.processors.options)
    try:
        async with info.context.db.writer() as session, session.begin():
            invoice = await locked_invoice(session, viewer, encode_id("Invoice", work.invoice_id))
            attempt = await session.get_one(PaymentAttempt, work.attempt_id)
            done = InvoicePayload(invoice=InvoiceType(row=invoice))
            match answer:
                case ChargeSucceeded():
                    # A return owed is committed with this transaction, before it is made.
                    settled, to_return = await take_or_return(
                        session,
                        invoice,
                        attempt,
                        charge=answer,
                        actor_id=viewer.user_id,
                        lease=lease,
                    )
                    if settled is Settlement.NOT_PAYABLE:
                        error = DomainError(
                            ErrorCode.CONFLICT,
                            "the invoice was settled otherwise while the card was charged; "
                            "the charge is being returned to the card",
                        )
                    else:
                        remember(session, claim, invoice.id)
                        payload = done
                case ChargeDeclined(reason=reason, reference=reference) if _superseded(work):
                    # We cancelled it ourselves for the card this request brings: not a
                    # failure of the payment, and this request's own outcome is the one
                    # event and alert (one successful payInvoice, one event).
                    attempt.decline("replaced by another card", reference)
                case ChargeDeclined(reason=reason, reference=reference):
                    settle_decline(
                        invoice,
                        attempt,
                        reason=reason,
                        reference=reference,
                        actor_id=viewer.user_id,
                        now=now,
                    )
                    # Replaying this very request after an outage: its outcome is the answer.
                    # Otherwise the open attempt is now closed, and this request makes its own.
                    if work.resolving is None or (
                        work.resolving is not AttemptStatus.REQUIRES_ACTION
                        and work.request.payment_method == work.wanted_method
                    ):
                        error = DomainError(ErrorCode.PAYMENT_DECLINED, reason, "paymentMethodId")
                case ChargeRequiresAction(reference=reference, client_secret=secret):
                    attempt.await_customer(reference)
                    payload = InvoicePayload(
                        invoice=done.invoice, requires_action=True, payment_client_secret=secret
                    )
                case ChargePending(reference=reference):
                    attempt.unanswered(reference)
                    error = DomainError(
                        ErrorCode.PROCESSOR_UNAVAILABLE,
                        "the processor is still processing this payment; ask again in a moment",
                    )
                case ProcessorUnavailable():
                    if attempt.status is AttemptStatus.SUCCEEDED:
                        payload = done  # a webhook recorded it meanwhile
                    else:
                        # Keep its key: the next request replays it, never charging twice.
                        attempt.unanswered()
                        error = unavailable("charging the card")
                case ProcessorRefused():
                    attempt.refuse(answer.message)
                    error = refused(answer, "paymentMethodId")
    except (StaleDataError, IntegrityError):
        raise _CONCURRENT from None
    if to_return is not None:
        # Pending when the processor does not take it now: reconciliation tries it again.
        await give_back(info.context.db, work.processor, to_return)
    if error is not None:
        raise error
    return payload
