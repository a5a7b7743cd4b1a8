"""Accounts: login, token expiry and revocation, switchRole, logout, members and invites."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app import create_app
from models import AuthSession, ClientBillingProvider, Membership, ProviderClient, User
from models.base import utcnow
from models.enums import Role
from schema.node import encode_id
from settings import Settings
from tests.api import Api
from tests.asgi import running
from tests.factories import PASSWORD, Person, World
from tests.snapshots import snapshot

LOGIN = """mutation($email: String!, $password: String!, $role: Role) {
  login(email: $email, password: $password, role: $role) {
    token viewer { role roles user { id email } practice { id } } errors { code field message }
  } }"""
SWITCH_ROLE = """mutation($role: Role!) { switchRole(role: $role) {
  token viewer { role roles user { id } } errors { code field message } } }"""
LOGOUT = "mutation { logout }"
WHO = "{ viewer { role user { id } } }"
INVOICES = "{ invoices { totalCount } }"
ADD_MEMBER = """mutation($input: AddMemberInput!) { addMember(input: $input) {
  user { id name email roles } inviteToken errors { code field message } } }"""
REMOVE_MEMBER = """mutation($userId: ID!, $role: Role!) {
  removeMember(userId: $userId, role: $role) { user { id } errors { code field message } } }"""
ACCEPT_INVITE = """mutation($token: String!, $password: String!) {
  acceptInvite(inviteToken: $token, password: $password) {
    token viewer { role user { email } practice { id } } errors { code field message } } }"""
BILLING = "{ practice { clientBilling { providers { id } } } }"
CLIENTS = "{ clients { edges { node { id } } } }"

BAD_CREDENTIALS = {
    "login": {
        "token": None,
        "viewer": None,
        "errors": [{"code": "VALIDATION", "field": None, "message": "invalid email or password"}],
    }
}


def gid(type_name: str, pk: int) -> str:
    return str(encode_id(type_name, pk))


async def login(api: Api, email: str, password: str, role: str | None = None) -> dict[str, Any]:
    data = await api.data(LOGIN, {"email": email, "password": password, "role": role})
    payload: dict[str, Any] = data["login"]
    return payload


async def is_valid(api: Api, token: str) -> bool:
    """Whether `token` still authenticates (a protected query answers without error)."""
    codes = await api.error_codes(INVOICES, token=token)
    assert codes in ([], ["UNAUTHENTICATED"]), codes
    return codes == []


# --- login ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [("c1", "CLIENT"), ("provider", "PROVIDER"), ("admin", "PROVIDER")],
)
async def test_login_without_role_picks_the_least_privileged(
    api: Api, world: World, who: str, expected: str
) -> None:
    person: Person = getattr(world, who)
    payload = await login(api, f"  {person.email.upper()} ", PASSWORD)
    token = payload.pop("token")
    assert payload == {
        "viewer": {
            "role": expected,
            "roles": ["ADMIN", "PROVIDER"] if who == "admin" else [expected],
            "user": {"id": gid("User", person.id), "email": person.email},
            "practice": {"id": gid("Practice", world.practice_id)},
        },
        "errors": [],
    }
    assert await api.data(WHO, token=token) == {
        "viewer": {"role": expected, "user": {"id": gid("User", person.id)}}
    }


async def test_a_provider_who_is_also_a_client_logs_in_as_client(api: Api, world: World) -> None:
    """CLIENT < PROVIDER < ADMIN: the least privileged role held wins without `role`."""
    admin = await world.token(world.admin, Role.ADMIN)
    added = await api.data(
        ADD_MEMBER,
        {"input": {"email": world.provider2.email, "name": "x", "role": "CLIENT"}},
        admin,
    )
    assert added["addMember"]["errors"] == []
    default = await login(api, world.provider2.email, PASSWORD)
    assert (default["viewer"]["role"], default["viewer"]["roles"]) == (
        "CLIENT",
        ["PROVIDER", "CLIENT"],
    )
    chosen = await login(api, world.provider2.email, PASSWORD, "PROVIDER")
    assert chosen["viewer"]["role"] == "PROVIDER"


async def test_login_with_a_held_role(api: Api, world: World) -> None:
    payload = await login(api, world.admin.email, PASSWORD, "ADMIN")
    assert payload["errors"] == []
    assert payload["viewer"]["role"] == "ADMIN"
    assert await api.data(WHO, token=payload["token"]) == {
        "viewer": {"role": "ADMIN", "user": {"id": gid("User", world.admin.id)}}
    }


async def test_login_with_a_role_not_held_is_forbidden(api: Api, world: World) -> None:
    before = await snapshot(world.db, world.practice_id)
    payload = await login(api, world.provider.email, PASSWORD, "ADMIN")
    assert payload["token"] is None
    assert payload["viewer"] is None
    assert [e["code"] for e in payload["errors"]] == ["FORBIDDEN"]
    assert await snapshot(world.db, world.practice_id) == before


async def test_wrong_password_and_unknown_email_answer_identically(api: Api, world: World) -> None:
    before = await snapshot(world.db, world.practice_id)
    wrong_password = await api.post(
        LOGIN, {"email": world.c1.email, "password": "not-the-password"}
    )
    unknown_email = await api.post(
        LOGIN, {"email": f"nobody-{world.practice_id}@example.test", "password": PASSWORD}
    )
    empty = await api.post(LOGIN, {"email": "", "password": ""})
    assert wrong_password == unknown_email == empty == {"data": BAD_CREDENTIALS}
    assert await snapshot(world.db, world.practice_id) == before


async def test_an_invited_user_without_password_cannot_log_in(api: Api, world: World) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    email = f"invited-{world.practice_id}@example.test"
    added = await api.data(
        ADD_MEMBER, {"input": {"email": email, "name": "Ivy", "role": "CLIENT"}}, admin
    )
    assert added["addMember"]["errors"] == []
    for password in ("", "carebill-dummy-password", PASSWORD):
        assert await api.post(LOGIN, {"email": email, "password": password}) == {
            "data": BAD_CREDENTIALS
        }


# --- tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-token", "Bearer ", "Basic dXNlcjpwYXNz", "not-even-a-scheme", "Bearer  "],
)
async def test_bad_tokens_are_unauthenticated(api: Api, world: World, header: str) -> None:
    response = await api.http.post(
        "/graphql", json={"query": INVOICES}, headers={"authorization": header}
    )
    assert response.status_code == 200
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    viewer = await api.http.post("/graphql", json={"query": WHO}, headers={"authorization": header})
    assert viewer.json() == {"data": {"viewer": None}}


async def test_the_bearer_scheme_is_case_insensitive(api: Api, world: World) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    response = await api.http.post(
        "/graphql", json={"query": WHO}, headers={"Authorization": f"bEaReR {token}"}
    )
    assert response.json()["data"]["viewer"]["role"] == "CLIENT"


async def test_a_token_expires_after_the_configured_ttl(settings: Settings, world: World) -> None:
    """An app whose tokens live one second: a fresh login works, and stops working once expired."""
    short = Settings(
        database_url=settings.database_url,
        secret_key=settings.secret_key,
        token_ttl=timedelta(seconds=1),
    )
    async for api in _api_of(short):
        token = (await login(api, world.c1.email, PASSWORD))["token"]
        assert await is_valid(api, token)
        async with world.db.reader() as session:
            expires = (
                await session.execute(
                    select(AuthSession.expires_at, AuthSession.created_at).where(
                        AuthSession.token_hash == world.services.vault.token_hash(token)
                    )
                )
            ).one()
        assert expires[0] - expires[1] == timedelta(seconds=1)
        await asyncio.sleep(1.1)
        assert not await is_valid(api, token)
        assert await api.data(WHO, token=token) == {"viewer": None}


async def test_a_session_moved_past_its_expiry_is_refused(api: Api, world: World) -> None:
    token = await world.token(world.provider, Role.PROVIDER)
    assert await is_valid(api, token)
    async with world.db.writer() as session, session.begin():
        await session.execute(
            update(AuthSession)
            .where(AuthSession.token_hash == world.services.vault.token_hash(token))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert not await is_valid(api, token)


async def test_logout_revokes_only_this_token(api: Api, world: World) -> None:
    first = (await login(api, world.c1.email, PASSWORD))["token"]
    second = await world.token(world.c1, Role.CLIENT)
    assert await api.data(LOGOUT, token=first) == {"logout": True}
    assert not await is_valid(api, first)
    assert await is_valid(api, second)
    # Logging out twice: the token is no longer one.
    assert await api.error_codes(LOGOUT, token=first) == ["UNAUTHENTICATED"]


async def test_logout_then_later_fields_of_the_same_request_are_anonymous(
    api: Api, world: World
) -> None:
    token = await world.token(world.c2, Role.CLIENT)
    body = await api.post("mutation { logout again: logout }", token=token)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert not await is_valid(api, token)


async def test_switch_role_revokes_the_old_token(api: Api, world: World) -> None:
    old = (await login(api, world.admin.email, PASSWORD))["token"]
    payload = (await api.data(SWITCH_ROLE, {"role": "ADMIN"}, old))["switchRole"]
    new = payload.pop("token")
    assert payload == {
        "viewer": {
            "role": "ADMIN",
            "roles": ["ADMIN", "PROVIDER"],
            "user": {"id": gid("User", world.admin.id)},
        },
        "errors": [],
    }
    assert new != old
    assert not await is_valid(api, old)
    assert await api.data(WHO, token=new) == {
        "viewer": {"role": "ADMIN", "user": {"id": gid("User", world.admin.id)}}
    }


async def test_switch_to_a_role_not_held_keeps_the_token(api: Api, world: World) -> None:
    token = await world.token(world.provider, Role.PROVIDER)
    before = await snapshot(world.db, world.practice_id)
    payload = (await api.data(SWITCH_ROLE, {"role": "ADMIN"}, token))["switchRole"]
    assert payload["token"] is None
    assert [e["code"] for e in payload["errors"]] == ["FORBIDDEN"]
    assert await snapshot(world.db, world.practice_id) == before
    assert await is_valid(api, token)


# --- members -------------------------------------------------------------------------------


async def test_removing_a_role_revokes_its_tokens_at_once_and_for_good(
    api: Api, world: World
) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    as_provider = await world.token(world.provider2, Role.PROVIDER)
    assert await is_valid(api, as_provider)
    removed = await api.data(
        REMOVE_MEMBER, {"userId": gid("User", world.provider2.id), "role": "PROVIDER"}, admin
    )
    assert removed["removeMember"] == {
        "user": {"id": gid("User", world.provider2.id)},
        "errors": [],
    }
    assert not await is_valid(api, as_provider)
    # Giving the role back does not bring the old token back to life.
    added = await api.data(
        ADD_MEMBER,
        {"input": {"email": world.provider2.email, "name": "x", "role": "PROVIDER"}},
        admin,
    )
    assert added["addMember"]["errors"] == []
    # No longer a member here: they are invited, and join again only by accepting.
    assert added["addMember"]["inviteToken"]
    assert not await is_valid(api, as_provider)


async def test_removing_a_provider_ends_their_assignments_and_billing(
    api: Api, world: World
) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    removed = await api.data(
        REMOVE_MEMBER, {"userId": gid("User", world.provider.id), "role": "PROVIDER"}, admin
    )
    assert removed["removeMember"]["errors"] == []
    assert await api.data(BILLING, token=admin) == {
        "practice": {"clientBilling": {"providers": []}}
    }
    async with world.db.reader() as session:
        left = (
            await session.execute(
                select(ProviderClient.client_id).where(
                    ProviderClient.practice_id == world.practice_id,
                    ProviderClient.provider_id == world.provider.id,
                )
            )
        ).all()
        billing = (
            await session.execute(
                select(ClientBillingProvider.id).where(
                    ClientBillingProvider.practice_id == world.practice_id
                )
            )
        ).all()
    assert left == []
    assert billing == []


async def test_removing_a_client_ends_their_assignments(api: Api, world: World) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    provider = await world.token(world.provider, Role.PROVIDER)
    removed = await api.data(
        REMOVE_MEMBER, {"userId": gid("Client", world.c1.id), "role": "CLIENT"}, admin
    )
    assert removed["removeMember"]["errors"] == []
    assert await api.data(CLIENTS, token=provider) == {
        "clients": {"edges": [{"node": {"id": gid("Client", world.c2.id)}}]}
    }


async def test_an_admin_cannot_remove_their_own_admin_role(api: Api, world: World) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    before = await snapshot(world.db, world.practice_id)
    payload = (
        await api.data(
            REMOVE_MEMBER, {"userId": gid("User", world.admin.id), "role": "ADMIN"}, admin
        )
    )["removeMember"]
    assert payload == {
        "user": None,
        "errors": [
            {
                "code": "VALIDATION",
                "field": "role",
                "message": "you cannot remove your own ADMIN role",
            }
        ],
    }
    assert await snapshot(world.db, world.practice_id) == before
    assert await is_valid(api, admin)


@pytest.mark.parametrize(
    ("user", "role"),
    [("c1", "PROVIDER"), ("nobody", "CLIENT"), ("garbage", "CLIENT"), ("invoice", "CLIENT")],
)
async def test_removing_a_membership_that_does_not_exist(
    api: Api, world: World, user: str, role: str
) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    user_id = {
        "c1": gid("User", world.c1.id),
        "nobody": gid("User", 2_000_000_000),
        "garbage": "not an id",
        "invoice": gid("Invoice", world.c1.id),
    }[user]
    before = await snapshot(world.db, world.practice_id)
    payload = (await api.data(REMOVE_MEMBER, {"userId": user_id, "role": role}, admin))[
        "removeMember"
    ]
    assert payload == {
        "user": None,
        "errors": [{"code": "NOT_FOUND", "field": "userId", "message": "member not found"}],
    }
    assert await snapshot(world.db, world.practice_id) == before


async def test_a_new_client_is_assigned_once_they_accept(api: Api, world: World) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    email = f"fresh-{world.practice_id}@example.test"
    added = (
        await api.data(
            ADD_MEMBER, {"input": {"email": email, "name": "Fre", "role": "CLIENT"}}, admin
        )
    )["addMember"]
    assert added["user"] is None
    accepted = (
        await api.data(
            """mutation($token: String!, $password: String!) {
              acceptInvite(inviteToken: $token, password: $password) {
                viewer { user { id name } } errors { code } } }""",
            {"token": added["inviteToken"], "password": "a good password"},
        )
    )["acceptInvite"]
    user_id = accepted["viewer"]["user"]["id"]
    assert accepted["viewer"]["user"]["name"] == "Fre"
    assigned = await api.data(
        """mutation($input: AssignClientInput!) { assignClient(input: $input) {
          user { id } errors { code } } }""",
        {"input": {"providerId": gid("User", world.provider.id), "clientId": user_id}},
        admin,
    )
    assert assigned == {"assignClient": {"user": {"id": user_id}, "errors": []}}
    provider = await world.token(world.provider, Role.PROVIDER)
    seen = await api.data(CLIENTS, token=provider)
    assert len(seen["clients"]["edges"]) == 3


async def test_invite_can_be_accepted_once(api: Api, world: World) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    email = f"invitee-{world.practice_id}@example.test"
    added = (
        await api.data(
            ADD_MEMBER, {"input": {"email": email, "name": "Ina", "role": "CLIENT"}}, admin
        )
    )["addMember"]
    invite = added["inviteToken"]
    assert invite
    accepted = (await api.data(ACCEPT_INVITE, {"token": invite, "password": "a good password"}))[
        "acceptInvite"
    ]
    token = accepted.pop("token")
    assert accepted == {
        "viewer": {
            "role": "CLIENT",
            "user": {"email": email},
            "practice": {"id": gid("Practice", world.practice_id)},
        },
        "errors": [],
    }
    assert await is_valid(api, token)
    before = await snapshot(world.db, world.practice_id)
    again = (await api.data(ACCEPT_INVITE, {"token": invite, "password": "another password"}))[
        "acceptInvite"
    ]
    assert again == {
        "token": None,
        "viewer": None,
        "errors": [{"code": "NOT_FOUND", "field": "inviteToken", "message": "invite not found"}],
    }
    assert await snapshot(world.db, world.practice_id) == before
    assert (await login(api, email, "a good password"))["errors"] == []
    assert (await api.post(LOGIN, {"email": email, "password": "another password"})) == {
        "data": BAD_CREDENTIALS
    }


async def test_accept_invite_checks_the_password_before_using_the_invite(
    api: Api, world: World
) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    email = f"short-{world.practice_id}@example.test"
    invite = (
        await api.data(
            ADD_MEMBER, {"input": {"email": email, "name": "Sho", "role": "CLIENT"}}, admin
        )
    )["addMember"]["inviteToken"]
    before = await snapshot(world.db, world.practice_id)
    refused = (await api.data(ACCEPT_INVITE, {"token": invite, "password": "short"}))[
        "acceptInvite"
    ]
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [("VALIDATION", "password")]
    assert await snapshot(world.db, world.practice_id) == before
    accepted = (await api.data(ACCEPT_INVITE, {"token": invite, "password": "long enough!"}))[
        "acceptInvite"
    ]
    assert accepted["errors"] == []


async def test_add_member_with_an_initial_password(api: Api, world: World) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    email = f"direct-{world.practice_id}@example.test"
    payload = (
        await api.data(
            ADD_MEMBER,
            {
                "input": {
                    "email": email,
                    "name": "Dee",
                    "role": "PROVIDER",
                    "password": "initial-pw",
                }
            },
            admin,
        )
    )["addMember"]
    assert payload["user"] is None
    invite = payload["inviteToken"]
    # Not a member until they accept, with the password they were given.
    assert await api.post(LOGIN, {"email": email, "password": "initial-pw"}) == {
        "data": BAD_CREDENTIALS
    }
    wrong = (await api.data(ACCEPT_INVITE, {"token": invite, "password": "not-the-pw"}))[
        "acceptInvite"
    ]
    assert [(e["code"], e["field"]) for e in wrong["errors"]] == [("VALIDATION", "password")]
    joined = (await api.data(ACCEPT_INVITE, {"token": invite, "password": "initial-pw"}))[
        "acceptInvite"
    ]
    assert joined["viewer"]["role"] == "PROVIDER"
    assert (await login(api, email, "initial-pw"))["viewer"]["role"] == "PROVIDER"


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"email": "not-an-email"}, "VALIDATION", "email"),
        ({"email": "@example.test"}, "VALIDATION", "email"),
        ({"email": "x" * 250 + "@example.test"}, "VALIDATION", "email"),
        ({"name": "   "}, "VALIDATION", "name"),
        ({"name": "n" * 201}, "VALIDATION", "name"),
        ({"role": "ADMIN"}, "VALIDATION", "role"),
        ({"password": "short"}, "VALIDATION", "password"),
        ({"password": "p" * 257}, "VALIDATION", "password"),
    ],
)
async def test_add_member_validation(
    api: Api, world: World, fields: dict[str, str], code: str, field: str
) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    data = {"email": f"v-{world.practice_id}@example.test", "name": "Val", "role": "CLIENT"}
    data.update(fields)
    before = await snapshot(world.db, world.practice_id)
    payload = (await api.data(ADD_MEMBER, {"input": data}, admin))["addMember"]
    assert payload["user"] is None
    assert payload["inviteToken"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert await snapshot(world.db, world.practice_id) == before


async def test_adding_a_role_twice_is_a_conflict(api: Api, world: World) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    before = await snapshot(world.db, world.practice_id)
    payload = (
        await api.data(
            ADD_MEMBER, {"input": {"email": world.c1.email, "name": "x", "role": "CLIENT"}}, admin
        )
    )["addMember"]
    assert payload["user"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("CONFLICT", "email")]
    assert await snapshot(world.db, world.practice_id) == before


async def test_a_person_of_another_practice_is_invited_and_joins_with_their_own_password(
    api: Api, world: World, other_world: World
) -> None:
    """Adding an existing account of another practice is an invitation, answered exactly as
    for an email without an account (with or without a password): this admin learns neither
    that the account exists nor the name it goes by, never sets its password, and the person
    joins only by accepting."""
    admin = await world.token(world.admin, Role.ADMIN)
    outsider = other_world.c1
    before = await snapshot(world.db, world.practice_id, other_world.practice_id)
    answers = []
    for email in (outsider.email, f"nobody-{world.practice_id}@example.test"):
        for password in (None, "hijacked!"):
            member = {"email": email, "name": "Typed Name", "role": "CLIENT"}
            if password:
                member["password"] = password
            payload = (await api.data(ADD_MEMBER, {"input": member}, admin))["addMember"]
            assert payload["inviteToken"]
            answers.append({**payload, "inviteToken": "<one-time token>"})
    assert answers == [{"user": None, "inviteToken": "<one-time token>", "errors": []}] * 4
    # Nothing of either practice changed but the invitations; the account is untouched.
    after = await snapshot(world.db, world.practice_id, other_world.practice_id)
    assert len(after.pop("invitations")) == 2
    after.pop("invitations:count")
    before.pop("invitations")
    before.pop("invitations:count")
    assert after == before
    assert await api.post(LOGIN, {"email": outsider.email, "password": "hijacked!"}) == {
        "data": BAD_CREDENTIALS
    }
    there = (await login(api, outsider.email, PASSWORD))["viewer"]
    assert there["roles"] == ["CLIENT"]  # of their own practice only, until they accept
    clients = await api.data(
        "{ clients(first: 100) { edges { node { name email } } } }", token=admin
    )
    assert outsider.email not in str(clients)  # (the factories' names repeat across worlds)

    invite = (
        await api.data(
            ADD_MEMBER, {"input": {"email": outsider.email, "name": "x", "role": "CLIENT"}}, admin
        )
    )["addMember"]["inviteToken"]
    joined = (await api.data(ACCEPT_INVITE, {"token": invite, "password": PASSWORD}))[
        "acceptInvite"
    ]
    assert joined["errors"] == []
    assert joined["viewer"]["practice"] == {"id": gid("Practice", world.practice_id)}
    here = (await login(api, outsider.email, PASSWORD, "CLIENT"))["viewer"]
    assert here["role"] == "CLIENT"


async def test_an_admin_cannot_set_the_password_of_someone_invited_elsewhere(
    api: Api, world: World, other_world: World
) -> None:
    """Invited by another practice and without an account yet, the person is not this admin's
    to give a password to: the answer is an invitation like any other, and no account exists
    (nor any way into the other practice) until an invitation is accepted."""
    email = f"pending-{world.practice_id}@example.test"
    invited = (
        await api.data(
            ADD_MEMBER,
            {"input": {"email": email, "name": "Pen", "role": "CLIENT"}},
            await other_world.token(other_world.admin, Role.ADMIN),
        )
    )["addMember"]
    assert invited["inviteToken"]
    admin = await world.token(world.admin, Role.ADMIN)
    before = await snapshot(world.db, other_world.practice_id)
    payload = (
        await api.data(
            ADD_MEMBER,
            {"input": {"email": email, "name": "Pen", "role": "CLIENT", "password": "admin-set!"}},
            admin,
        )
    )["addMember"]
    assert payload["user"] is None
    assert payload["errors"] == []
    assert payload["inviteToken"]
    after = await snapshot(world.db, other_world.practice_id)
    after["invitations:count"] -= 1
    assert after == before
    assert await api.post(LOGIN, {"email": email, "password": "admin-set!"}) == {
        "data": BAD_CREDENTIALS
    }


async def test_an_invite_cannot_reset_the_password_of_an_account_that_has_one(
    api: Api, world: World, other_world: World
) -> None:
    """Invited to two practices, a person accepts the second invite: the first invite's holder
    must not be able to overwrite the password they chose."""
    email = f"twice-{world.practice_id}@example.test"
    first = (
        await api.data(
            ADD_MEMBER,
            {"input": {"email": email, "name": "Tw", "role": "CLIENT"}},
            await world.token(world.admin, Role.ADMIN),
        )
    )["addMember"]["inviteToken"]
    second = (
        await api.data(
            ADD_MEMBER,
            {"input": {"email": email, "name": "Tw", "role": "CLIENT"}},
            await other_world.token(other_world.admin, Role.ADMIN),
        )
    )["addMember"]["inviteToken"]
    assert first
    assert second
    chosen = (await api.data(ACCEPT_INVITE, {"token": second, "password": "my own choice"}))[
        "acceptInvite"
    ]
    assert chosen["errors"] == []
    before = await snapshot(world.db, world.practice_id, other_world.practice_id)
    takeover = (await api.data(ACCEPT_INVITE, {"token": first, "password": "attacker pw"}))[
        "acceptInvite"
    ]
    assert takeover["token"] is None
    assert [(e["code"], e["field"]) for e in takeover["errors"]] == [("VALIDATION", "password")]
    assert await snapshot(world.db, world.practice_id, other_world.practice_id) == before
    # With their own password they take the first invite too.
    joined = (await api.data(ACCEPT_INVITE, {"token": first, "password": "my own choice"}))[
        "acceptInvite"
    ]
    assert joined["errors"] == []
    assert joined["viewer"]["practice"] == {"id": gid("Practice", world.practice_id)}


async def test_memberships_are_stored_as_the_contract_says(world: World) -> None:
    """Guard of the factory: the roles the tests above rely on."""
    async with world.db.reader() as session:
        rows = (
            await session.execute(
                select(User.email, Membership.role)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.practice_id == world.practice_id)
            )
        ).all()
    assert sorted((e.split("-")[0], str(r)) for e, r in rows) == [
        ("admin", "ADMIN"),
        ("admin", "PROVIDER"),
        ("c1", "CLIENT"),
        ("c2", "CLIENT"),
        ("c3", "CLIENT"),
        ("provider", "PROVIDER"),
        ("provider2", "PROVIDER"),
    ]


async def _api_of(settings: Settings) -> AsyncIterator[Api]:
    """A client of a separately configured app on the same database."""
    application = create_app(settings)
    async with running(application) as served:
        transport = httpx.ASGITransport(app=served.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://carebill.test") as http:
            yield Api(http)
