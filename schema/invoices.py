"""Invoices, their payments, refunds and history, the invoice list and the invoice payloads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar, cast

import strawberry

from adapters.payment_processor import charge_refusal
from models import Invoice as InvoiceRow
from models import InvoiceEvent as EventRow
from models import Payment as PaymentRow
from models import PaymentProcessorConfig
from models import Refund as RefundRow
from models.base import utcnow
from models.invoice import Amounts, Operation, amounts_of
from models.permissions import can
from models.reminders import is_overdue, local_date
from schema.context import Context, reads_context, viewer_in
from schema.enums import InvoiceAction, InvoiceStatus, PaymentMethodKind
from schema.errors import UserError
from schema.loaders import MISSING, Loaders
from schema.money import MoneyType
from schema.node import Node, decode_id, encode_id
from schema.pagination import Page, PageInfo
from schema.preload import later
from schema.reads import InvoiceQuery
from schema.rows import EventLine, PaymentLine, RefundLine
from schema.users import UserType

if TYPE_CHECKING:
    from schema.clients import Client

T = TypeVar("T")

# Placeholders of the plain fields until `__post_init__` sets them from the row.
_NO_ID = strawberry.ID("")
_NO_TIME = datetime.min.replace(tzinfo=UTC)


def person(context: Context, user_id: int | None) -> UserType | None:
    """The person `user_id` as the viewer may see them: at once when loaded, else later."""
    if user_id is None:
        return None
    row = context.loaders.people.known(user_id)
    if row is MISSING:
        return later(_load_person(context, user_id))
    return None if row is None else UserType(row=row)


async def _load_person(context: Context, user_id: int) -> UserType | None:
    row = await context.loaders.people.load(user_id)
    return None if row is None else UserType(row=row)


# Resolvers of fields declared between plain ones (`x: T = strawberry.field(resolver=...)`): a
# type's fields keep their order in the schema. Those that take the request's `context` rather
# than an `Info` are made resolvers by `reads_context`, as are the methods below.


def _amount(root: PaymentType | RefundType) -> MoneyType:
    return MoneyType.of(root.row.amount, root.currency)


@reads_context
def _actor(root: InvoiceEventType, context: Context) -> UserType | None:
    return person(context, root.row.actor_id)


def _event_amount(root: InvoiceEventType) -> MoneyType | None:
    amount = root.row.amount
    return None if amount is None else MoneyType.of(amount, root.currency)


def _client(
    root: InvoiceType, context: Context
) -> Annotated[Client, strawberry.lazy("schema.clients")]:
    from schema.clients import Client

    row = context.loaders.people.known(root.row.client_id)
    if row is MISSING:
        return later(_load_client(root, context))
    assert row is not None  # the invoice is visible, so is its client
    return Client(row=row)


async def _load_client(root: InvoiceType, context: Context) -> Client:
    from schema.clients import Client

    row = await context.loaders.people.load(root.row.client_id)
    assert row is not None  # the invoice is visible, so is its client
    return Client(row=row)


def _provider(root: InvoiceType, context: Context) -> UserType:
    # The invoice is visible, so is its provider: never None.
    return cast(UserType, person(context, root.row.provider_id))


@strawberry.type(name="Payment")
class PaymentType(Node):
    row: strawberry.Private[PaymentRow | PaymentLine]
    currency: strawberry.Private[str]
    # Plain values, set from the row: a field without a resolver costs a fraction of one with.
    id: strawberry.ID = strawberry.field(default=_NO_ID, description="Global, opaque id")
    amount: MoneyType = strawberry.field(resolver=_amount)
    method: PaymentMethodKind = PaymentMethodKind.CASH
    reference: str | None = strawberry.field(
        default=None, description="Cheque number, transfer id or the processor's charge id"
    )
    received_at: datetime = _NO_TIME

    def __post_init__(self) -> None:
        row = self.row
        self.id = encode_id("Payment", row.id)
        self.method = row.method
        self.reference = row.reference or row.processor_reference
        self.received_at = row.received_at

    @strawberry.field
    @reads_context
    def recorded_by(self, context: Context) -> UserType | None:
        return person(context, self.row.recorded_by_id)


@strawberry.type(name="Refund")
class RefundType(Node):
    row: strawberry.Private[RefundRow | RefundLine]
    currency: strawberry.Private[str]
    id: strawberry.ID = strawberry.field(default=_NO_ID, description="Global, opaque id")
    amount: MoneyType = strawberry.field(resolver=_amount)
    reason: str = ""
    created_at: datetime = _NO_TIME

    def __post_init__(self) -> None:
        self.id = encode_id("Refund", self.row.id)
        self.reason = self.row.reason
        self.created_at = self.row.created_at

    @strawberry.field
    @reads_context
    def created_by(self, context: Context) -> UserType | None:
        return person(context, self.row.created_by_id)


@strawberry.type(
    name="InvoiceEvent", description="One change in an invoice's history: who, what, when"
)
class InvoiceEventType:
    row: strawberry.Private[EventRow | EventLine]
    currency: strawberry.Private[str]
    id: strawberry.ID = _NO_ID
    action: InvoiceAction = InvoiceAction.SENT
    actor: UserType | None = strawberry.field(resolver=_actor)
    at: datetime = _NO_TIME
    amount: MoneyType | None = strawberry.field(resolver=_event_amount)
    note: str | None = None

    def __post_init__(self) -> None:
        row = self.row
        self.id = encode_id("InvoiceEvent", row.id)
        self.action = row.action
        self.at = row.at
        self.note = row.note


@strawberry.type(name="Invoice")
class InvoiceType(Node):
    """Its nested fields answer at once from what the loaders hold (a list preloads it,
    schema/preload.py), or load it."""

    # Every field reads the row when it resolves, never a copy taken when the type was built:
    # a mutation builds its payload's invoice before it changes the row.
    row: strawberry.Private[InvoiceRow]
    # The amounts, once a field resolved them (the fields resolve after the operation's
    # resolver returned, the row's changes made): ten fields of a page's invoice read them.
    resolved_amounts: strawberry.Private[Amounts | None] = None

    def _amounts_now(self, loaders: Loaders) -> Amounts | None:
        if self.resolved_amounts is not None:
            return self.resolved_amounts
        payments = loaders.payments.known(self.row.id)
        refunds = loaders.refunds.known(self.row.id)
        if payments is MISSING or refunds is MISSING:
            return None
        self.resolved_amounts = amounts_of(self.row, payments, refunds)
        return self.resolved_amounts

    async def _amounts(self, context: Context) -> Amounts:
        loaders = context.loaders
        payments = await loaders.payments.load(self.row.id)
        refunds = await loaders.refunds.load(self.row.id)
        return amounts_of(self.row, payments, refunds)

    def _from_amounts(self, context: Context, answer: Callable[[Amounts], T]) -> T:
        amounts = self._amounts_now(context.loaders)
        if amounts is None:
            return later(self._later(context, answer))
        return answer(amounts)

    async def _later(self, context: Context, answer: Callable[[Amounts], T]) -> T:
        return answer(await self._amounts(context))

    def _can(self, context: Context, operation: Operation) -> bool:
        viewer = viewer_in(context)
        return self._from_amounts(context, lambda a: can(viewer, self.row, a, operation))

    def _money(self, amount: int) -> MoneyType:
        return MoneyType.of(amount, self.row.currency)

    @strawberry.field(description="Global, opaque id")
    def id(self) -> strawberry.ID:
        return encode_id("Invoice", self.row.id)

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
    @reads_context
    def client(self, context: Context) -> Annotated[Client, strawberry.lazy("schema.clients")]:
        return _client(self, context)

    @strawberry.field
    @reads_context
    def provider(self, context: Context) -> UserType:
        return _provider(self, context)

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
    @reads_context
    def amount_paid(self, context: Context) -> MoneyType:
        return self._from_amounts(context, lambda a: self._money(a.paid))

    @strawberry.field
    @reads_context
    def amount_refunded(self, context: Context) -> MoneyType:
        return self._from_amounts(context, lambda a: self._money(a.refunded))

    @strawberry.field(description="total - amountPaid while UNPAID, else 0")
    @reads_context
    def amount_due(self, context: Context) -> MoneyType:
        return self._from_amounts(context, lambda a: self._money(a.due))

    @strawberry.field(description="What may still be refunded")
    @reads_context
    def refundable_amount(self, context: Context) -> MoneyType:
        return self._from_amounts(context, lambda a: self._money(a.refundable))

    @strawberry.field
    @reads_context
    def payments(self, context: Context) -> list[PaymentType]:
        rows = context.loaders.payments.known(self.row.id)
        if rows is MISSING:
            return later(self._load_payments(context))
        return [PaymentType(row=r, currency=self.row.currency) for r in rows]

    async def _load_payments(self, context: Context) -> list[PaymentType]:
        rows = await context.loaders.payments.load(self.row.id)
        return [PaymentType(row=r, currency=self.row.currency) for r in rows]

    @strawberry.field
    @reads_context
    def refunds(self, context: Context) -> list[RefundType]:
        rows = context.loaders.refunds.known(self.row.id)
        if rows is MISSING:
            return later(self._load_refunds(context))
        return [RefundType(row=r, currency=self.row.currency) for r in rows]

    async def _load_refunds(self, context: Context) -> list[RefundType]:
        rows = await context.loaders.refunds.load(self.row.id)
        return [RefundType(row=r, currency=self.row.currency) for r in rows]

    @strawberry.field(description="Every change, oldest first")
    @reads_context
    def history(self, context: Context) -> list[InvoiceEventType]:
        rows = context.loaders.events.known(self.row.id)
        if rows is MISSING:
            return later(self._load_history(context))
        return [InvoiceEventType(row=r, currency=self.row.currency) for r in rows]

    async def _load_history(self, context: Context) -> list[InvoiceEventType]:
        rows = await context.loaders.events.load(self.row.id)
        return [InvoiceEventType(row=r, currency=self.row.currency) for r in rows]

    @strawberry.field(description="UNPAID and past its due date (in the practice's time zone)")
    @reads_context
    def overdue(self, context: Context) -> bool:
        if self.row.status is not InvoiceStatus.UNPAID or self.row.due_date is None:
            return False
        practice = context.loaders.practices.known(self.row.practice_id)
        if practice is MISSING:
            return later(self._load_overdue(context))
        assert practice is not None  # a visible invoice's practice is the viewer's
        return self._overdue_in(practice.time_zone)

    async def _load_overdue(self, context: Context) -> bool:
        practice = await context.loaders.practices.load(self.row.practice_id)
        assert practice is not None  # a visible invoice's practice is the viewer's
        return self._overdue_in(practice.time_zone)

    def _overdue_in(self, time_zone: str) -> bool:
        assert self.row.due_date is not None
        today = local_date(utcnow(), time_zone)
        return is_overdue(self.row.status, self.row.due_date, today)

    @strawberry.field(
        description="The viewer may pay it by card now: a processor is configured and can "
        "charge what is due (its currency's units, its per-charge ceiling)"
    )
    @reads_context
    def can_pay(self, context: Context) -> bool:
        loaders = context.loaders
        amounts = self._amounts_now(loaders)
        if amounts is None:
            return later(self._load_can_pay(context))
        if not can(viewer_in(context), self.row, amounts, Operation.PAY):
            return False
        configs = loaders.processors.known(self.row.practice_id)
        if configs is MISSING:
            return later(self._load_can_pay(context))
        return self._chargeable(amounts, configs)

    async def _load_can_pay(self, context: Context) -> bool:
        amounts = await self._amounts(context)
        if not can(viewer_in(context), self.row, amounts, Operation.PAY):
            return False
        configs = await context.loaders.processors.load(self.row.practice_id)
        return self._chargeable(amounts, configs)

    def _chargeable(self, amounts: Amounts, configs: Sequence[PaymentProcessorConfig]) -> bool:
        if not configs:
            return False
        return charge_refusal(configs[0].type, amounts.due, self.row.currency) is None

    @strawberry.field
    @reads_context
    def can_record_payment(self, context: Context) -> bool:
        return self._can(context, Operation.RECORD_PAYMENT)

    @strawberry.field
    @reads_context
    def can_forgive(self, context: Context) -> bool:
        return self._can(context, Operation.FORGIVE)

    @strawberry.field
    @reads_context
    def can_void(self, context: Context) -> bool:
        return self._can(context, Operation.VOID)

    @strawberry.field
    @reads_context
    def can_refund(self, context: Context) -> bool:
        return self._can(context, Operation.REFUND)


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
