"""Card payments through the practice's processor.

processors.py    the practice's account at its processor, what a processor's failure becomes
pay_invoice.py   payInvoice: claim an attempt, call the processor, settle its answer
attempts.py      an invoice's payment attempt rows: the one still open, the next one
card_refunds.py  money back to the card: refunds' card portions, and returned charges
"""
