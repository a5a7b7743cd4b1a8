"""The card side of refunds: the card portions of a refund go back through the processor that
took them, and a charge an invoice could not take is given back to the card."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.payment_processor import (
    ChargeSucceeded,
    PaymentProcessor,
    ProcessorRefused,
    ProcessorUnavailable,
)
from models import Invoice, Payment, PaymentProcessorConfig
from models.enums import PaymentMethodKind
from models.errors import DomainError, ErrorCode
from resolvers.payments.processors import processor_of, refused, unavailable
from schema.services import Services

log = logging.getLogger("carebill.payments")


async def return_charge(
    processor: PaymentProcessor, charge: ChargeSucceeded, invoice_id: int
) -> None:
    """Give back a charge the invoice could not take (it was settled otherwise meanwhile)."""
    try:
        await processor.refund(
            charge.reference,
            charge.amount,
            f"carebill-return-{charge.reference}",
            {"carebill_invoice": str(invoice_id), "carebill_reason": "invoice already settled"},
        )
    except (ProcessorUnavailable, ProcessorRefused):
        log.error(
            "card payment %s could not be returned for invoice %s: refund it at the processor",
            charge.reference,
            invoice_id,
        )
    else:
        log.warning(
            "card payment %s returned: invoice %s was settled", charge.reference, invoice_id
        )


# --- refunds ---------------------------------------------------------------------------------


async def refund_card_portions(
    services: Services,
    session: AsyncSession,
    invoice: Invoice,
    plan: list[tuple[Payment, int]],
) -> dict[int, str]:
    """Refund the card portions of a refund plan at their processor, and return the
    processor's refund id by payment id. Raises (nothing recorded) when one is not accepted.

    Called with the invoice row locked: the lock is the only one taken, always first, so it
    cannot deadlock, and a webhook about this refund waits for it and then finds it recorded.
    (On SQLite the lock is the database's write lock: refunds are rare, the wait is bounded
    by the processor timeout.) Each key is derived from the payment, what it has had refunded
    so far and the portion, so a retry after a timeout replays the same refund at the processor
    instead of refunding twice."""
    references: dict[int, str] = {}
    for payment, part in plan:
        if payment.method is not PaymentMethodKind.CARD or payment.processor_reference is None:
            continue
        config = (
            await session.get(PaymentProcessorConfig, payment.processor_id)
            if payment.processor_id is not None
            else None
        )
        if config is None:
            raise DomainError(
                ErrorCode.NOT_CONFIGURED,
                "the processor that took this card payment is no longer configured",
            )
        refunded = sum(r.amount for r in invoice.refunds if r.payment_id == payment.id)
        key = f"carebill-refund-{payment.processor_reference}-{refunded}-{part}"
        try:
            result = await processor_of(services, config).refund(
                payment.processor_reference, part, key, {"carebill_invoice": str(invoice.id)}
            )
        except ProcessorUnavailable:
            raise unavailable("refunding the card") from None
        except ProcessorRefused as error:
            if error.credentials:
                raise refused(error, None) from None
            raise DomainError(
                ErrorCode.PAYMENT_DECLINED, f"the processor refused the refund: {error.message}"
            ) from None
        references[payment.id] = result.reference
    return references
