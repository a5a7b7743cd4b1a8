"""Creating a practice with its first admin (`carebill create-practice`)."""

from __future__ import annotations

from sqlalchemy import select

from adapters.database import Database
from adapters.passwords import hash_password
from models import Membership, Practice, User
from models.currency import currency_code
from models.enums import Role


async def create_practice(
    db: Database,
    *,
    name: str,
    currency: str,
    time_zone: str,
    admin_email: str,
    admin_name: str,
    admin_password: str,
) -> int:
    """A new practice whose first ADMIN is `admin_email` (an existing user keeps their
    password). Raises ValueError on bad input."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name, admin_name = name.strip(), admin_name.strip()
    # The columns' limits: on PostgreSQL a longer value would fail in the INSERT.
    if not name:
        raise ValueError("the practice needs a name")
    if len(name) > 200:
        raise ValueError("the practice's name must be at most 200 characters")
    if not 1 <= len(admin_name) <= 200:
        raise ValueError("the admin needs a name of at most 200 characters")
    currency = currency_code(currency)  # UnknownCurrency is a ValueError, said as such
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{time_zone!r} is not an IANA time zone") from None
    email = admin_email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise ValueError(f"{admin_email!r} is not an email address")
    if len(admin_password) < 8:
        raise ValueError("the password must have at least 8 characters")
    async with db.writer() as session, session.begin():
        practice = Practice(name=name, currency=currency, time_zone=time_zone)
        session.add(practice)
        user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
        if user is None:
            user = User(email=email, name=admin_name, password_hash=hash_password(admin_password))
            session.add(user)
        await session.flush()
        session.add(Membership(user_id=user.id, practice_id=practice.id, role=Role.ADMIN))
    return practice.id
