"""Invoices, their payments, refunds and history — and the one state machine that changes them.

Amounts are never stored twice: `amount_paid` and `amount_refunded` are sums over the payment and
refund rows, so totals cannot disagree with the rows they come from. Every change goes through a
method here, which checks the transition table, appends exactly one history event and one alert
(the outbox row, committed in the same transaction), and sets the new status.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from sqlalchemy import (
    CheckConstraint,
    ColumnElement,
    Date,
    ForeignKey,
    Integer,
    ScalarSelect,
    String,
    Text,
    UniqueConstraint,
    case,
    func,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models import history
from models.base import Base, EnumText, IdColumn, MoneyColumn, UTCDateTime, utcnow
from models.enums import AlertKind, InvoiceAction, InvoiceStatus, PaymentMethodKind, SalesTaxMode
from models.errors import invalid_state, validation
from models.money import MAX_INPUT_AMOUNT

# Tolerance for clients whose clocks run a little ahead of ours.
CLOCK_SKEW = timedelta(minutes=5)


class Operation(enum.Enum):
    RECORD_PAYMENT = "record a payment on"
    PAY = "pay"
    FORGIVE = "forgive"
    VOID = "void"
    REFUND = "refund"
    REFUND_FAILED = "take back a failed refund of"


@dataclass(frozen=True, slots=True)
class Amounts:
    total: int
    paid: int
    refunded: int
    status: InvoiceStatus

    @property
    def due(self) -> int:
        return self.total - self.paid if self.status is InvoiceStatus.UNPAID else 0

    @property
    def refundable(self) -> int:
        return self.paid - self.refunded if self.status is InvoiceStatus.PAID else 0

    @property
    def forgiven(self) -> int:
        return self.total - self.paid if self.status is InvoiceStatus.FORGIVEN else 0


# `Amounts.due` in SQL, on `invoices` rows: what every query that shows or sums an amount due
# uses (the loaders' balances, the statement, the exports, the billing and aging reports).


def paid_on_invoice() -> ScalarSelect[int]:
    """The sum of the payments of the current `invoices` row (0 without any)."""
    return (
        select(func.coalesce(func.sum(Payment.amount), 0))
        .where(Payment.invoice_id == Invoice.id)
        .correlate(Invoice)
        .scalar_subquery()
    )


def amount_due(paid: ColumnElement[int] | ScalarSelect[int]) -> ColumnElement[int]:
    """The amount due of the current `invoices` row whose payments sum to `paid`."""
    return case((Invoice.status == InvoiceStatus.UNPAID, Invoice.total_amount - paid), else_=0)


def amount_due_per_row() -> dict[str, ColumnElement[int]]:
    """`amount_due` spread over an invoice's rows, for sums over many invoices that read each
    row once (models/reports/aggregates.py `figure_cells`): the invoice row counts its total
    while UNPAID, each of its payment rows takes its amount off again."""
    unpaid = Invoice.status == InvoiceStatus.UNPAID
    return {
        "invoice": case((unpaid, Invoice.total_amount), else_=0),
        "payment": case((unpaid, -Payment.amount), else_=0),
    }


def _after_payment(a: Amounts) -> InvoiceStatus:
    return InvoiceStatus.PAID if a.paid >= a.total else InvoiceStatus.UNPAID


def _after_refund(a: Amounts) -> InvoiceStatus:
    return InvoiceStatus.REFUNDED if a.refunded >= a.paid else InvoiceStatus.PAID


# The whole state machine: (status, operation) -> next status given the amounts after the change.
# A pair that is not here is INVALID_STATE.
TRANSITIONS: dict[tuple[InvoiceStatus, Operation], Callable[[Amounts], InvoiceStatus]] = {
    (InvoiceStatus.UNPAID, Operation.RECORD_PAYMENT): _after_payment,
    (InvoiceStatus.UNPAID, Operation.PAY): _after_payment,
    (InvoiceStatus.UNPAID, Operation.FORGIVE): lambda _: InvoiceStatus.FORGIVEN,
    (InvoiceStatus.UNPAID, Operation.VOID): lambda _: InvoiceStatus.VOID,
    (InvoiceStatus.PAID, Operation.REFUND): _after_refund,
    # A refund the processor accepted and then failed (the bank refused it): the money is
    # still the practice's, so the refund row goes and the invoice is refundable again.
    (InvoiceStatus.PAID, Operation.REFUND_FAILED): _after_refund,
    (InvoiceStatus.REFUNDED, Operation.REFUND_FAILED): _after_refund,
}


def refusal(operation: Operation, amounts: Amounts) -> str | None:
    """Why `operation` cannot happen now, or None when it can."""
    if (amounts.status, operation) not in TRANSITIONS:
        return f"cannot {operation.value} an invoice that is {amounts.status.value}"
    if operation is Operation.VOID and amounts.paid > 0:
        return "cannot void an invoice that has payments; forgive or refund instead"
    if operation is Operation.REFUND and amounts.refundable <= 0:
        return "nothing left to refund on this invoice"
    return None


def _check_amount(amount: int, field: str) -> None:
    if not 1 <= amount <= MAX_INPUT_AMOUNT:
        raise validation(f"amount must be between 1 and {MAX_INPUT_AMOUNT} minor units", field)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("practice_id", "number"),
        CheckConstraint("total_amount = subtotal_amount + tax_amount", name="total_is_sum"),
        CheckConstraint(
            "subtotal_amount >= 0 AND tax_amount >= 0 AND total_amount > 0", name="amounts_positive"
        ),
    )

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    client_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_amount: Mapped[int] = mapped_column(MoneyColumn)
    tax_amount: Mapped[int] = mapped_column(MoneyColumn)
    total_amount: Mapped[int] = mapped_column(MoneyColumn)
    # The sales-tax setting in force when the invoice was sent, frozen on it.
    tax_mode: Mapped[SalesTaxMode] = mapped_column(EnumText(SalesTaxMode))
    tax_rate_bp: Mapped[int] = mapped_column(Integer)
    tax_label: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[InvoiceStatus] = mapped_column(
        EnumText(InvoiceStatus), default=InvoiceStatus.UNPAID
    )
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    due_date: Mapped[date | None] = mapped_column(Date)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # forgiven or voided
    # Bumped by every change: a second guard beside the row lock.
    version: Mapped[int] = mapped_column(Integer, default=1)

    payments: Mapped[list[Payment]] = relationship(
        lazy="raise", order_by="Payment.id", back_populates="invoice"
    )
    refunds: Mapped[list[Refund]] = relationship(
        lazy="raise", order_by="Refund.id", back_populates="invoice", cascade="all, delete-orphan"
    )
    # Its history lines and alerts are written by models/history.py, not through relationships.

    __mapper_args__ = {"version_id_col": version}

    @property
    def display_number(self) -> str:
        return format_invoice_number(self.number)

    def amounts(self) -> Amounts:
        """Amounts from the loaded payment and refund rows."""
        return amounts_of(self, self.payments, self.refunds)

    # --- changes -------------------------------------------------------------------------

    def record_payment(
        self,
        *,
        amount: int,
        method: PaymentMethodKind,
        actor_id: int | None,
        reference: str | None = None,
        received_at: datetime | None = None,
        processor_reference: str | None = None,
        processor_id: int | None = None,
        now: datetime | None = None,
    ) -> Payment:
        now = now or utcnow()
        _check_amount(amount, "amount")
        operation = Operation.PAY if method is PaymentMethodKind.CARD else Operation.RECORD_PAYMENT
        before = self._require(operation)
        if amount > before.due:
            raise validation(
                f"amount {amount} is more than the {before.due} due on this invoice", "amount"
            )
        if received_at is not None and received_at > now + CLOCK_SKEW:
            raise validation("a payment cannot be received in the future", "receivedAt")
        payment = Payment(
            invoice_id=self.id,
            amount=amount,
            method=method,
            reference=reference,
            received_at=received_at or now,
            recorded_by_id=actor_id,
            processor_reference=processor_reference,
            processor_id=processor_id,
            created_at=now,
        )
        self.payments.append(payment)
        status = self._move(operation)
        if status is InvoiceStatus.PAID:
            self.paid_at = now
            self._record(
                InvoiceAction.PAID, AlertKind.INVOICE_PAID, actor_id, amount, reference, now
            )
        else:
            self._record(
                InvoiceAction.PAYMENT_RECORDED,
                AlertKind.PAYMENT_RECORDED,
                actor_id,
                amount,
                reference,
                now,
            )
        return payment

    def forgive(self, *, actor_id: int, reason: str | None, now: datetime | None = None) -> None:
        now = now or utcnow()
        written_off = self._require(Operation.FORGIVE).due
        self._move(Operation.FORGIVE)
        self.closed_at = now
        self._record(
            InvoiceAction.FORGIVEN, AlertKind.INVOICE_FORGIVEN, actor_id, written_off, reason, now
        )

    def void(self, *, actor_id: int, reason: str | None, now: datetime | None = None) -> None:
        now = now or utcnow()
        self._require(Operation.VOID)
        self._move(Operation.VOID)
        self.closed_at = now
        self._record(InvoiceAction.VOIDED, AlertKind.INVOICE_VOIDED, actor_id, None, reason, now)

    def refund_plan(
        self, amount: int | None, reserved: Mapping[int, int] | None = None
    ) -> list[tuple[Payment, int]]:
        """How a refund of `amount` (None = all refundable) splits over the payments, newest
        payment first; raises when the refund is not allowed now. `reserved` is what refunds
        still open at the processor hold back, by payment id (models/refunding.py): it is not
        refundable again. Card portions must be refunded at the processor before `refund`
        records them."""
        before = self._require(Operation.REFUND)
        held = reserved or {}
        refundable = before.refundable - sum(held.values())
        if amount is None:
            amount = refundable
            if amount <= 0:
                raise invalid_state("what is left to refund is being refunded already")
        _check_amount(amount, "amount")
        if amount > refundable:
            raise validation(f"amount {amount} is more than the {refundable} refundable", "amount")
        already = self._refunded_by_payment()
        plan: list[tuple[Payment, int]] = []
        left = amount
        for payment in sorted(self.payments, key=lambda p: p.id, reverse=True):
            part = min(left, payment.amount - already[payment.id] - held.get(payment.id, 0))
            if part > 0:
                plan.append((payment, part))
                left -= part
        assert left == 0, "refundable amount disagrees with the payment rows"
        return plan

    def _refunded_by_payment(self) -> dict[int, int]:
        already = {p.id: 0 for p in self.payments}
        for r in self.refunds:
            if r.payment_id in already:
                already[r.payment_id] += r.amount
        return already

    def refund(
        self,
        *,
        amount: int | None,
        reason: str,
        actor_id: int | None,
        processor_references: Mapping[int, str] | None = None,
        plan: Sequence[tuple[Payment, int]] | None = None,
        now: datetime | None = None,
    ) -> list[Refund]:
        """Refund `amount` (None = everything still refundable): one refund row per payment
        portion (see `refund_plan`, or the `plan` reserved when the refund was claimed), one
        history event. `processor_references` maps a card payment's id to the processor's
        refund id."""
        now = now or utcnow()
        if not reason.strip():
            raise validation("a reason is required to refund", "reason")
        references = processor_references or {}
        if plan is None:
            plan = self.refund_plan(amount)
        else:
            self._require(Operation.REFUND)
            already = self._refunded_by_payment()
            if any(part > payment.amount - already[payment.id] for payment, part in plan):
                raise validation("the refund is more than is refundable on its payment", "amount")
        refunds = [
            Refund(
                invoice_id=self.id,
                amount=part,
                reason=reason.strip(),
                payment_id=payment.id,
                processor_reference=references.get(payment.id),
                created_by_id=actor_id,
                created_at=now,
            )
            for payment, part in plan
        ]
        self.refunds.extend(refunds)
        self._move(Operation.REFUND)
        total = sum(part for _, part in plan)
        self._record(
            InvoiceAction.REFUNDED, AlertKind.INVOICE_REFUNDED, actor_id, total, reason.strip(), now
        )
        return refunds

    def refund_failed(self, refund: Refund, *, reason: str, now: datetime | None = None) -> None:
        """A recorded card refund failed at the processor afterwards: it no longer counts (its
        row goes), one history event and one alert say so."""
        now = now or utcnow()
        self._require(Operation.REFUND_FAILED)
        self.refunds.remove(refund)
        self._move(Operation.REFUND_FAILED)
        # The contract's alert kinds are fixed: a money move that failed is PAYMENT_FAILED.
        self._record(
            InvoiceAction.REFUND_FAILED, AlertKind.PAYMENT_FAILED, None, refund.amount, reason, now
        )

    def record_sent(self, *, actor_id: int, now: datetime) -> None:
        self._record(
            InvoiceAction.SENT, AlertKind.INVOICE_SENT, actor_id, self.total_amount, None, now
        )

    def record_payment_failure(self, *, actor_id: int | None, reason: str, now: datetime) -> None:
        """A declined card: the invoice is unchanged, but the history and the provider know."""
        self._record(
            InvoiceAction.PAYMENT_FAILED, AlertKind.PAYMENT_FAILED, actor_id, None, reason, now
        )

    # --- internals -----------------------------------------------------------------------

    def _require(self, operation: Operation) -> Amounts:
        amounts = self.amounts()
        reason = refusal(operation, amounts)
        if reason is not None:
            raise invalid_state(reason)
        return amounts

    def _move(self, operation: Operation) -> InvoiceStatus:
        step = TRANSITIONS[(self.status, operation)]
        self.status = step(self.amounts())
        return self.status

    def _record(
        self,
        action: InvoiceAction,
        kind: AlertKind,
        actor_id: int | None,
        amount: int | None,
        note: str | None,
        now: datetime,
    ) -> None:
        history.record(
            self,
            {
                "practice_id": self.practice_id,
                "action": action,
                "actor_id": actor_id,
                "amount": amount,
                "note": note,
                "at": now,
            },
            {"practice_id": self.practice_id, "kind": kind, "occurred_at": now},
        )


def format_invoice_number(number: int) -> str:
    return f"INV-{number:06d}"


class _Amounted(Protocol):
    """A payment or refund row, or any light copy of one (the API's read side)."""

    @property
    def amount(self) -> int: ...


def amounts_of(
    invoice: Invoice, payments: Sequence[_Amounted], refunds: Sequence[_Amounted]
) -> Amounts:
    return Amounts(
        total=invoice.total_amount,
        paid=sum(p.amount for p in payments),
        refunded=sum(r.amount for r in refunds),
        status=invoice.status,
    )


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount: Mapped[int] = mapped_column(MoneyColumn)
    method: Mapped[PaymentMethodKind] = mapped_column(EnumText(PaymentMethodKind))
    reference: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    processor_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_processors.id", ondelete="SET NULL")
    )
    processor_reference: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    invoice: Mapped[Invoice] = relationship(lazy="raise", back_populates="payments")


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    amount: Mapped[int] = mapped_column(MoneyColumn)
    reason: Mapped[str] = mapped_column(Text)
    processor_reference: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    invoice: Mapped[Invoice] = relationship(lazy="raise", back_populates="refunds")


class InvoiceEvent(Base):
    """One line of an invoice's history. Rows are only ever inserted."""

    __tablename__ = "invoice_events"

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    action: Mapped[InvoiceAction] = mapped_column(EnumText(InvoiceAction))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[int | None] = mapped_column(MoneyColumn)
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
