"""Alerts: the outbox of invoice changes, written in the transaction that makes the change.

Ordering. Alert ids come from a sequence drawn when the row is inserted, so on PostgreSQL two
transactions can commit in the opposite order of their ids: a reader that has seen id 12
(committed) may see id 11 only later. A cursor over ids would skip 11. So alerts are ordered
by `commit_seq` instead, a position given to the row *at commit*, in commit order within a
practice:

- PostgreSQL: a deferred constraint trigger runs when the transaction commits. It takes a
  transaction-scoped advisory lock on the practice, then draws `commit_seq` from its own
  sequence. The lock is released only after the commit is visible, so within one practice a
  larger `commit_seq` always belongs to a transaction that became visible later.
- SQLite: every writing transaction holds the database write lock from BEGIN IMMEDIATE (or its
  first write) to COMMIT, so ids are already drawn in commit order; a trigger copies the id.

Hence, within a practice: whoever has read every alert up to position N will never see a new
alert at a position <= N. Every inbox is inside one practice, so "everything after position N"
is a gap-free, duplicate-free cursor, and catch-up and live delivery are the same query.
`commit_seq` is NULL only inside the writing transaction itself, never in a committed row.
The triggers are created by the migration (`migrations/versions/0001_initial_schema.py`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, EnumText, IdColumn, UTCDateTime, utcnow
from models.enums import AlertKind


class Alert(Base):
    """Who sees an alert is who sees its invoice; `commit_seq` orders alerts."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_practice_id_commit_seq", "practice_id", "commit_seq"),)

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    practice_id: Mapped[int] = mapped_column(
        ForeignKey("practices.id", ondelete="CASCADE"), index=True
    )
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    kind: Mapped[AlertKind] = mapped_column(EnumText(AlertKind))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set by the database when the writing transaction commits (see the module docstring).
    commit_seq: Mapped[int | None] = mapped_column(BigInteger)
    # Set by the relay once the alert went out through the broker.
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Set by the notification dispatcher once it wrote this alert's deliveries (or decided
    # there are none): see adapters/dispatcher.py.
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class AlertRead(Base):
    """A user marked an alert read."""

    __tablename__ = "alert_reads"
    __table_args__ = (UniqueConstraint("alert_id", "user_id"),)

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
