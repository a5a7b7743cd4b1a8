"""GraphQL enums: the domain's own enum classes, registered with strawberry (which marks the
class and returns it), so the schema and the domain share one type."""

from __future__ import annotations

import strawberry

from models.enums import (
    AlertKind,
    InvoiceAction,
    InvoiceStatus,
    PaymentMethodKind,
    ProcessorType,
    Role,
    SalesTaxMode,
)

for _enum in (
    AlertKind,
    InvoiceAction,
    InvoiceStatus,
    PaymentMethodKind,
    ProcessorType,
    Role,
    SalesTaxMode,
):
    strawberry.enum(_enum)

__all__ = [
    "AlertKind",
    "InvoiceAction",
    "InvoiceStatus",
    "PaymentMethodKind",
    "ProcessorType",
    "Role",
    "SalesTaxMode",
]
