"""CareBill's data model and the business rules on it. Nothing here imports strawberry."""

from models.alert import Alert, AlertRead
from models.base import Base
from models.idempotency import IdempotencyKey
from models.invitation import Invitation
from models.invoice import Invoice, InvoiceEvent, Payment, Refund
from models.login_throttle import LoginFailure
from models.notification import (
    NotificationDelivery,
    NotificationPreference,
    PracticeNotificationSettings,
)
from models.practice import ClientBillingProvider, PaymentProcessorConfig, Practice
from models.processing import PaymentAttempt, WebhookEvent
from models.refunding import RefundAttempt
from models.reminders import InvoiceReminder
from models.user import AuthSession, Membership, ProviderClient, User

__all__ = [
    "Alert",
    "AlertRead",
    "AuthSession",
    "Base",
    "ClientBillingProvider",
    "IdempotencyKey",
    "Invitation",
    "Invoice",
    "InvoiceEvent",
    "InvoiceReminder",
    "LoginFailure",
    "Membership",
    "NotificationDelivery",
    "NotificationPreference",
    "Payment",
    "PaymentAttempt",
    "PaymentProcessorConfig",
    "Practice",
    "PracticeNotificationSettings",
    "ProviderClient",
    "Refund",
    "RefundAttempt",
    "User",
    "WebhookEvent",
]
