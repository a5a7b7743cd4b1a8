"""Invoices, their payments, refunds and history, the invoice list and the invoice payloads."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from adapters.payment_processor import charge_refusal
from models import Invoice as InvoiceRow
from models import InvoiceEvent as EventRow
from models import Payment as PaymentRow
from models import Refund as RefundRow
from models.base import utcnow
from models.invoice import Amounts, Operation, amounts_of
from models.permissions import can
from models.reminders import is_overdue, local_date
from schema.context import Info, viewer_of
from schema.enums import InvoiceAction, InvoiceStatus, PaymentMethodKind
from schema.errors import UserError
from schema.money import MoneyType
from schema.node import Node, decode_id, encode_id
from schema.pagination import Page, PageInfo
from schema.reads import InvoiceQuery
from schema.users import UserType

if TYPE_CHECKING:
    from schema.clients import Client


async def _person(info: Info, user_id: int | None) -> UserType | None:
    if user_id is None:
        return None
    row = await info.context.loaders.people.load(user_id)
    return UserType(row=row) if row is not None else None


@strawberry.type(name="Payment")
class PaymentType(Node):
    row: strawberry.Private[PaymentRow]
    currency: strawberry.Private[str]

    @strawberry.field
    def amount(self) -> MoneyType:
        return MoneyType.of(self.row.amount, self.currency)

    @strawberry.field
    def method(self) -> PaymentMethodKind:
        return self.row.method

    @strawberry.field(description="Cheque number, transfer id or the processor's charge id")
    def reference(self) -> str | None:
        return self.row.reference or self.row.processor_reference

    @strawberry.field
    def received_at(self) -> datetime:
        return self.row.received_at

    @strawberry.field
    async def recorded_by(self, info: Info) -> UserType | None:
        return await _person(info, self.row.recorded_by_id)


@strawberry.type(name="Refund")
class RefundType(Node):
    row: strawberry.Private[RefundRow]
    currency: strawberry.Private[str]

    @strawberry.field
    def amount(self) -> MoneyType:
        return MoneyType.of(self.row.amount, self.currency)

    @strawberry.field
    def reason(self) -> str:
        return self.row.reason

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    async def created_by(self, info: Info) -> UserType | None:
        return await _person(info, self.row.created_by_id)


@strawberry.type(
    name="InvoiceEvent", description="One change in an invoice's history: who, what, when"
)
class InvoiceEventType:
    row: strawberry.Private[EventRow]
    currency: strawberry.Private[str]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return encode_id("InvoiceEvent", self.row.id)

    @strawberry.field
    def action(self) -> InvoiceAction:
        return self.row.action

    @strawberry.field
    async def actor(self, info: Info) -> UserType | None:
        return await _person(info, self.row.actor_id)

    @strawberry.field
    def at(self) -> datetime:
        return self.row.at

    @strawberry.field
    def amount(self) -> MoneyType | None:
        return None if self.row.amount is None else MoneyType.of(self.row.amount, self.currency)

    @strawberry.field
    def note(self) -> str | None:
        return self.row.note


@strawberry.type(name="Invoice")
class InvoiceType(Node):
    row: strawberry.Private[InvoiceRow]

    async def _amounts(self, info: Info) -> Amounts:
        loaders = info.context.loaders
        payments = await loaders.payments.load(self.row.id)
        refunds = await loaders.refunds.load(self.row.id)
        return amounts_of(self.row, payments, refunds)

    async def _can(self, info: Info, operation: Operation) -> bool:
        viewer = viewer_of(info)
        return can(viewer, self.row, await self._amounts(info), operation)

    def _money(self, amount: int) -> MoneyType:
        return MoneyType.of(amount, self.row.currency)

    @strawberry.field(description="Sequential per practice, e.g. INV-000123")
    def number(self) -> str:
        return self.row.display_number

    @strawberry.field
    def description(self) -> str:
        return self.row.description

    @strawberry.field
    def status(self) -> InvoiceStatus:
        return self.row.status

    @strawberry.field
    async def client(self, info: Info) -> Annotated[Client, strawberry.lazy("schema.clients")]:
        from schema.clients import Client

        row = await info.context.loaders.people.load(self.row.client_id)
        assert row is not None  # the invoice is visible, so is its client
        return Client(row=row)

    @strawberry.field
    async def provider(self, info: Info) -> UserType:
        person = await _person(info, self.row.provider_id)
        assert person is not None  # the invoice is visible, so is its provider
        return person

    @strawberry.field
    def sent_at(self) -> datetime:
        return self.row.sent_at

    @strawberry.field
    def due_date(self) -> date | None:
        return self.row.due_date

    @strawberry.field
    def paid_at(self) -> datetime | None:
        return self.row.paid_at

    @strawberry.field
    def currency(self) -> str:
        return self.row.currency

    @strawberry.field(description="Total minus tax")
    def subtotal(self) -> MoneyType:
        return self._money(self.row.subtotal_amount)

    @strawberry.field
    def tax(self) -> MoneyType:
        return self._money(self.row.tax_amount)

    @strawberry.field(description="Tax rate frozen on the invoice when sent, in basis points")
    def tax_rate_basis_points(self) -> int:
        return self.row.tax_rate_bp

    @strawberry.field
    def total(self) -> MoneyType:
        return self._money(self.row.total_amount)

    @strawberry.field(description="Payments received; refunds do not lower it")
    async def amount_paid(self, info: Info) -> MoneyType:
        return self._money((await self._amounts(info)).paid)

    @strawberry.field
    async def amount_refunded(self, info: Info) -> MoneyType:
        return self._money((await self._amounts(info)).refunded)

    @strawberry.field(description="total - amountPaid while UNPAID, else 0")
    async def amount_due(self, info: Info) -> MoneyType:
        return self._money((await self._amounts(info)).due)

    @strawberry.field(description="What may still be refunded")
    async def refundable_amount(self, info: Info) -> MoneyType:
        return self._money((await self._amounts(info)).refundable)

    @strawberry.field
    async def payments(self, info: Info) -> list[PaymentType]:
        rows = await info.context.loaders.payments.load(self.row.id)
        return [PaymentType(row=r, currency=self.row.currency) for r in rows]

    @strawberry.field
    async def refunds(self, info: Info) -> list[RefundType]:
        rows = await info.context.loaders.refunds.load(self.row.id)
        return [RefundType(row=r, currency=self.row.currency) for r in rows]

    @strawberry.field(description="Every change, oldest first")
    async def history(self, info: Info) -> list[InvoiceEventType]:
        rows = await info.context.loaders.events.load(self.row.id)
        return [InvoiceEventType(row=r, currency=self.row.currency) for r in rows]

    @strawberry.field(description="UNPAID and past its due date (in the practice's time zone)")
    async def overdue(self, info: Info) -> bool:
        if self.row.status is not InvoiceStatus.UNPAID or self.row.due_date is None:
            return False
        practice = await info.context.loaders.practices.load(self.row.practice_id)
        assert practice is not None  # a visible invoice's practice is the viewer's
        today = local_date(utcnow(), practice.time_zone)
        return is_overdue(self.row.status, self.row.due_date, today)

    @strawberry.field(
        description="The viewer may pay it by card now: a processor is configured and can "
        "charge what is due (its currency's units, its per-charge ceiling)"
    )
    async def can_pay(self, info: Info) -> bool:
        if not await self._can(info, Operation.PAY):
            return False
        configs = await info.context.loaders.processors.load(self.row.practice_id)
        if not configs:
            return False
        due = (await self._amounts(info)).due
        return charge_refusal(configs[0].type, due, self.row.currency) is None

    @strawberry.field
    async def can_record_payment(self, info: Info) -> bool:
        return await self._can(info, Operation.RECORD_PAYMENT)

    @strawberry.field
    async def can_forgive(self, info: Info) -> bool:
        return await self._can(info, Operation.FORGIVE)

    @strawberry.field
    async def can_void(self, info: Info) -> bool:
        return await self._can(info, Operation.VOID)

    @strawberry.field
    async def can_refund(self, info: Info) -> bool:
        return await self._can(info, Operation.REFUND)


@strawberry.type
class InvoiceEdge:
    cursor: str
    node: InvoiceType


@strawberry.type
class InvoiceConnection:
    edges: list[InvoiceEdge]
    page_info: PageInfo
    total_count: int

    @classmethod
    def of(cls, page: Page[InvoiceRow]) -> InvoiceConnection:
        edges = [InvoiceEdge(cursor=c, node=InvoiceType(row=r)) for c, r in page.items]
        return cls(
            edges=edges,
            page_info=PageInfo.of(page),
            total_count=page.total_count,
        )


def as_utc(moment: datetime | None) -> datetime | None:
    """A DateTime without an offset is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@strawberry.input
class InvoiceFilter:
    status: list[InvoiceStatus] | None = None
    client_id: strawberry.ID | None = None
    provider_id: strawberry.ID | None = None
    sent_from: datetime | None = None
    sent_to: datetime | None = None
    overdue: bool | None = strawberry.field(
        default=None, description="Only overdue invoices (true) or only the others (false)"
    )

    def to_query(self) -> InvoiceQuery:
        # An id that is malformed or of another type matches nothing, as an unknown one would.
        def pk(global_id: strawberry.ID | None, *type_names: str) -> int | None:
            if global_id is None:
                return None
            found = decode_id(global_id, *type_names)
            return -1 if found is None else found

        return InvoiceQuery(
            statuses=tuple(self.status or ()),
            client_id=pk(self.client_id, "Client", "User"),
            provider_id=pk(self.provider_id, "User"),
            sent_from=as_utc(self.sent_from),
            sent_to=as_utc(self.sent_to),
            overdue=self.overdue,
        )


@strawberry.type
class InvoicePayload:
    invoice: InvoiceType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
    requires_action: bool = strawberry.field(
        default=False,
        description="payInvoice: the card needs the customer's authentication (3-D Secure); "
        "finish it in the app with paymentClientSecret, the invoice is paid when it completes",
    )
    payment_client_secret: str | None = strawberry.field(
        default=None,
        description="payInvoice: when requiresAction, the secret the processor's SDK needs to "
        "finish the payment (e.g. Stripe.js handleNextAction); null otherwise",
    )


@strawberry.input
class SendInvoiceInput:
    client_id: strawberry.ID
    description: str
    amount: int = strawberry.field(description="Minor units, before tax: 1..99,999,999")
    due_date: date | None = None
    idempotency_key: str | None = None


@strawberry.input
class RecordPaymentInput:
    invoice_id: strawberry.ID
    amount: int = strawberry.field(description="Minor units: 1..amountDue")
    method: PaymentMethodKind = strawberry.field(description="Any method but CARD")
    reference: str | None = None
    received_at: datetime | None = None
    idempotency_key: str | None = None


@strawberry.input
class InvoiceActionInput:
    invoice_id: strawberry.ID
    reason: str | None = None


@strawberry.input
class PayInvoiceInput:
    invoice_id: strawberry.ID
    payment_method_id: str = strawberry.field(
        description="The card as a payment method id made by the processor's SDK in the app "
        "(Stripe: pm_…); never a card number"
    )
    idempotency_key: str | None = None


@strawberry.input
class RefundInvoiceInput:
    invoice_id: strawberry.ID
    amount: int | None = strawberry.field(
        default=None, description="Minor units; omitted = everything still refundable"
    )
    reason: str
    idempotency_key: str | None = None
