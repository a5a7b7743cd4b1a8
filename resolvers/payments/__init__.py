"""Card payments through the practice's processor.

processors.py         the practice's account at its processor, what a processor's failure becomes
pay_invoice.py        payInvoice: claim an attempt, call the processor, settle its answer
attempts.py           an invoice's payment attempt rows: the one still open, the next one
refund_invoice.py     refundInvoice: claim a refund attempt, call the processor, settle it
card_refunds.py       money back to the card: a refund attempt's call, charges returned
processor_refunds.py  refunds the processor reports (webhooks, look-ups), recorded once
reconciliation.py     `carebill reconcile` and the periodic job: settle what was left open
lookups.py            reconciliation's look-ups: one attempt, or one payment's refunds, settled
"""
