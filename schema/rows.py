"""Light rows of the read side: what a query selects for the API, built from plain columns
instead of ORM objects (no identity map, no change tracking, no column the API never shows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from models import InvoiceEvent, Payment, Refund, User
from models.enums import InvoiceAction, PaymentMethodKind

L = TypeVar("L")


@dataclass(frozen=True, slots=True)
class PersonRow:
    """What the API shows of a user (never the password hash)."""

    id: int
    name: str
    email: str


PERSON_COLUMNS = (User.id, User.name, User.email)


def people(rows: Sequence[Any]) -> list[PersonRow]:
    """PersonRows of result rows holding PERSON_COLUMNS (beside other columns)."""
    return [PersonRow(row.id, row.name, row.email) for row in rows]


@dataclass(frozen=True, slots=True)
class PaymentLine:
    """A payment as the API shows it."""

    id: int
    invoice_id: int
    amount: int
    method: PaymentMethodKind
    reference: str | None
    processor_reference: str | None
    received_at: datetime
    recorded_by_id: int | None


@dataclass(frozen=True, slots=True)
class RefundLine:
    """A refund as the API shows it."""

    id: int
    invoice_id: int
    amount: int
    reason: str
    created_at: datetime
    created_by_id: int | None


@dataclass(frozen=True, slots=True)
class EventLine:
    """A history event as the API shows it."""

    id: int
    invoice_id: int
    action: InvoiceAction
    actor_id: int | None
    at: datetime
    amount: int | None
    note: str | None


# The columns of each line, in its fields' order.
LINE_COLUMNS: dict[type[Any], tuple[Any, ...]] = {
    PaymentLine: (
        Payment.id,
        Payment.invoice_id,
        Payment.amount,
        Payment.method,
        Payment.reference,
        Payment.processor_reference,
        Payment.received_at,
        Payment.recorded_by_id,
    ),
    RefundLine: (
        Refund.id,
        Refund.invoice_id,
        Refund.amount,
        Refund.reason,
        Refund.created_at,
        Refund.created_by_id,
    ),
    EventLine: (
        InvoiceEvent.id,
        InvoiceEvent.invoice_id,
        InvoiceEvent.action,
        InvoiceEvent.actor_id,
        InvoiceEvent.at,
        InvoiceEvent.amount,
        InvoiceEvent.note,
    ),
}


def lines_of(line: type[L], rows: Sequence[Any]) -> list[L]:
    """Lines of ORM rows already in hand (a mutation's payload, from the rows it just wrote)."""
    keys = [column.key for column in LINE_COLUMNS[line]]
    return [line(*(getattr(row, key) for key in keys)) for row in rows]
