"""GraphQL enums, built from the domain's."""

from __future__ import annotations

import strawberry

from models import enums

Role = strawberry.enum(enums.Role, name="Role")
InvoiceStatus = strawberry.enum(enums.InvoiceStatus, name="InvoiceStatus")
PaymentMethodKind = strawberry.enum(enums.PaymentMethodKind, name="PaymentMethodKind")
ProcessorType = strawberry.enum(enums.ProcessorType, name="ProcessorType")
SalesTaxMode = strawberry.enum(enums.SalesTaxMode, name="SalesTaxMode")
AlertKind = strawberry.enum(enums.AlertKind, name="AlertKind")
InvoiceAction = strawberry.enum(enums.InvoiceAction, name="InvoiceAction")
