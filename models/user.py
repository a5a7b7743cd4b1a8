"""Users, their roles in practices (memberships), provider–client assignments and sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, EnumText, IdColumn, UTCDateTime, utcnow
from models.enums import Role


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    name: Mapped[str] = mapped_column(String(200))
    # argon2id; NULL until an invited user sets a password.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Membership(Base):
    """A user holding one role in one practice."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "practice_id", "role"),)

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    practice_id: Mapped[int] = mapped_column(
        ForeignKey("practices.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(EnumText(Role))
    # HMAC of a one-time invite token; cleared once used.
    invite_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProviderClient(Base):
    """A client assigned to a provider within a practice."""

    __tablename__ = "provider_clients"
    __table_args__ = (UniqueConstraint("practice_id", "provider_id", "client_id"),)

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class AuthSession(Base):
    """A bearer token: only its HMAC is stored. Valid while unexpired, unrevoked and the
    membership it acts through still exists."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    role: Mapped[Role] = mapped_column(EnumText(Role))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
