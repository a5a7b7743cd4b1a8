"""The role rules of models/permissions.py as strawberry permissions, declared on fields and
mutations with `guarded(...)` (schema/outcome.py). A refusal is a FORBIDDEN `DomainError`:
a mutation answers it in its payload's `errors`, a field as a top-level FORBIDDEN error. An
anonymous request gets the top-level UNAUTHENTICATED error first."""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry.permission import BasePermission

from models import permissions
from models.errors import forbidden
from models.permissions import RoleRule
from schema.context import Info, viewer_of


class RolePermission(BasePermission):
    rule: ClassVar[RoleRule]

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return self.rule.allows(viewer_of(info))

    def on_unauthorized(self) -> None:
        raise forbidden(self.rule.refusal)


class MaySendInvoices(RolePermission):
    rule = permissions.SEND_INVOICES


class MayConfigurePractice(RolePermission):
    rule = permissions.CONFIGURE_PRACTICE


class MayManageMembers(RolePermission):
    rule = permissions.MANAGE_MEMBERS


class MayReadBillingReport(RolePermission):
    rule = permissions.READ_BILLING_REPORT


class MayReadAgingReport(RolePermission):
    rule = permissions.READ_AGING_REPORT


class MayReadPaymentProcessors(RolePermission):
    rule = permissions.READ_PAYMENT_PROCESSORS


class MayReadNotificationDeliveries(RolePermission):
    rule = permissions.READ_NOTIFICATION_DELIVERIES
