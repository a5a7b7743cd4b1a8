"""Who sees what: the SQL conditions behind every list and every loader.

ADMIN sees the whole practice, PROVIDER the clients assigned to them and those clients'
invoices, CLIENT only themselves. Nobody sees another practice.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, exists, select, true

from models.enums import Role
from models.invoice import Invoice
from models.user import Membership, ProviderClient


@dataclass(frozen=True, slots=True)
class Viewer:
    """The authenticated user acting in one role of one practice."""

    user_id: int
    practice_id: int
    role: Role
    session_id: int

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def _assigned_to(viewer: Viewer, client_id: SQLColumnExpression[int]) -> ColumnElement[bool]:
    return exists().where(
        ProviderClient.practice_id == viewer.practice_id,
        ProviderClient.provider_id == viewer.user_id,
        ProviderClient.client_id == client_id,
    )


def visible_client(viewer: Viewer, client_id: SQLColumnExpression[int]) -> ColumnElement[bool]:
    """`client_id` (a users.id column) is a client of the practice within the viewer's view."""
    is_client = exists().where(
        Membership.practice_id == viewer.practice_id,
        Membership.user_id == client_id,
        Membership.role == Role.CLIENT,
    )
    if viewer.role is Role.ADMIN:
        return is_client
    if viewer.role is Role.PROVIDER:
        return and_(is_client, _assigned_to(viewer, client_id))
    return and_(is_client, client_id == viewer.user_id)


def visible_invoices(viewer: Viewer) -> ColumnElement[bool]:
    """The condition on `invoices` rows that the viewer may see."""
    in_practice = Invoice.practice_id == viewer.practice_id
    if viewer.role is Role.ADMIN:
        return and_(in_practice, true())
    if viewer.role is Role.PROVIDER:
        return and_(in_practice, _assigned_to(viewer, Invoice.client_id))
    return and_(in_practice, Invoice.client_id == viewer.user_id)


def visible_client_ids(viewer: Viewer) -> ColumnElement[bool]:
    """Membership rows (role CLIENT) of clients within the viewer's view."""
    return and_(
        Membership.practice_id == viewer.practice_id,
        Membership.role == Role.CLIENT,
        visible_client(viewer, Membership.user_id),
    )


def client_ids_of_provider(practice_id: int, provider_id: int) -> ColumnElement[bool]:
    return ProviderClient.client_id.in_(
        select(ProviderClient.client_id).where(
            ProviderClient.practice_id == practice_id, ProviderClient.provider_id == provider_id
        )
    )
