"""CareBill's data model and the business rules on it. Nothing here imports strawberry."""

from models.alert import Alert, AlertRead
from models.base import Base
from models.idempotency import IdempotencyKey
from models.invoice import Invoice, InvoiceEvent, Payment, Refund
from models.practice import ClientBillingProvider, PaymentProcessorConfig, Practice
from models.processing import PaymentAttempt, WebhookEvent
from models.user import AuthSession, Membership, ProviderClient, User

__all__ = [
    "Alert",
    "AlertRead",
    "AuthSession",
    "Base",
    "ClientBillingProvider",
    "IdempotencyKey",
    "Invoice",
    "InvoiceEvent",
    "Membership",
    "Payment",
    "PaymentAttempt",
    "PaymentProcessorConfig",
    "Practice",
    "ProviderClient",
    "Refund",
    "User",
    "WebhookEvent",
]
