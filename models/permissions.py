"""Who may do what, by active role — every role rule of the API in one place.

Role rules (`RoleRule`) decide from the active role alone: who may send invoices, configure
the practice, manage members, read the reports and the payment processors. The GraphQL layer
applies them declaratively (schema/permissions.py); the CSV exports ask them too. Invoice rules
decide from the role and the invoice: who may act on it (ADMIN, its PROVIDER), who pays it (its
CLIENT); and sending asks, beyond the role, for the Client Billing service and one's own client.
What each role *sees* is models/scope.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, exists, false

from models.enums import Role
from models.errors import DomainError, ErrorCode, forbidden, not_found
from models.invoice import Amounts, Invoice, Operation, refusal
from models.practice import ClientBillingProvider
from models.scope import Viewer, visible_client
from models.user import ProviderClient

# How a field that the active role may not read is refused.
UNREADABLE_FIELD = "Your active role may not read this field"


@dataclass(frozen=True)
class RoleRule:
    """The roles that may do one thing, and the refusal the others get."""

    roles: frozenset[Role]
    refusal: str

    def allows(self, viewer: Viewer) -> bool:
        return viewer.role in self.roles

    def check(self, viewer: Viewer) -> None:
        """A FORBIDDEN `DomainError` unless the viewer's active role may."""
        if not self.allows(viewer):
            raise forbidden(self.refusal)


SEND_INVOICES = RoleRule(frozenset({Role.PROVIDER}), "only a PROVIDER sends invoices")
CONFIGURE_PRACTICE = RoleRule(
    frozenset({Role.ADMIN}), "only an ADMIN may change the practice's billing set-up"
)
MANAGE_MEMBERS = RoleRule(frozenset({Role.ADMIN}), "only an ADMIN may manage members")
# Fields: refused with a top-level FORBIDDEN error.
READ_BILLING_REPORT = RoleRule(frozenset({Role.ADMIN, Role.PROVIDER}), UNREADABLE_FIELD)
READ_AGING_REPORT = RoleRule(frozenset({Role.ADMIN}), UNREADABLE_FIELD)
READ_PAYMENT_PROCESSORS = RoleRule(frozenset({Role.ADMIN}), UNREADABLE_FIELD)
READ_NOTIFICATION_DELIVERIES = RoleRule(frozenset({Role.ADMIN}), UNREADABLE_FIELD)

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


def check_may_perform(viewer: Viewer, invoice: Invoice, operation: Operation) -> None:
    """A FORBIDDEN `DomainError` unless `may_perform`."""
    if may_perform(viewer, invoice, operation):
        return
    if operation is Operation.PAY:
        raise forbidden("only the invoice's CLIENT may pay it")
    raise forbidden(f"your active role may not {operation.value} this invoice")


def can(viewer: Viewer, invoice: Invoice, amounts: Amounts, operation: Operation) -> bool:
    """Would `operation` succeed for this viewer now? (The capability flags.)"""
    return may_perform(viewer, invoice, operation) and refusal(operation, amounts) is None


def invoicing_conditions(
    viewer: Viewer, practice_id: int, client_id: int | None
) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """What `check_may_invoice` asks the database, as two SQL booleans: is the viewer assigned
    to the practice's Client Billing service, and is `client_id` one of their own clients."""
    assigned = exists().where(
        ClientBillingProvider.practice_id == practice_id,
        ClientBillingProvider.user_id == viewer.user_id,
    )
    if client_id is None:
        return assigned, false()
    own_client = exists().where(
        ProviderClient.practice_id == practice_id,
        ProviderClient.provider_id == viewer.user_id,
        ProviderClient.client_id == client_id,
        visible_client(viewer, ProviderClient.client_id),
    )
    return assigned, own_client


def check_may_invoice(*, billing_enabled: bool, assigned: bool, own_client: bool) -> None:
    """A PROVIDER (`SEND_INVOICES`) invoices through the practice's enabled Client Billing
    service, when assigned to it, and only their own clients: the refusal, from the answers
    to `invoicing_conditions` (models/sending.py asks them with the send's other questions)."""
    if not billing_enabled:
        raise DomainError(
            ErrorCode.NOT_CONFIGURED, "Client Billing is not enabled in this practice"
        )
    if not assigned:
        raise forbidden("you are not assigned to the Client Billing service")
    if not own_client:
        raise not_found("client", "clientId")
