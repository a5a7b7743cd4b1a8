"""A charge an invoice could not take is given back to the card (refunds of recorded payments
are in refund_invoice.py)."""

from __future__ import annotations

import logging

from adapters.payment_processor import (
    ChargeSucceeded,
    PaymentProcessor,
    ProcessorRefused,
    ProcessorUnavailable,
)

log = logging.getLogger("carebill.payments")


async def return_charge(
    processor: PaymentProcessor, charge: ChargeSucceeded, invoice_id: int
) -> bool:
    """Give back a charge the invoice could not take (it was settled otherwise meanwhile).
    False when the processor did not take the return: the caller must make sure it is tried
    again (the webhook answers 5xx, so the processor sends the event again). The key is the
    charge's own, so every try — from the request or from any delivery — is one return."""
    try:
        await processor.refund(
            charge.reference,
            charge.amount,
            f"carebill-return-{charge.reference}",
            {"carebill_invoice": str(invoice_id), "carebill_reason": "invoice already settled"},
        )
    except (ProcessorUnavailable, ProcessorRefused):
        log.error(
            "card payment %s could not be returned yet for invoice %s: tried again with the "
            "processor's next delivery of its event",
            charge.reference,
            invoice_id,
        )
        return False
    log.warning("card payment %s returned: invoice %s was settled", charge.reference, invoice_id)
    return True
