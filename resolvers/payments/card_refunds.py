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
