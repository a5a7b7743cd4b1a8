"""Alerts: the outbox of invoice changes, written in the transaction that makes the change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, EnumText, IdColumn, UTCDateTime, utcnow
from models.enums import AlertKind


class Alert(Base):
    """Who sees an alert is who sees its invoice; ids order alerts."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    practice_id: Mapped[int] = mapped_column(
        ForeignKey("practices.id", ondelete="CASCADE"), index=True
    )
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    kind: Mapped[AlertKind] = mapped_column(EnumText(AlertKind))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set by the relay once the alert went out through the broker.
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class AlertRead(Base):
    """A user marked an alert read."""

    __tablename__ = "alert_reads"
    __table_args__ = (UniqueConstraint("alert_id", "user_id"),)

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
