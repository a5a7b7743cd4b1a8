"""Bearer-token sessions: issue, authenticate, revoke."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.crypto import new_token
from adapters.database import Database
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


def _valid_sessions(now: datetime | ColumnElement[datetime]) -> Select[int, int, int, Role]:
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


# Every request with a token runs this statement: built once (its parameters bound at each run),
# where building it again cost a quarter of an `invoice(id:)`'s Python time.
_BY_TOKEN = _valid_sessions(bindparam("now")).where(AuthSession.token_hash == bindparam("hash"))


async def authenticate(
    services: Services, token: str | None, db: Database | None = None
) -> Viewer | None:
    """The viewer behind `token`, or None when it is not a valid session. `db`: the database as
    the request sees it (an HTTP request authenticates on its one read connection)."""
    if not token:
        return None
    parameters = {"now": utcnow(), "hash": services.vault.token_hash(token)}
    row: Any = (await (db or services.db).execute(_BY_TOKEN, parameters)).first()
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
