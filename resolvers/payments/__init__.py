"""Card payments through the practice's processor.

    processors.py    the processors' registry (installed and closed by the app's lifespan), the
                     practice's account at its processor, what a processor's failure becomes
    pay_invoice.py   payInvoice: claim an attempt, call the processor, settle its answer
    attempts.py      an invoice's payment attempt rows: the one still open, the next one
    card_refunds.py  money back to the card: refunds' card portions, and returned charges

Re-exported here: what app.py's lifespan calls. payInvoice itself is imported from its module,
which imports `resolvers.invoices` (for `locked_invoice`), itself importing `card_refunds`: this
package must not import `pay_invoice`, or that would be a cycle."""

from resolvers.payments.processors import close_payment_processors, install_payment_processors

__all__ = ["close_payment_processors", "install_payment_processors"]
