"""Refund attempts: every refund that moves money at the processor is a row committed before
the processor hears of it, with its own processor idempotency key, and settled once — by the
processor's answer, its webhook, or a later look-up — whoever learns of it first.

Two kinds of money go back to a card this way: a *refund* of a recorded payment, and a
*return* of a charge the invoice could not take (it was settled otherwise meanwhile), which
never was on the invoice's books and is given back whole, once per charge.

A refund request goes in three steps (resolvers/payments/refund_invoice.py): a short
transaction claims the attempt (the invoice locked, the rules checked, the amount *reserved* so
that concurrent refunds cannot pass the cap, the caller's idempotency key kept on the attempt);
the processor is called outside any transaction; a second short transaction settles it here.
A return goes the same way (resolvers/payments/card_refunds.py), claimed in the transaction
that found the charge could not be taken.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, EnumText, IdColumn, MoneyColumn, UTCDateTime, utcnow
from models.invoice import Invoice, Payment, Refund


class RefundKind(enum.StrEnum):
    REFUND = "REFUND"  # recorded payments given back (refundInvoice)
    RETURN = "RETURN"  # a charge the invoice could not take, given back whole


# What the processor keeps with a return: tells it from a refund (tests/books.py reads it too).
RETURN_REASON = "invoice already settled"


class RefundStatus(enum.StrEnum):
    PROCESSING = "PROCESSING"  # a request is at the processor now (until `claimed_until`)
    UNKNOWN = "UNKNOWN"  # the processor did not answer: looked up, or replayed with its key
    SUCCEEDED = "SUCCEEDED"  # the processor accepted it; the refund rows are recorded
    FAILED = "FAILED"  # the processor refused it; nothing was refunded


# Open attempts reserve their amount: they may still turn into money given back.
OPEN_REFUND = (RefundStatus.PROCESSING, RefundStatus.UNKNOWN)

# Stripe forgets an idempotency key after 24 hours: past that, an open attempt is looked up
# before it is ever replayed (a replay would then be a second refund).
PROCESSOR_KEY_LIFETIME = timedelta(hours=24)


class RefundAttempt(Base):
    __tablename__ = "refund_attempts"
    __table_args__ = (
        # A caller's key belongs to the practice it was used in, as idempotency keys do.
        UniqueConstraint("practice_id", "requested_by_id", "request_key"),
        # A charge is returned once, whoever finds that the invoice could not take it.
        Index(
            "uq_refund_attempts_returned_charge",
            "payment_reference",
            unique=True,
            sqlite_where=text("kind = 'RETURN'"),
            postgresql_where=text("kind = 'RETURN'"),
        ),
    )

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    kind: Mapped[RefundKind] = mapped_column(EnumText(RefundKind), default=RefundKind.REFUND)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    # The card payment given back at the processor; None for a return (never recorded).
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    processor_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_processors.id", ondelete="SET NULL")
    )
    # The processor's id of the payment (a PaymentIntent), kept even if its config goes.
    # For a return: the charge given back.
    payment_reference: Mapped[str] = mapped_column(String(255))
    # The whole refund as planned when claimed: payment id (as text) -> portion, the card
    # portion and any cash portions, recorded together when the card portion is settled.
    # Empty for a return: it reserves nothing of the invoice's payments.
    plan: Mapped[dict[str, int]] = mapped_column(JSON)
    amount: Mapped[int] = mapped_column(MoneyColumn)
    card_amount: Mapped[int] = mapped_column(MoneyColumn)
    reason: Mapped[str] = mapped_column(Text)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The caller's idempotency key and the fingerprint of its input: a retry finds the attempt.
    request_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # Ours, sent to the processor; it never changes, whoever retries.
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    processor_reference: Mapped[str | None] = mapped_column(String(255), unique=True)
    status: Mapped[RefundStatus] = mapped_column(
        EnumText(RefundStatus), default=RefundStatus.PROCESSING
    )
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @classmethod
    def returning(
        cls, invoice: Invoice, *, processor_id: int | None, charge: str, amount: int
    ) -> RefundAttempt:
        """The return of a charge the invoice could not take (claim it before calling)."""
        invoice_id = invoice.id
        return cls(
            kind=RefundKind.RETURN,
            practice_id=invoice.practice_id,
            invoice_id=invoice_id,
            payment_id=None,
            processor_id=processor_id,
            payment_reference=charge,
            plan={},
            amount=amount,
            card_amount=amount,
            reason=RETURN_REASON,
            # Random, fixed for the attempt's life: every try replays exactly this key.
            idempotency_key=f"carebill-return-{invoice_id}-{secrets.token_hex(12)}",
            status=RefundStatus.PROCESSING,
        )

    @property
    def is_return(self) -> bool:
        return self.kind is RefundKind.RETURN

    # The attempt's state machine:
    #   (new), UNKNOWN, stale PROCESSING --claim--> PROCESSING
    #   PROCESSING --unanswered--> UNKNOWN
    #   any open --succeed--> SUCCEEDED (a refund's rows recorded in the same transaction)
    #   any open --fail--> FAILED
    #   SUCCEEDED --failed_later--> FAILED (the processor reports it failed after all)

    @property
    def open(self) -> bool:
        return self.status in OPEN_REFUND

    def in_flight(self, now: datetime) -> bool:
        """Another request is at the processor with this attempt right now."""
        return (
            self.status is RefundStatus.PROCESSING
            and self.claimed_until is not None
            and self.claimed_until > now
        )

    def key_may_be_forgotten(self, now: datetime) -> bool:
        return now - self.created_at >= PROCESSOR_KEY_LIFETIME

    def claim(self, now: datetime, lease: timedelta) -> None:
        self.status = RefundStatus.PROCESSING
        self.claimed_until = now + lease

    def succeed(self, reference: str) -> bool:
        """The processor gave the money back as `reference` (for a refund, only with its rows:
        see `settle_refund`). False when it had already ended."""
        if not self.open:
            return False
        self.status = RefundStatus.SUCCEEDED
        self.claimed_until = None
        self.processor_reference = reference
        return True

    def unanswered(self) -> None:
        if self.status is RefundStatus.PROCESSING:
            self.status = RefundStatus.UNKNOWN
            self.claimed_until = None

    def fail(self, reason: str) -> bool:
        """False when it had already ended (a late or repeated report)."""
        if not self.open:
            return False
        self.status = RefundStatus.FAILED
        self.claimed_until = None
        self.failure_reason = reason[:500]
        return True

    def failed_later(self, reason: str) -> None:
        """The processor accepted it, then it failed (the refund rows are taken back)."""
        self.status = RefundStatus.FAILED
        self.claimed_until = None
        self.failure_reason = reason[:500]

    def portions(self, payments: Iterable[Payment]) -> list[tuple[Payment, int]]:
        by_id = {p.id: p for p in payments}
        return [(by_id[int(pid)], part) for pid, part in self.plan.items()]


def reserved_by(attempts: Iterable[RefundAttempt]) -> dict[int, int]:
    """What the open attempts hold back, by payment id (see `Invoice.refund_plan`)."""
    held: dict[int, int] = {}
    for attempt in attempts:
        if attempt.open:
            for pid, part in attempt.plan.items():
                held[int(pid)] = held.get(int(pid), 0) + part
    return held


def settle_refund(
    invoice: Invoice,
    attempt: RefundAttempt,
    *,
    reference: str,
    now: datetime,
) -> list[Refund] | None:
    """The processor gave the card portion back as `reference`: record the whole refund once
    (its rows, one history event, one alert), whoever tells us first. None when the attempt
    had already ended, or was a return (never on the invoice's books). Needs the invoice
    locked with its payments and refunds loaded."""
    if not attempt.open:
        return None
    if attempt.is_return:
        attempt.succeed(reference)
        return None
    assert attempt.payment_id is not None  # a refund's card payment
    refunds = invoice.refund(
        amount=attempt.amount,
        reason=attempt.reason,
        actor_id=attempt.requested_by_id,
        processor_references={attempt.payment_id: reference},
        plan=attempt.portions(invoice.payments),
        now=now,
    )
    attempt.succeed(reference)
    return refunds


def refund_metadata(attempt: RefundAttempt) -> Mapping[str, str]:
    """What the processor keeps with the refund: how a look-up or a webhook finds the attempt."""
    metadata = {
        "carebill_invoice": str(attempt.invoice_id),
        "carebill_refund_attempt": str(attempt.id),
    }
    if attempt.is_return:
        metadata["carebill_reason"] = attempt.reason
    return metadata
