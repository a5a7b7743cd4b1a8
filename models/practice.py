"""A practice (tenant), its Client Billing service and its payment-processor configurations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, EnumText, IdColumn, UTCDateTime, utcnow
from models.enums import ProcessorType, SalesTaxMode


class Practice(Base):
    __tablename__ = "practices"

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    time_zone: Mapped[str] = mapped_column(String(64))
    sales_tax_mode: Mapped[SalesTaxMode] = mapped_column(
        EnumText(SalesTaxMode), default=SalesTaxMode.NONE
    )
    sales_tax_rate_bp: Mapped[int] = mapped_column(Integer, default=0)
    sales_tax_label: Mapped[str | None] = mapped_column(String(100))
    client_billing_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last invoice number handed out; incremented under the practice row's lock.
    last_invoice_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClientBillingProvider(Base):
    """A provider assigned to the practice's Client Billing service: they may invoice."""

    __tablename__ = "client_billing_providers"
    __table_args__ = (UniqueConstraint("practice_id", "user_id"),)

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class PaymentProcessorConfig(Base):
    """One processor per type per practice. Credentials are an encrypted JSON blob.

    Removing a processor only marks it removed: payments and refunds taken through it must
    still be looked up, cancelled, refunded and reconciled with its credentials, and its
    webhook path keeps answering. One live (not removed) processor per type per practice."""

    __tablename__ = "payment_processors"
    __table_args__ = (
        Index(
            "uq_payment_processors_live_type",
            "practice_id",
            "type",
            unique=True,
            sqlite_where=text("removed_at IS NULL"),
            postgresql_where=text("removed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    type: Mapped[ProcessorType] = mapped_column(EnumText(ProcessorType))
    description: Mapped[str | None] = mapped_column(String(200))
    # Publishable keys are public by design (the client's app needs them to tokenize a card).
    publishable_key: Mapped[str | None] = mapped_column(String(255))
    encrypted_credentials: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
