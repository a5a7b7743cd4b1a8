"""The practice and its billing set-up: sales tax, Client Billing, payment processors."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import PaymentProcessorConfig
from models import Practice as PracticeRow
from schema.context import Info, viewer_of
from schema.enums import ProcessorType, SalesTaxMode
from schema.errors import UserError
from schema.node import Node, encode_id
from schema.notifications import NotificationEmails, Reminders, practice_settings
from schema.outcome import guarded
from schema.permissions import MayReadPaymentProcessors
from schema.users import UserType


@strawberry.type
class SalesTax:
    mode: SalesTaxMode
    rate_basis_points: int
    label: str | None


@strawberry.type(description="The Client Billing service: whether it is on and who may invoice")
class ClientBillingService:
    practice_id: strawberry.Private[int]
    enabled: bool

    @strawberry.field
    async def providers(self, info: Info) -> list[UserType]:
        viewer_of(info)
        rows = await info.context.loaders.billing_providers.load(self.practice_id)
        return [UserType(row=r) for r in rows]


@strawberry.type(
    name="PaymentProcessor",
    description="A configured payment processor; its secrets are never readable",
)
class PaymentProcessorType(Node):
    row: strawberry.Private[PaymentProcessorConfig]

    @strawberry.field
    def type(self) -> ProcessorType:
        return self.row.type

    @strawberry.field
    def description(self) -> str | None:
        return self.row.description

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(description="Last time the credentials were replaced")
    def updated_at(self) -> datetime:
        return self.row.updated_at

    @strawberry.field(description="Public key the client's app uses to tokenize a card")
    def publishable_key(self) -> str | None:
        return self.row.publishable_key

    @strawberry.field(description="Where the processor sends its events (POST)")
    def webhook_path(self) -> str:
        return f"/webhooks/{self.row.type.lower()}/{encode_id('PaymentProcessor', self.row.id)}"


@strawberry.type(description="What a client's app needs to take a card: never a secret")
class CardPayments:
    processor_type: ProcessorType
    publishable_key: str | None = strawberry.field(
        description="Public key for the processor's SDK (Stripe.js) to turn a card into a token"
    )


@strawberry.type(name="Practice")
class PracticeType(Node):
    row: strawberry.Private[PracticeRow]

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field(description="ISO 4217 currency the practice bills in")
    def currency(self) -> str:
        return self.row.currency

    @strawberry.field(description="IANA time zone, e.g. America/New_York")
    def time_zone(self) -> str:
        return self.row.time_zone

    @strawberry.field
    def sales_tax(self) -> SalesTax:
        return SalesTax(
            mode=self.row.sales_tax_mode,
            rate_basis_points=self.row.sales_tax_rate_bp,
            label=self.row.sales_tax_label,
        )

    @strawberry.field
    def client_billing(self) -> ClientBillingService:
        return ClientBillingService(
            practice_id=self.row.id, enabled=self.row.client_billing_enabled
        )

    @strawberry.field(description="When unpaid invoices are reminded (any role)")
    async def reminders(self, info: Info) -> Reminders:
        viewer_of(info)
        settings = await practice_settings(info, self.row.id)
        return Reminders(
            days_before_due=list(settings.days_before_due),
            days_after_due=list(settings.days_after_due),
        )

    @strawberry.field(description="What the practice's notification emails may show (any role)")
    async def notification_emails(self, info: Info) -> NotificationEmails:
        viewer_of(info)
        settings = await practice_settings(info, self.row.id)
        return NotificationEmails(include_amount=settings.include_amount)

    @strawberry.field(
        description="ADMIN only: the practice's payment processors. For other roles null, with a"
        " FORBIDDEN error at this path: the rest of the practice still answers",
        extensions=guarded(MayReadPaymentProcessors),
    )
    async def payment_processors(self, info: Info) -> list[PaymentProcessorType] | None:
        rows = await info.context.loaders.processors.load(self.row.id)
        return [PaymentProcessorType(row=r) for r in rows]

    @strawberry.field(description="How clients pay by card (any role): null when no processor")
    async def card_payments(self, info: Info) -> CardPayments | None:
        viewer_of(info)
        rows = await info.context.loaders.processors.load(self.row.id)
        if not rows:
            return None
        return CardPayments(processor_type=rows[0].type, publishable_key=rows[0].publishable_key)


@strawberry.input
class ConfigurePaymentProcessorInput:
    type: ProcessorType
    description: str | None = None
    secret_key: str
    publishable_key: str | None = None
    webhook_secret: str


@strawberry.input
class SetSalesTaxInput:
    mode: SalesTaxMode
    rate_basis_points: int = 0
    label: str | None = None


@strawberry.input
class ConfigureClientBillingInput:
    enabled: bool
    provider_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="The providers who may invoice; omitted = unchanged"
    )


@strawberry.type
class PaymentProcessorPayload:
    payment_processor: PaymentProcessorType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PracticePayload:
    practice: PracticeType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
