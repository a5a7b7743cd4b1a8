"""Invoice mutations: send, record payment, forgive, void, refund.

Each runs in one writing transaction that locks the row it changes (the practice row for a
send, which also numbers invoices gap-free; the invoice row otherwise), checks who may act,
then lets the domain (models/invoice.py) decide whether the change is allowed now.

The payload is built from the rows the transaction just wrote: the request's payment and
refund loaders are given the changed invoice's rows (`_written`), so answering `amountDue` or
`payments` reads nothing again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from models import Invoice
from models.base import utcnow
from models.enums import PaymentMethodKind
from models.errors import DomainError, ErrorCode, validation
from models.idempotency import Claim, claim_key, claim_of
from models.invoice import Operation
from models.permissions import check_may_perform
from models.scope import Viewer
from models.sending import lock_for_sending, replay_or_check
from models.sending import send_invoice as send
from schema.context import Info, viewer_of
from schema.invoices import (
    InvoiceActionInput,
    InvoicePayload,
    InvoiceType,
    RecordPaymentInput,
    SendInvoiceInput,
    as_utc,
)
from schema.node import decode_person_id
from schema.reads import locked_invoice
from schema.rows import PaymentLine, RefundLine, lines_of

_CONCURRENT = DomainError(
    ErrorCode.CONFLICT, "the invoice was changed by a concurrent request; read it and retry"
)


class _Replay(Exception):
    """A send's key was used before: nothing is sent, the transaction rolls back."""

    def __init__(self, invoice_id: int) -> None:
        super().__init__(invoice_id)
        self.invoice_id = invoice_id


# Applies one change to the locked invoice, inside the mutation's transaction.
Change = Callable[[AsyncSession, Invoice, Viewer], Awaitable[None]]


async def change_invoice(
    info: Info,
    invoice_id: str,
    operation: Operation,
    apply: Change,
    claim: Claim | None = None,
) -> InvoicePayload:
    """Lock, authorise, replay or apply, remember the idempotency key — in one transaction."""
    viewer = viewer_of(info)
    try:
        async with info.context.db.writer() as session, session.begin():
            invoice = await locked_invoice(session, viewer, invoice_id)
            if await claim_key(session, claim, invoice.id) is None:
                check_may_perform(viewer, invoice, operation)
                await apply(session, invoice, viewer)
    except (StaleDataError, IntegrityError):
        raise _CONCURRENT from None
    return _written(info, invoice)


def _written(info: Info, invoice: Invoice) -> InvoicePayload:
    """The payload of `invoice` as its transaction left it (payments and refunds loaded): the
    request's loaders take its rows, replacing what an earlier root field of the same
    operation may have read before this change, and forget its history."""
    loaders = info.context.loaders
    loaders.payments.clear(invoice.id).prime(invoice.id, lines_of(PaymentLine, invoice.payments))
    loaders.refunds.clear(invoice.id).prime(invoice.id, lines_of(RefundLine, invoice.refunds))
    loaders.events.clear(invoice.id)
    return InvoicePayload(invoice=InvoiceType(row=invoice))


async def send_invoice(info: Info, input: SendInvoiceInput) -> InvoicePayload:
    """PROVIDER assigned to the enabled Client Billing service, to one of their own clients."""
    viewer = viewer_of(info)
    client_id = decode_person_id(input.client_id)
    claim = claim_of(
        viewer,
        "sendInvoice",
        input.idempotency_key,
        {
            "clientId": input.client_id,
            "description": input.description,
            "amount": input.amount,
            "dueDate": input.due_date,
        },
    )
    async with info.context.db.writer() as session:
        try:
            async with session.begin():
                first = await replay_or_check(session, viewer, viewer.practice_id, client_id, claim)
                if first is not None:
                    raise _Replay(first)
                assert client_id is not None
                # The practice row lock serialises sends: invoice numbers stay gap-free.
                practice = await lock_for_sending(session, viewer.practice_id)
                now = utcnow()
                invoice = await send(
                    session,
                    practice,
                    provider_id=viewer.user_id,
                    client_id=client_id,
                    description=input.description,
                    amount=input.amount,
                    due_date=input.due_date,
                    today=now.astimezone(ZoneInfo(practice.time_zone)).date(),
                    now=now,
                    number=practice.last_invoice_number,
                )
                first = await claim_key(session, claim, invoice.id)
                if first is not None:  # the same key's send committed since the check
                    raise _Replay(first)  # rolls back this send and the number drawn
        except _Replay as replay:
            # The first result as it is now (its amounts are read by the loaders).
            first_sent = await session.get_one(Invoice, replay.invoice_id)
            return InvoicePayload(invoice=InvoiceType(row=first_sent))
        except (StaleDataError, IntegrityError):
            raise _CONCURRENT from None
    return _written(info, invoice)


async def record_payment(info: Info, input: RecordPaymentInput) -> InvoicePayload:
    """ADMIN or the invoice's PROVIDER records money received outside the processor."""
    viewer = viewer_of(info)
    if input.method is PaymentMethodKind.CARD:
        raise validation("card payments go through payInvoice", "method")
    reference = input.reference.strip() if input.reference else None
    if reference is not None and len(reference) > 200:
        raise validation("reference must be at most 200 characters", "reference")
    received_at: datetime | None = as_utc(input.received_at)
    claim = claim_of(
        viewer,
        "recordPayment",
        input.idempotency_key,
        {
            "invoiceId": input.invoice_id,
            "amount": input.amount,
            "method": input.method,
            "reference": reference,
            "receivedAt": received_at,
        },
    )

    async def apply(_session: AsyncSession, invoice: Invoice, actor: Viewer) -> None:
        invoice.record_payment(
            amount=input.amount,
            method=input.method,
            actor_id=actor.user_id,
            reference=reference,
            received_at=received_at,
        )

    return await change_invoice(info, input.invoice_id, Operation.RECORD_PAYMENT, apply, claim)


def _reason(raw: str | None) -> str | None:
    reason = raw.strip() if raw else None
    if reason is not None and len(reason) > 1000:
        raise validation("reason must be at most 1000 characters", "reason")
    return reason or None


async def forgive_invoice(info: Info, input: InvoiceActionInput) -> InvoicePayload:
    """Write off what is still due on an UNPAID invoice."""
    reason = _reason(input.reason)

    async def apply(_session: AsyncSession, invoice: Invoice, actor: Viewer) -> None:
        invoice.forgive(actor_id=actor.user_id, reason=reason)

    return await change_invoice(info, input.invoice_id, Operation.FORGIVE, apply)


async def void_invoice(info: Info, input: InvoiceActionInput) -> InvoicePayload:
    """Cancel an UNPAID invoice that has no payment."""
    reason = _reason(input.reason)

    async def apply(_session: AsyncSession, invoice: Invoice, actor: Viewer) -> None:
        invoice.void(actor_id=actor.user_id, reason=reason)

    return await change_invoice(info, input.invoice_id, Operation.VOID, apply)
