"""Card-payment attempts at a processor, the webhook events already handled, and how a
processor's answer settles on an invoice (the same rules for our own request and a webhook)."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, EnumText, IdColumn, MoneyColumn, UTCDateTime, utcnow
from models.enums import PaymentMethodKind
from models.invoice import Invoice, Operation, refusal


class AttemptStatus(enum.StrEnum):
    PROCESSING = "PROCESSING"  # a request is at the processor now (until `claimed_until`)
    UNKNOWN = "UNKNOWN"  # the processor did not answer: resolved by replaying the same key
    REQUIRES_ACTION = "REQUIRES_ACTION"  # waiting for the customer (3-D Secure)
    SUCCEEDED = "SUCCEEDED"
    DECLINED = "DECLINED"


# An invoice has at most one open attempt: it is resolved before another one starts.
OPEN_ATTEMPT = (AttemptStatus.PROCESSING, AttemptStatus.UNKNOWN, AttemptStatus.REQUIRES_ACTION)


class PaymentAttempt(Base):
    """Stored before the processor is called, so a retry reuses the same processor idempotency
    key and can never charge twice."""

    __tablename__ = "payment_attempts"
    __table_args__ = (UniqueConstraint("invoice_id", "attempt"),)

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    processor_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_processors.id", ondelete="SET NULL")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(MoneyColumn)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    # The processor's token for the card (e.g. pm_…), never a card number.
    payment_method: Mapped[str | None] = mapped_column(String(255))
    processor_reference: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[AttemptStatus] = mapped_column(
        EnumText(AttemptStatus), default=AttemptStatus.PROCESSING
    )
    # While PROCESSING: until when the request that claimed it may still be talking to the
    # processor. Past it the claim is stale (a crashed server) and the attempt is resolved.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def in_flight(self, now: datetime) -> bool:
        """Another request is at the processor with this attempt right now."""
        return (
            self.status is AttemptStatus.PROCESSING
            and self.claimed_until is not None
            and self.claimed_until > now
        )

    # The attempt's state machine: every change of `status` is one of the transitions below,
    # whoever reports the processor's answer (our own request or a webhook).
    #
    #   (new), PROCESSING, UNKNOWN, REQUIRES_ACTION --claim--> PROCESSING
    #   any open status --abandon--> DECLINED (its processor was removed or replaced)
    #   any --succeed--> SUCCEEDED
    #   any but SUCCEEDED, DECLINED --decline--> DECLINED
    #   any but SUCCEEDED --await_customer--> REQUIRES_ACTION
    #   PROCESSING --unanswered--> UNKNOWN (the same key is replayed later)
    #   PROCESSING --refuse--> DECLINED (the processor refused the request itself)
    #   (found_at records the payment's id a look-up found; the status stays)

    @property
    def ended(self) -> bool:
        return self.status in (AttemptStatus.SUCCEEDED, AttemptStatus.DECLINED)

    def claim(self, now: datetime, lease: timedelta) -> None:
        self._move(AttemptStatus.PROCESSING)
        self.claimed_until = now + lease

    def abandon(self, reason: str) -> None:
        self._move(AttemptStatus.DECLINED, None, reason)

    def succeed(self, reference: str) -> None:
        self._move(AttemptStatus.SUCCEEDED, reference)

    def decline(self, reason: str, reference: str | None) -> bool:
        """False when the attempt had already ended (a late or repeated report)."""
        if self.ended:
            return False
        self._move(AttemptStatus.DECLINED, reference, reason)
        return True

    def await_customer(self, reference: str) -> None:
        if self.status is not AttemptStatus.SUCCEEDED:
            self._move(AttemptStatus.REQUIRES_ACTION, reference)

    def unanswered(self, reference: str | None = None) -> None:
        if self.status is AttemptStatus.PROCESSING:
            self._move(AttemptStatus.UNKNOWN, reference)

    def found_at(self, reference: str) -> None:
        """A look-up found its payment at the processor, not settled yet."""
        if not self.ended:
            self.processor_reference = reference

    def refuse(self, reason: str) -> None:
        if self.status is AttemptStatus.PROCESSING:
            self._move(AttemptStatus.DECLINED, None, reason)

    def _move(
        self, status: AttemptStatus, reference: str | None = None, reason: str | None = None
    ) -> None:
        self.status = status
        self.claimed_until = None
        if reference is not None:
            self.processor_reference = reference
        if reason is not None:
            self.failure_reason = reason[:500]


def payment_metadata(attempt: PaymentAttempt) -> dict[str, str]:
    """What the processor keeps with the payment: how a webhook or a look-up finds the attempt
    (payInvoice adds the invoice's number for people reading the processor's dashboard)."""
    return {"carebill_invoice": str(attempt.invoice_id), "carebill_attempt": str(attempt.id)}


class WebhookEvent(Base):
    """A processor event already handled: the same event id is never handled twice."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("processor_id", "event_id"),)

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    processor_id: Mapped[int] = mapped_column(
        ForeignKey("payment_processors.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Settlement(enum.Enum):
    RECORDED = "recorded"  # the payment is now on the invoice
    ALREADY_RECORDED = "already recorded"  # by an earlier request or event
    NOT_PAYABLE = "not payable"  # the invoice was settled otherwise meanwhile: give it back


def settle_success(
    invoice: Invoice,
    attempt: PaymentAttempt,
    *,
    reference: str,
    amount: int,
    actor_id: int | None,
    now: datetime,
) -> Settlement:
    """The processor took `amount`: record it on the invoice once, whoever tells us first
    (our own request or a webhook). Needs the invoice locked with its payments loaded."""
    attempt.succeed(reference)
    if any(p.processor_reference == reference for p in invoice.payments):
        return Settlement.ALREADY_RECORDED
    amounts = invoice.amounts()
    if refusal(Operation.PAY, amounts) is not None or amount > amounts.due:
        attempt.failure_reason = "the invoice was settled otherwise meanwhile; charge returned"
        return Settlement.NOT_PAYABLE
    invoice.record_payment(
        amount=amount,
        method=PaymentMethodKind.CARD,
        actor_id=actor_id,
        processor_reference=reference,
        processor_id=attempt.processor_id,
        now=now,
    )
    return Settlement.RECORDED


def settle_decline(
    invoice: Invoice,
    attempt: PaymentAttempt,
    *,
    reason: str,
    reference: str | None,
    actor_id: int | None,
    now: datetime,
) -> bool:
    """The card was declined: the invoice is unchanged, its history and alerts say so once.
    False when the attempt had already ended (a late or repeated report)."""
    if not attempt.decline(reason, reference):
        return False
    invoice.record_payment_failure(actor_id=actor_id, reason=reason[:500], now=now)
    return True
