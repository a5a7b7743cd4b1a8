"""Processor webhooks: `POST /webhooks/{processor type}/{PaymentProcessor id}`.

The signature is checked with that processor's own webhook secret on the raw body before
anything else; a bad one changes nothing (400). Each event id is handled once: it is stored in
the same transaction as its effect, and a repeat answers 200 without doing anything. Effects go
through the same settlement rules as payInvoice, so an event that arrives late, twice or out of
order records nothing twice, and a payment that succeeded while our own request timed out is
reconciled here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from adapters.payment_processor import (
    ChargeSucceeded,
    EventKind,
    InvalidSignature,
    MalformedEvent,
    PaymentProcessor,
    ProcessorEvent,
    ProcessorRefused,
    ProcessorUnavailable,
    RefundInfo,
)
from models import Invoice, PaymentAttempt, PaymentProcessorConfig
from models import WebhookEvent as HandledEvent
from models.base import utcnow
from models.enums import ProcessorType
from models.errors import DomainError
from models.processing import AttemptStatus, settle_decline
from models.refunding import OPEN_REFUND, RefundAttempt
from resolvers.payments.card_refunds import (
    RefundCall,
    give_back,
    owe_return,
    refund_lease,
    take_or_return,
)
from resolvers.payments.processor_refunds import record_refunds, refund_failed
from resolvers.payments.processors import processor_of
from schema.node import decode_id
from schema.services import Services

log = logging.getLogger("carebill.webhooks")


@dataclass(frozen=True)
class WebhookResponse:
    status: int
    body: dict[str, str]


def _answer(status: int, outcome: str) -> WebhookResponse:
    return WebhookResponse(status, {"status": outcome})


async def handle_webhook(
    services: Services,
    processor_type: str,
    processor_id: str,
    body: bytes,
    headers: Mapping[str, str],
) -> WebhookResponse:
    """Verify, then handle once. 2xx tells the processor to stop sending this event, 4xx
    that sending it again cannot help, 5xx that it should, later."""
    try:
        return await _verify_and_handle(services, processor_type, processor_id, body, headers)
    except (SQLAlchemyError, OSError):
        # The database is down (as /readyz says): nothing was stored, the processor retries.
        log.exception("webhook for processor %s: the database is unavailable", processor_id[:64])
        return _answer(503, "database unavailable, send again later")


async def _verify_and_handle(
    services: Services,
    processor_type: str,
    processor_id: str,
    body: bytes,
    headers: Mapping[str, str],
) -> WebhookResponse:
    kind = next((t for t in ProcessorType if t.value.lower() == processor_type), None)
    pk = decode_id(processor_id, "PaymentProcessor")
    if kind is None or pk is None:
        return _answer(404, "unknown processor")
    async with services.db.reader() as session:
        config = (
            await session.execute(
                select(PaymentProcessorConfig).where(
                    PaymentProcessorConfig.id == pk, PaymentProcessorConfig.type == kind
                )
            )
        ).scalar_one_or_none()
    if config is None:
        return _answer(404, "unknown processor")
    try:
        processor = processor_of(services, config)
        event = processor.parse_event(body, headers)
    except (InvalidSignature, DomainError):  # a bad signature, or unreadable credentials
        return _answer(400, "invalid signature")
    except MalformedEvent as malformed:
        log.warning("webhook for processor %s refused: %s", pk, malformed)
        return _answer(400, "malformed event")
    try:
        outcome = await _handle(services, config, processor, event)
    except ProcessorUnavailable:
        # Not stored as handled: the processor sends it again later.
        return _answer(503, "processor unavailable, send again later")
    except ProcessorRefused as refusal:
        # The processor refused to tell us more (its keys, an object it does not know):
        # not stored as handled, and sending it again cannot help until a person acts.
        log.error("webhook for processor %s not handled: %s", pk, refusal.message)
        return _answer(422, "the processor refused our look-up")
    except IntegrityError:
        if await _seen(services, config.id, event.id):
            return _answer(200, "duplicate")  # a concurrent delivery of the same event won
        # Another concurrent change won (nothing was stored): the next delivery retries.
        return _answer(503, "concurrent change, send again later")
    return _answer(200, outcome)


async def _handle(
    services: Services,
    config: PaymentProcessorConfig,
    processor: PaymentProcessor,
    event: ProcessorEvent,
) -> str:
    if await _seen(services, config.id, event.id):
        return "duplicate"
    attempt = await _attempt_of(services, config, event)
    refunds: tuple[RefundInfo, ...] = ()
    status = None
    if event.kind is EventKind.REFUNDED and attempt is not None:
        assert event.payment_reference is not None
        # Network calls before any lock. The event may not list the refunds (Stripe's recent
        # API versions do not), and the payment may not be recorded yet (events out of order).
        listed = event.refunds
        refunds = listed if listed is not None else await processor.refunds(event.payment_reference)
        if attempt.status is not AttemptStatus.SUCCEEDED:
            status = await processor.payment_status(event.payment_reference)
    lease = refund_lease(services.processors.options)
    to_return: RefundCall | None = None
    async with services.db.writer() as session, session.begin():
        if await _seen_in(session, config.id, event.id):
            return "duplicate"
        session.add(HandledEvent(processor_id=config.id, event_id=event.id, event_type=event.type))
        if attempt is None:
            return "ignored"
        invoice = await _locked_invoice(session, config, attempt.invoice_id)
        attempt = await session.get_one(PaymentAttempt, attempt.id)
        now = utcnow()
        reference = event.payment_reference
        assert reference is not None
        if event.kind is EventKind.PAYMENT_SUCCEEDED:
            charge = ChargeSucceeded(reference=reference, amount=event.amount or attempt.amount)
            if _duplicate_charge(invoice, attempt, reference):
                # A second charge for one attempt: given back whole.
                to_return = await owe_return(
                    session,
                    invoice,
                    processor_id=config.id,
                    charge=reference,
                    amount=charge.amount,
                    lease=lease,
                )
            else:
                # Recorded, or given back when the invoice cannot take it.
                _, to_return = await take_or_return(
                    session,
                    invoice,
                    attempt,
                    charge=charge,
                    actor_id=attempt.created_by_id,
                    lease=lease,
                )
        elif event.kind is EventKind.PAYMENT_FAILED:
            settle_decline(
                invoice,
                attempt,
                reason=event.failure_reason or "the card was declined",
                reference=reference,
                actor_id=attempt.created_by_id,
                now=now,
            )
        elif event.kind is EventKind.PAYMENT_CANCELED and not attempt.in_flight(now):
            # Closed without an event: the invoice is as it was (when we cancelled it for
            # another card, that request's own outcome is the invoice's news).
            attempt.decline("the payment was canceled at the processor", reference)
        elif event.kind is EventKind.PAYMENT_REQUIRES_ACTION and not attempt.in_flight(now):
            # Its id, when our answer was lost: the next payInvoice asks it, never charging.
            attempt.await_customer(reference)
        elif event.kind is EventKind.REFUNDED:
            attempts = await _refund_attempts(session, invoice.id)
            if isinstance(status, ChargeSucceeded) and not _duplicate_charge(
                invoice, attempt, reference
            ):
                # The refund event came first: the payment is recorded, or — when the invoice
                # cannot take it — what the processor has not given back yet goes back.
                _, to_return = await take_or_return(
                    session,
                    invoice,
                    attempt,
                    charge=status,
                    actor_id=attempt.created_by_id,
                    lease=lease,
                    unreturned=status.amount - sum(r.amount for r in refunds if r.succeeded),
                )
            record_refunds(invoice, reference, refunds, attempts)
        elif event.kind is EventKind.REFUND_UPDATED:
            attempts = await _refund_attempts(session, invoice.id)
            for info in event.refunds or ():
                if info.succeeded:
                    record_refunds(invoice, reference, (info,), attempts)
                else:
                    refund_failed(invoice, info, attempts)
    if (
        to_return is not None
        and (await give_back(services.db, processor, to_return)) in OPEN_REFUND
    ):
        # The charge is not back on the card yet (its return stays pending, and reconciliation
        # tries it again): forget the event, so that the processor's next delivery tries too.
        async with services.db.writer() as session, session.begin():
            await session.execute(
                delete(HandledEvent).where(
                    HandledEvent.processor_id == config.id, HandledEvent.event_id == event.id
                )
            )
        raise ProcessorUnavailable("the charge could not be returned to the card yet")
    return "handled"


async def _refund_attempts(session: AsyncSession, invoice_id: int) -> list[RefundAttempt]:
    return list(
        (
            await session.scalars(
                select(RefundAttempt).where(RefundAttempt.invoice_id == invoice_id)
            )
        ).all()
    )


def _duplicate_charge(invoice: Invoice, attempt: PaymentAttempt, reference: str) -> bool:
    """A second successful charge for one attempt, which settled with another one. Stripe
    cannot make it (the idempotency key returns the first); a server that ignores keys can."""
    return attempt.processor_reference not in (None, reference) and not any(
        p.processor_reference == reference for p in invoice.payments
    )


async def _attempt_of(
    services: Services, config: PaymentProcessorConfig, event: ProcessorEvent
) -> PaymentAttempt | None:
    """The attempt an event is about, if it is one of ours made with this processor."""
    if event.kind is EventKind.OTHER or event.payment_reference is None:
        return None
    async with services.db.reader() as session:
        attempt = (
            await session.execute(
                select(PaymentAttempt).where(
                    PaymentAttempt.processor_reference == event.payment_reference,
                    PaymentAttempt.processor_id == config.id,
                )
            )
        ).scalar_one_or_none()
        if attempt is None:
            # Our request timed out before we learnt the payment's id: the metadata tells.
            attempt_id = event.metadata.get("carebill_attempt", "")
            if attempt_id.isdigit():
                found = await session.get(PaymentAttempt, int(attempt_id))
                if (
                    found is not None
                    and found.processor_id == config.id
                    and str(found.invoice_id) == event.metadata.get("carebill_invoice")
                ):
                    attempt = found
    return attempt


async def _seen(services: Services, processor_id: int, event_id: str) -> bool:
    async with services.db.reader() as session:
        return await _seen_in(session, processor_id, event_id)


async def _seen_in(session: AsyncSession, processor_id: int, event_id: str) -> bool:
    found = (
        await session.execute(
            select(HandledEvent.id).where(
                HandledEvent.processor_id == processor_id, HandledEvent.event_id == event_id
            )
        )
    ).first()
    return found is not None


async def _locked_invoice(
    session: AsyncSession, config: PaymentProcessorConfig, invoice_id: int
) -> Invoice:
    return (
        await session.execute(
            select(Invoice)
            .where(Invoice.id == invoice_id, Invoice.practice_id == config.practice_id)
            .options(selectinload(Invoice.payments), selectinload(Invoice.refunds))
            .with_for_update(of=Invoice)
        )
    ).scalar_one()
