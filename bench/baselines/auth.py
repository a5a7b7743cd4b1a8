"""The bearer-token check both Python baselines make, the SQL CareBill runs for it
(resolvers/sessions.py): one statement, the session unexpired, unrevoked, its membership still
there."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from adapters.crypto import Vault
from models import AuthSession, Membership
from models.base import utcnow
from models.enums import Role
from models.scope import Viewer


def bearer(header: str | None) -> str | None:
    scheme, _, token = (header or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def session_of(vault: Vault, token: str) -> Select[int, int, int, Role]:
    return (
        select(AuthSession.id, AuthSession.user_id, AuthSession.practice_id, AuthSession.role)
        .join(
            Membership,
            (Membership.user_id == AuthSession.user_id)
            & (Membership.practice_id == AuthSession.practice_id)
            & (Membership.role == AuthSession.role),
        )
        .where(
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > utcnow(),
            AuthSession.token_hash == vault.token_hash(token),
        )
    )


def viewer_of(row: Any) -> Viewer | None:
    if row is None:
        return None
    return Viewer(user_id=row[1], practice_id=row[2], role=Role(row[3]), session_id=row[0])
