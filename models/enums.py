"""Enumerations of the domain; the GraphQL enums are built from these."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    ADMIN = "ADMIN"
    PROVIDER = "PROVIDER"
    CLIENT = "CLIENT"


# Least privileged first: `login` without a role picks the first one the user holds.
ROLE_PRIVILEGE_ORDER = (Role.CLIENT, Role.PROVIDER, Role.ADMIN)


class InvoiceStatus(enum.StrEnum):
    UNPAID = "UNPAID"
    PAID = "PAID"
    REFUNDED = "REFUNDED"
    FORGIVEN = "FORGIVEN"
    VOID = "VOID"


class PaymentMethodKind(enum.StrEnum):
    CARD = "CARD"
    CASH = "CASH"
    CHECK = "CHECK"
    BANK_TRANSFER = "BANK_TRANSFER"
    OTHER = "OTHER"


class ProcessorType(enum.StrEnum):
    STRIPE = "STRIPE"


class SalesTaxMode(enum.StrEnum):
    NONE = "NONE"
    EXCLUSIVE = "EXCLUSIVE"
    INCLUSIVE = "INCLUSIVE"


class AlertKind(enum.StrEnum):
    INVOICE_SENT = "INVOICE_SENT"
    INVOICE_PAID = "INVOICE_PAID"
    PAYMENT_RECORDED = "PAYMENT_RECORDED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    INVOICE_REFUNDED = "INVOICE_REFUNDED"
    INVOICE_FORGIVEN = "INVOICE_FORGIVEN"
    INVOICE_VOIDED = "INVOICE_VOIDED"
    # Written by the reminder scheduler, not by a change: no history event goes with it.
    INVOICE_REMINDER = "INVOICE_REMINDER"


class InvoiceAction(enum.StrEnum):
    """What a history event records; one per successful change."""

    SENT = "SENT"
    PAYMENT_RECORDED = "PAYMENT_RECORDED"
    PAID = "PAID"
    REFUNDED = "REFUNDED"
    FORGIVEN = "FORGIVEN"
    VOIDED = "VOIDED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    REFUND_FAILED = "REFUND_FAILED"


class DeliveryStatus(enum.StrEnum):
    """Where one notification to one recipient stands."""

    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"
