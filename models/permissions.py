"""Who may do what to an invoice, by active role — the contract's Rules in one place."""

from __future__ import annotations

from models.enums import Role
from models.invoice import Amounts, Invoice, Operation, refusal
from models.scope import Viewer

_MANAGING = {Operation.RECORD_PAYMENT, Operation.FORGIVE, Operation.VOID, Operation.REFUND}


def may_perform(viewer: Viewer, invoice: Invoice, operation: Operation) -> bool:
    """ADMIN and the invoice's PROVIDER manage it; its CLIENT pays it."""
    if invoice.practice_id != viewer.practice_id:
        return False
    if operation is Operation.PAY:
        return viewer.role is Role.CLIENT and invoice.client_id == viewer.user_id
    if operation in _MANAGING:
        if viewer.role is Role.ADMIN:
            return True
        return viewer.role is Role.PROVIDER and invoice.provider_id == viewer.user_id
    return False


def can(viewer: Viewer, invoice: Invoice, amounts: Amounts, operation: Operation) -> bool:
    """Would `operation` succeed for this viewer now? (The capability flags.)"""
    return may_perform(viewer, invoice, operation) and refusal(operation, amounts) is None
