"""Login throttling: failed logins are remembered per account and per client address for a
sliding window, and a key that failed too often inside it is refused until enough failures
have aged out. The account key is the normalised email, whether or not an account holds it,
so the answer never tells who has an account; a correct password works again once the window
has passed, and other accounts are never affected."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IdColumn, UTCDateTime


class LoginFailure(Base):
    """One failed login, filed under one throttle key (an account's or an address's)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    key: Mapped[str] = mapped_column(String(80), index=True)
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


@dataclass(frozen=True)
class LoginThrottlePolicy:
    max_failures_per_account: int
    max_failures_per_address: int
    window: timedelta

    def limit_of(self, key: str) -> int:
        return (
            self.max_failures_per_account
            if key.startswith("account:")
            else self.max_failures_per_address
        )


def account_key(email: str) -> str:
    """The throttle key of an email (hashed: the table holds no addresses of people)."""
    digest = hashlib.sha256(email.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()
    return f"account:{digest[:64]}"


def address_key(address: str) -> str:
    return f"address:{address[:64]}"


def seconds_until_allowed(
    failures: Sequence[datetime], limit: int, window: timedelta, now: datetime
) -> int:
    """0 when a login may be tried now; else the whole seconds until enough of the failures
    inside the window (`failures`, any order) have aged out to leave fewer than `limit`."""
    recent = sorted(at for at in failures if at > now - window)
    if len(recent) < limit:
        return 0
    # Once the (len - limit + 1) oldest have expired, fewer than `limit` remain.
    frees_at = recent[len(recent) - limit] + window
    return max(1, math.ceil((frees_at - now).total_seconds()))
