"""Refunds the processor reports (its webhooks, a reconciliation's look-up), recorded through the
same rules as our own requests: one of our attempts settles that attempt, one made in the
processor's dashboard is recorded within our cap, a refund that failed is taken back once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from adapters.payment_processor import RefundInfo
from models import Invoice, RefundAttempt
from models.base import utcnow
from models.enums import PaymentMethodKind
from models.errors import DomainError, ErrorCode
from models.refunding import RefundStatus, reserved_by, settle_refund

log = logging.getLogger("carebill.payments")

REFUND_NOTE = "Refunded at the payment processor"


@dataclass
class Recorded:
    """What `record_refunds` did with the processor's refunds it did not know of."""

    settled: list[RefundInfo] = field(default_factory=list)  # our attempts, or recorded anew
    refused: list[tuple[RefundInfo, str]] = field(default_factory=list)  # a person must look


def attempt_of(refund: RefundInfo, attempts: Sequence[RefundAttempt]) -> RefundAttempt | None:
    """Our attempt that made `refund`: by the metadata it carries, else by its id."""
    tag = refund.metadata.get("carebill_refund_attempt")
    return next(
        (
            a
            for a in attempts
            if str(a.id) == tag
            or (a.processor_reference is not None and a.processor_reference == refund.reference)
        ),
        None,
    )


def record_refunds(
    invoice: Invoice,
    reference: str,
    refunds: Sequence[RefundInfo],
    attempts: Sequence[RefundAttempt],
) -> Recorded:
    """Refunds of the payment `reference` made at the processor that CareBill has not recorded:
    one of our attempts (its answer was lost, or has not come back yet) settles that attempt
    — a return included; one made in the processor's dashboard is recorded within our own
    cap — never more refunded than paid, never what an open attempt reserves. Needs the
    invoice locked with its payments and refunds, and its refund attempts."""
    outcome = Recorded()
    payment = next((p for p in invoice.payments if p.processor_reference == reference), None)
    known = {r.processor_reference for r in invoice.refunds}
    for refund in refunds:
        if not refund.succeeded or refund.reference in known:
            continue
        attempt = attempt_of(refund, attempts)
        if attempt is not None and attempt.open:
            settle_refund(invoice, attempt, reference=refund.reference, now=utcnow())
            outcome.settled.append(refund)
            continue
        if attempt is not None and attempt.is_return:
            continue  # returned already: a charge the invoice never took
        if payment is None or payment.method is not PaymentMethodKind.CARD:
            continue  # not a payment of this invoice: nothing of ours to refund
        try:
            plan = invoice.refund_plan(refund.amount, reserved_by(attempts))
            if [p.id for p, _ in plan] != [payment.id]:
                raise DomainError(
                    ErrorCode.VALIDATION, "it exceeds what is refundable on the card payment"
                )
            invoice.refund(
                amount=refund.amount,
                reason=REFUND_NOTE,
                actor_id=None,
                processor_references={payment.id: refund.reference},
            )
        except DomainError as refused:
            log.warning(
                "refund %s of payment %s not recorded on invoice %s: %s",
                refund.reference,
                reference,
                invoice.id,
                refused.message,
            )
            outcome.refused.append((refund, refused.message))
            continue
        known.add(refund.reference)
        outcome.settled.append(refund)
    return outcome


def refund_failed(invoice: Invoice, refund: RefundInfo, attempts: Sequence[RefundAttempt]) -> None:
    """A refund failed at the processor: an open attempt of ours is released; a recorded
    refund is taken back (the invoice is refundable again), once; a return that failed is
    left for a person (reported by reconciliation)."""
    attempt = attempt_of(refund, attempts)
    reason = "the refund failed at the processor"
    if attempt is not None and attempt.open:
        attempt.fail(reason)
        return
    if attempt is not None and attempt.is_return:
        if attempt.status is RefundStatus.SUCCEEDED:
            attempt.failed_later(reason)
            log.error(
                "the return of card payment %s of invoice %s failed at the processor: "
                "return it by hand",
                attempt.payment_reference,
                invoice.id,
            )
        return
    recorded = next((r for r in invoice.refunds if r.processor_reference == refund.reference), None)
    if recorded is None:
        return  # never recorded, or taken back already
    invoice.refund_failed(recorded, reason=reason, now=utcnow())
    if attempt is not None:
        attempt.failed_later(reason)
