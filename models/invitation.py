"""Invitations to a practice: what an admin's `addMember` makes for anyone who is not yet a
member of the practice, whether or not the email has an account. Nothing of the practice
changes until the person accepts with the one-time token (and their password): no membership,
no name shown, no account touched. The invitation holds the name the admin typed; an account
that already exists keeps its own name and password."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, EnumText, IdColumn, UTCDateTime, utcnow
from models.enums import Role


class Invitation(Base):
    __tablename__ = "invitations"
    __table_args__ = (UniqueConstraint("practice_id", "email", "role"),)

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    practice_id: Mapped[int] = mapped_column(
        ForeignKey("practices.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))  # lower-cased, as users.email
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(EnumText(Role))
    # argon2id of the initial password the admin chose, for an email without an account: the
    # invitation is accepted with it. Never applied to an account that exists.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # HMAC of the one-time token; a new invitation to the same role replaces it.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
