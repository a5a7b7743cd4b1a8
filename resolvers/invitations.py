"""Members join a practice by invitation: `addMember` (ADMIN) and `acceptInvite`.

Anyone not yet a member of the practice is invited, whether or not the email has an account:
the answer is the same either way (a one-time token, no user), and nothing of the practice or
of the account changes until the person accepts with their password. Someone who already holds
a role here gets the new role at once (this practice knows them already)."""

from __future__ import annotations

import asyncio

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.crypto import new_token
from adapters.passwords import hash_password, verify_password
from models import Invitation, Membership, User
from models.enums import Role as DomainRole
from models.errors import DomainError, ErrorCode, not_found, validation
from resolvers import sessions
from resolvers.accounts import MIN_PASSWORD_LENGTH, viewer_payload
from schema.context import Info, viewer_of
from schema.users import AddMemberInput, LoginPayload, MemberPayload, UserType


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= 256:
        raise validation(f"password must be {MIN_PASSWORD_LENGTH} to 256 characters", "password")


def _checked_input(input: AddMemberInput) -> tuple[str, str]:
    email = input.email.strip().lower()
    name = input.name.strip()
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@"):
        raise validation("not an email address", "email")
    if not 1 <= len(name) <= 200:
        raise validation("name must be 1 to 200 characters", "name")
    if input.role is DomainRole.ADMIN:
        raise validation("members are added as PROVIDER or CLIENT", "role")
    if input.password is not None:
        _check_password(input.password)
    return email, name


async def _member_here(session: AsyncSession, email: str, practice_id: int) -> User | None:
    """The account of `email` if it already holds a role in the practice."""
    return (
        await session.execute(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(User.email == email, Membership.practice_id == practice_id)
            .limit(1)
        )
    ).scalar_one_or_none()


async def add_member(info: Info, input: AddMemberInput) -> MemberPayload:
    """ADMIN (MayManageMembers): a new role for a member of the practice, or an invitation
    for anyone else."""
    viewer = viewer_of(info)
    email, name = _checked_input(input)
    ctx = info.context
    password_hash = (
        None if input.password is None else await asyncio.to_thread(hash_password, input.password)
    )
    token = new_token()
    try:
        async with ctx.db.writer() as session, session.begin():
            member = await _member_here(session, email, viewer.practice_id)
            if member is not None:
                if input.password is not None:
                    raise validation(
                        "this member already has an account: add the role without a password",
                        "password",
                    )
                session.add(
                    Membership(user_id=member.id, practice_id=viewer.practice_id, role=input.role)
                )
                await session.flush()
                return MemberPayload(user=UserType(row=member))
            # A new invitation to the same role replaces the previous one (and its token).
            await session.execute(
                delete(Invitation).where(
                    Invitation.practice_id == viewer.practice_id,
                    Invitation.email == email,
                    Invitation.role == input.role,
                )
            )
            session.add(
                Invitation(
                    practice_id=viewer.practice_id,
                    email=email,
                    name=name,
                    role=input.role,
                    password_hash=password_hash,
                    token_hash=ctx.services.vault.token_hash(token),
                )
            )
    except IntegrityError:
        raise DomainError(
            ErrorCode.CONFLICT, f"{email} already holds the {input.role.value} role here", "email"
        ) from None
    return MemberPayload(user=None, invite_token=token)


async def _accepting_user(
    session: AsyncSession, invitation: Invitation, password: str, new_hash: str
) -> User:
    """The account joining: the existing one, its password checked (or set, if it has none
    yet); else a new one, with the initial password the admin chose if there was one."""
    user = (
        await session.execute(select(User).where(User.email == invitation.email))
    ).scalar_one_or_none()
    if user is None:
        if invitation.password_hash is not None and not await asyncio.to_thread(
            verify_password, invitation.password_hash, password
        ):
            raise validation("accept with the password you were given", "password")
        user = User(email=invitation.email, name=invitation.name, password_hash=new_hash)
        session.add(user)
        await session.flush()
    elif user.password_hash is None:
        user.password_hash = new_hash
    elif not await asyncio.to_thread(verify_password, user.password_hash, password):
        # The invitation joins this practice with the account's password; it never replaces it.
        raise validation("this account has a password: accept with it", "password")
    return user


async def accept_invite(info: Info, invite_token: str, password: str) -> LoginPayload:
    """Join the practice of a one-time invitation with one's password, and log in."""
    _check_password(password)
    ctx = info.context
    new_hash = await asyncio.to_thread(hash_password, password)  # before taking the write lock
    token_hash = ctx.services.vault.token_hash(invite_token)
    async with ctx.db.writer() as session, session.begin():
        invitation = (
            await session.execute(select(Invitation).where(Invitation.token_hash == token_hash))
        ).scalar_one_or_none()
        if invitation is None:
            membership = await _legacy_invite(session, token_hash, password, new_hash)
        else:
            user = await _accepting_user(session, invitation, password, new_hash)
            await session.delete(invitation)
            membership = await _join(session, user.id, invitation.practice_id, invitation.role)
        token, scope = await sessions.issue(
            session, ctx.services, membership.user_id, membership.practice_id, membership.role
        )
    return await viewer_payload(ctx, token, scope)


async def _join(session: AsyncSession, user_id: int, practice_id: int, role: str) -> Membership:
    held = (
        await session.execute(
            select(Membership).where(
                Membership.user_id == user_id,
                Membership.practice_id == practice_id,
                Membership.role == role,
            )
        )
    ).scalar_one_or_none()
    if held is not None:
        return held  # joined meanwhile (added directly after another role was accepted)
    membership = Membership(user_id=user_id, practice_id=practice_id, role=DomainRole(role))
    session.add(membership)
    await session.flush()
    return membership


async def _legacy_invite(
    session: AsyncSession, token_hash: str, password: str, new_hash: str
) -> Membership:
    """Invites made before invitations had a table of their own: a membership holding the
    token's hash, for a user who may not have a password yet."""
    membership = (
        await session.execute(select(Membership).where(Membership.invite_token_hash == token_hash))
    ).scalar_one_or_none()
    if membership is None:
        raise not_found("invite", "inviteToken")
    user = await session.get_one(User, membership.user_id)
    if user.password_hash is None:
        user.password_hash = new_hash
    elif not await asyncio.to_thread(verify_password, user.password_hash, password):
        raise validation("this account has a password: accept with it", "password")
    membership.invite_token_hash = None
    return membership
