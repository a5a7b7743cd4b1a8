"""Accounts: login, switching roles, logout, members and provider–client assignments."""

from __future__ import annotations

import asyncio

import strawberry
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.passwords import verify_password
from models import AuthSession, ClientBillingProvider, Membership, ProviderClient, User
from models.base import utcnow
from models.enums import ROLE_PRIVILEGE_ORDER
from models.enums import Role as DomainRole
from models.errors import forbidden, not_found, validation
from models.scope import Viewer as Scope
from resolvers import sessions
from resolvers.login_throttle import login_failures, throttle_keys, too_many_attempts
from schema.context import Context, Info, viewer_of
from schema.enums import Role
from schema.node import decode_id, decode_person_id
from schema.users import (
    AssignClientInput,
    LoginPayload,
    MemberPayload,
    UserType,
    ViewerType,
)

MIN_PASSWORD_LENGTH = 8
_BAD_CREDENTIALS = "invalid email or password"


def _normalise_email(email: str) -> str:
    return email.strip().lower()


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= 256:
        raise validation(f"password must be {MIN_PASSWORD_LENGTH} to 256 characters", "password")


async def viewer_payload(ctx: Context, token: str, scope: Scope) -> LoginPayload:
    ctx.act_as(scope)
    user = await ctx.loaders.people.load(scope.user_id)
    assert user is not None
    roles = await ctx.loaders.roles.load(scope.user_id)
    return LoginPayload(token=token, viewer=ViewerType(user_row=user, role=scope.role, roles=roles))


async def _memberships(session: AsyncSession, user_id: int) -> list[Membership]:
    rows = await session.execute(
        select(Membership).where(Membership.user_id == user_id).order_by(Membership.practice_id)
    )
    return list(rows.scalars())


def _choose(memberships: list[Membership], role: DomainRole | None) -> Membership | None:
    """The requested role, else the least privileged one the user holds (first practice)."""
    if not memberships:
        return None
    practice_id = memberships[0].practice_id
    held = {m.role: m for m in memberships if m.practice_id == practice_id}
    if role is not None:
        return next((m for m in memberships if m.role == role), None)
    return next(held[r] for r in ROLE_PRIVILEGE_ORDER if r in held)


async def login(info: Info, email: str, password: str, role: Role | None = None) -> LoginPayload:
    """Exchange email and password for a bearer token acting in one role."""
    ctx = info.context
    throttle, keys = login_failures(ctx), throttle_keys(ctx, email)
    # Refused before the password is checked: a throttled guess costs no argon2 time.
    wait_seconds = await throttle.wait_seconds(keys)
    if wait_seconds:
        return too_many_attempts(ctx, wait_seconds)
    async with ctx.db.reader() as session:
        user = (
            await session.execute(select(User).where(User.email == _normalise_email(email)))
        ).scalar_one_or_none()
        memberships = await _memberships(session, user.id) if user is not None else []
    # Unknown email and wrong password take the same path and give the same answer. argon2 is
    # slow on purpose: it runs in a thread (the event loop keeps serving) and outside any
    # writing transaction (on SQLite that lock is database-wide).
    verified = await asyncio.to_thread(
        verify_password, user.password_hash if user else None, password
    )
    if not verified or user is None:
        await throttle.record(keys)
        raise validation(_BAD_CREDENTIALS)
    await throttle.forget(keys[0])
    membership = _choose(memberships, role)
    if membership is None:
        raise forbidden("you do not hold that role in any practice")
    # A membership removed meanwhile leaves a token that never authenticates.
    async with ctx.db.writer() as session, session.begin():
        token, scope = await sessions.issue(
            session, ctx.services, user.id, membership.practice_id, membership.role
        )
    return await viewer_payload(ctx, token, scope)


async def switch_role(info: Info, role: Role) -> LoginPayload:
    """A new token acting in `role` of the same practice; the old token is revoked."""
    current = viewer_of(info)
    ctx = info.context
    async with ctx.db.writer() as session, session.begin():
        held = (
            await session.execute(
                select(Membership.id).where(
                    Membership.user_id == current.user_id,
                    Membership.practice_id == current.practice_id,
                    Membership.role == role,
                )
            )
        ).first()
        if held is None:
            raise forbidden(f"you do not hold the {role.value} role in this practice")
        await sessions.revoke(session, current.session_id)
        token, scope = await sessions.issue(
            session, ctx.services, current.user_id, current.practice_id, DomainRole(role)
        )
    return await viewer_payload(ctx, token, scope)


async def logout(info: Info) -> bool:
    """Revoke the token of this request."""
    current = viewer_of(info)
    async with info.context.db.writer() as session, session.begin():
        await sessions.revoke(session, current.session_id)
    info.context.act_as(None)
    return True


async def remove_member(info: Info, user_id: strawberry.ID, role: Role) -> MemberPayload:
    """ADMIN: take a role away; tokens acting through it stop working at once."""
    viewer = viewer_of(info)
    pk = decode_person_id(user_id)
    if pk is None:
        raise not_found("member", "userId")
    if pk == viewer.user_id and role is DomainRole.ADMIN:
        raise validation("you cannot remove your own ADMIN role", "role")
    ctx = info.context
    async with ctx.db.writer() as session, session.begin():
        removed = await session.execute(
            delete(Membership)
            .where(
                Membership.user_id == pk,
                Membership.practice_id == viewer.practice_id,
                Membership.role == role,
            )
            .returning(Membership.id)
        )
        if removed.first() is None:
            raise not_found("member", "userId")
        # Revoked for good: were the role given back, the old tokens must stay dead.
        await session.execute(
            update(AuthSession)
            .where(
                AuthSession.user_id == pk,
                AuthSession.practice_id == viewer.practice_id,
                AuthSession.role == role,
                AuthSession.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )
        if role is DomainRole.CLIENT:
            await session.execute(
                delete(ProviderClient).where(
                    ProviderClient.practice_id == viewer.practice_id,
                    ProviderClient.client_id == pk,
                )
            )
        if role is DomainRole.PROVIDER:
            await session.execute(
                delete(ProviderClient).where(
                    ProviderClient.practice_id == viewer.practice_id,
                    ProviderClient.provider_id == pk,
                )
            )
            await session.execute(
                delete(ClientBillingProvider).where(
                    ClientBillingProvider.practice_id == viewer.practice_id,
                    ClientBillingProvider.user_id == pk,
                )
            )
        user = await session.get_one(User, pk)
    return MemberPayload(user=UserType(row=user))


async def _assignment_parties(
    session: AsyncSession, viewer: Scope, data: AssignClientInput
) -> tuple[int, int]:
    provider = decode_id(data.provider_id, "User")
    # A client's id as listed by `clients` (Client) or as `addMember` returned it (User).
    client = decode_person_id(data.client_id)
    for pk, role, field in (
        (provider, DomainRole.PROVIDER, "providerId"),
        (client, DomainRole.CLIENT, "clientId"),
    ):
        held = (
            pk is not None
            and (
                await session.execute(
                    select(Membership.id).where(
                        Membership.user_id == pk,
                        Membership.practice_id == viewer.practice_id,
                        Membership.role == role,
                    )
                )
            ).first()
        )
        if not held:
            raise not_found(role.value.lower(), field)
    assert provider is not None
    assert client is not None
    return provider, client


async def assign_client(info: Info, input: AssignClientInput) -> MemberPayload:
    """ADMIN: make a client one of a provider's clients (idempotent)."""
    viewer = viewer_of(info)
    async with info.context.db.writer() as session, session.begin():
        provider, client = await _assignment_parties(session, viewer, input)
        exists = (
            await session.execute(
                select(ProviderClient.id).where(
                    ProviderClient.practice_id == viewer.practice_id,
                    ProviderClient.provider_id == provider,
                    ProviderClient.client_id == client,
                )
            )
        ).first()
        if exists is None:
            session.add(
                ProviderClient(
                    practice_id=viewer.practice_id, provider_id=provider, client_id=client
                )
            )
        user = await session.get_one(User, client)
    return MemberPayload(user=UserType(row=user))


async def unassign_client(info: Info, input: AssignClientInput) -> MemberPayload:
    """ADMIN: end a provider–client assignment."""
    viewer = viewer_of(info)
    async with info.context.db.writer() as session, session.begin():
        provider, client = await _assignment_parties(session, viewer, input)
        await session.execute(
            delete(ProviderClient).where(
                ProviderClient.practice_id == viewer.practice_id,
                ProviderClient.provider_id == provider,
                ProviderClient.client_id == client,
            )
        )
        user = await session.get_one(User, client)
    return MemberPayload(user=UserType(row=user))
