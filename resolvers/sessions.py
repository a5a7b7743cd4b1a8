"""Bearer-token sessions: issue, authenticate, revoke."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.crypto import new_token
from adapters.id_lists import one_of
from models import AuthSession, Membership
from models.base import utcnow
from models.enums import Role
from models.scope import Viewer
from schema.services import Services


async def issue(
    session: AsyncSession, services: Services, user_id: int, practice_id: int, role: Role
) -> tuple[str, Viewer]:
    token = new_token()
    now = utcnow()
    row = AuthSession(
        token_hash=services.vault.token_hash(token),
        user_id=user_id,
        practice_id=practice_id,
        role=role,
        created_at=now,
        expires_at=now + services.settings.token_ttl,
    )
    session.add(row)
    await session.flush()
    return token, Viewer(user_id=user_id, practice_id=practice_id, role=role, session_id=row.id)


def _valid_sessions(now: datetime) -> Select[int, int, int, Role]:
    """Sessions that are unexpired, unrevoked and whose membership still exists."""
    return (
        select(AuthSession.id, AuthSession.user_id, AuthSession.practice_id, AuthSession.role)
        .join(
            Membership,
            (Membership.user_id == AuthSession.user_id)
            & (Membership.practice_id == AuthSession.practice_id)
            & (Membership.role == AuthSession.role),
        )
        .where(AuthSession.revoked_at.is_(None), AuthSession.expires_at > now)
    )


async def authenticate(services: Services, token: str | None) -> Viewer | None:
    """The viewer behind `token`, or None when it is not a valid session."""
    if not token:
        return None
    statement = _valid_sessions(utcnow()).where(
        AuthSession.token_hash == services.vault.token_hash(token)
    )
    async with services.db.reader() as session:
        row = (await session.execute(statement)).first()
    if row is None:
        return None
    return Viewer(user_id=row[1], practice_id=row[2], role=Role(row[3]), session_id=row[0])


async def is_active(services: Services, session_id: int) -> bool:
    """Whether a session is still valid (long-lived subscriptions re-check it)."""
    async with services.db.reader() as session:
        row = (
            await session.execute(_valid_sessions(utcnow()).where(AuthSession.id == session_id))
        ).first()
    return row is not None


async def active_sessions(services: Services, session_ids: Collection[int]) -> set[int]:
    """Which of `session_ids` are still valid sessions, in one query (the subscriptions of a
    shared alert feed re-check theirs together)."""
    db = services.db
    statement = _valid_sessions(utcnow()).where(
        one_of(AuthSession.id, session_ids, sqlite=db.is_sqlite)
    )
    async with db.reader() as session:
        return {row[0] for row in await session.execute(statement)}


async def revoke(session: AsyncSession, session_id: int) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
