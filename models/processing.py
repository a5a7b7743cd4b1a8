"""Card-payment attempts at a processor and the webhook events already handled."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IdColumn, MoneyColumn, UTCDateTime, utcnow


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
    processor_reference: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(32), default="PENDING")
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WebhookEvent(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("processor_id", "event_id"),)

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    processor_id: Mapped[int] = mapped_column(
        ForeignKey("payment_processors.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
