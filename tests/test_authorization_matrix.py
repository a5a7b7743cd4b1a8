"""The authorisation matrix of issue 2: every query and mutation × every role × own practice /
other practice. Each actor belongs to `world`; "own" targets are `world`'s objects and "other"
targets belong to `other_world`, which must always answer as if it did not exist.

`world` (and `other_world`, built the same way) holds: the admin (ADMIN and PROVIDER), the
provider (assigned to Client Billing; clients c1, c2), provider2 (not assigned; client c3),
and one invoice per client: c1 and c2 by the provider, c3 by provider2. Each practice has one
payment processor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from models import Practice
from models.enums import Role
from schema.node import decode_any, encode_id
from tests.api import Api
from tests.factories import PASSWORD, Person, World
from tests.snapshots import snapshot

ACTORS = ("admin", "provider", "provider2", "c1", "anonymous")
HOMES = ("own", "other")
ROLE_OF = {
    "admin": Role.ADMIN,
    "provider": Role.PROVIDER,
    "provider2": Role.PROVIDER,
    "c1": Role.CLIENT,
}

# What each actor sees of their own practice (by handle); nothing of the other, ever.
SEES_CLIENTS = {
    "admin": {"c1", "c2", "c3"},
    "provider": {"c1", "c2"},
    "provider2": {"c3"},
    "c1": {"c1"},
}
SEES_INVOICES = SEES_CLIENTS  # one invoice per client, so the same sets
STAFF = {"admin", "provider", "provider2"}
SEES_PEOPLE = {actor: STAFF | clients for actor, clients in SEES_CLIENTS.items()}

SECRET_KEY = "sk_test_" + "a1B2c3D4" * 3
WEBHOOK_SECRET = "whsec_" + "Zx9" * 10
PUBLISHABLE_KEY = "pk_test_" + "q7W8e9R0" * 3

VIEWER = "{ viewer { role roles user { id name email roles } practice { id name } } }"
PRACTICE = """{ practice { id name currency timeZone salesTax { mode rateBasisPoints label }
  clientBilling { enabled providers { id name } } } }"""
PROCESSORS = """{ practice { id paymentProcessors { id type description webhookPath
  publishableKey } } }"""
INVOICES = (
    "{ invoices(first: 100) { totalCount edges { node { id client { id } provider { id } } } } }"
)
CLIENTS = "{ clients(first: 100) { totalCount edges { node { id name email providers { id } } } } }"
CLIENT = "query($id: ID!) { client(id: $id) { id name email } }"
INVOICE = "query($id: ID!) { invoice(id: $id) { id status client { id } } }"
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"

ADD_MEMBER = """mutation($input: AddMemberInput!) { addMember(input: $input) {
  user { id name email roles } inviteToken errors { code field message } } }"""
REMOVE_MEMBER = """mutation($userId: ID!, $role: Role!) {
  removeMember(userId: $userId, role: $role) {
  user { id } inviteToken errors { code field message } } }"""
ASSIGN_CLIENT = """mutation($input: AssignClientInput!) { assignClient(input: $input) {
  user { id } inviteToken errors { code field message } } }"""
UNASSIGN_CLIENT = """mutation($input: AssignClientInput!) { unassignClient(input: $input) {
  user { id } inviteToken errors { code field message } } }"""
CONFIGURE_PROCESSOR = """mutation($input: ConfigurePaymentProcessorInput!) {
  configurePaymentProcessor(input: $input) {
    paymentProcessor { id type description publishableKey } errors { code field message } } }"""
REMOVE_PROCESSOR = """mutation($id: ID!) { removePaymentProcessor(id: $id) {
  paymentProcessor { id type } errors { code field message } } }"""
SET_SALES_TAX = """mutation($input: SetSalesTaxInput!) { setSalesTax(input: $input) {
  practice { id salesTax { mode rateBasisPoints label } } errors { code field message } } }"""
CONFIGURE_CLIENT_BILLING = """mutation($input: ConfigureClientBillingInput!) {
  configureClientBilling(input: $input) {
    practice { id clientBilling { enabled providers { id } } } errors { code field message } } }"""
CONFIGURE_REMINDERS = """mutation($input: ConfigureRemindersInput!) {
  configureReminders(input: $input) {
    practice { id reminders { daysBeforeDue daysAfterDue } } errors { code field message } } }"""
CONFIGURE_EMAILS = """mutation($input: ConfigureNotificationEmailsInput!) {
  configureNotificationEmails(input: $input) {
    practice { id notificationEmails { includeAmount } } errors { code field message } } }"""
UPDATE_PREFERENCES = """mutation($input: UpdateNotificationPreferencesInput!) {
  updateNotificationPreferences(input: $input) {
    preferences { emailEnabled paymentReceivedEmails } errors { code field message } } }"""
PREFERENCES = "{ viewer { notificationPreferences { emailEnabled paymentReceivedEmails } } }"
DELIVERIES = """{ notificationDeliveries(first: 10) { totalCount
  edges { node { recipient kind status } } } }"""
LOGIN = """mutation($email: String!, $password: String!, $role: Role) {
  login(email: $email, password: $password, role: $role) {
    token viewer { role user { id } } errors { code field message } } }"""
SWITCH_ROLE = """mutation($role: Role!) { switchRole(role: $role) {
  token viewer { role user { id } } errors { code field message } } }"""
LOGOUT = "mutation { logout }"
ACCEPT_INVITE = """mutation($token: String!, $password: String!) {
  acceptInvite(inviteToken: $token, password: $password) {
    token viewer { role } errors { code field message } } }"""


def gid(type_name: str, pk: int) -> str:
    return str(encode_id(type_name, pk))


def _pk(global_id: str) -> int:
    decoded = decode_any(global_id)
    assert decoded is not None
    return decoded[1]


@dataclass
class Side:
    """One practice of the scene, with the ids the tests aim at."""

    world: World
    name: str
    invoices: dict[str, int]  # client handle -> invoice id
    processor: str  # global id

    def person(self, handle: str) -> Person:
        person: Person = getattr(self.world, handle)
        return person

    def client_gid(self, handle: str) -> str:
        return gid("Client", self.person(handle).id)

    def user_gid(self, handle: str) -> str:
        return gid("User", self.person(handle).id)


@dataclass
class Scene:
    own: Side
    other: Side

    def home(self, which: str) -> Side:
        return self.own if which == "own" else self.other

    async def token(self, actor: str) -> str | None:
        if actor == "anonymous":
            return None
        world = self.own.world
        return await world.token(getattr(world, actor), ROLE_OF[actor])

    async def state(self) -> dict[str, Any]:
        return await snapshot(
            self.own.world.db, self.own.world.practice_id, self.other.world.practice_id
        )


async def _practice(api: Api, world: World) -> Side:
    async with world.db.reader() as session:
        name = (
            await session.execute(select(Practice.name).where(Practice.id == world.practice_id))
        ).scalar_one()
    invoices = {
        "c1": await world.invoice(world.c1, world.provider, 1_000),
        "c2": await world.invoice(world.c2, world.provider, 2_000),
        "c3": await world.invoice(world.c3, world.provider2, 3_000),
    }
    configured = await api.data(
        CONFIGURE_PROCESSOR,
        {
            "input": {
                "type": "STRIPE",
                "description": "Main account",
                "secretKey": SECRET_KEY,
                "webhookSecret": WEBHOOK_SECRET,
                "publishableKey": PUBLISHABLE_KEY,
            }
        },
        token=await world.token(world.admin, Role.ADMIN),
    )
    processor = configured["configurePaymentProcessor"]["paymentProcessor"]["id"]
    return Side(world=world, name=name, invoices=invoices, processor=processor)


@pytest.fixture
async def scene(api: Api, world: World, other_world: World) -> Scene:
    scene = Scene(own=await _practice(api, world), other=await _practice(api, other_world))
    for actor in ACTORS:  # tokens first: issuing one writes a session row
        await scene.token(actor)
    return scene


def _unauthenticated(body: dict[str, Any]) -> None:
    """A top-level UNAUTHENTICATED error and nothing else: a nullable root field is null,
    a non-null one nulls `data` itself."""
    assert body["data"] is None or set(body["data"].values()) == {None}, body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


# --- reads -------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ACTORS)
async def test_viewer(api: Api, scene: Scene, actor: str) -> None:
    body = await api.post(VIEWER, token=await scene.token(actor))
    assert "errors" not in body
    if actor == "anonymous":
        assert body["data"] == {"viewer": None}
        return
    roles = ["ADMIN", "PROVIDER"] if actor == "admin" else [str(ROLE_OF[actor])]
    person = scene.own.person(actor)
    assert body["data"] == {
        "viewer": {
            "role": str(ROLE_OF[actor]),
            "roles": roles,
            "user": {
                "id": gid("User", person.id),
                "name": person.name,
                "email": person.email,
                "roles": roles,
            },
            "practice": {
                "id": gid("Practice", scene.own.world.practice_id),
                "name": scene.own.name,
            },
        }
    }


@pytest.mark.parametrize("actor", ACTORS)
async def test_practice(api: Api, scene: Scene, actor: str) -> None:
    body = await api.post(PRACTICE, token=await scene.token(actor))
    if actor == "anonymous":
        _unauthenticated(body)
        return
    world = scene.own.world
    assert body == {
        "data": {
            "practice": {
                "id": gid("Practice", world.practice_id),
                "name": scene.own.name,
                "currency": "USD",
                "timeZone": "America/New_York",
                "salesTax": {"mode": "NONE", "rateBasisPoints": 0, "label": None},
                "clientBilling": {
                    "enabled": True,
                    "providers": [{"id": scene.own.user_gid("provider"), "name": "Pat Provider"}],
                },
            }
        }
    }


@pytest.mark.parametrize("actor", ACTORS)
async def test_payment_processors_are_admin_only(api: Api, scene: Scene, actor: str) -> None:
    body = await api.post(PROCESSORS, token=await scene.token(actor))
    if actor == "anonymous":
        _unauthenticated(body)
        return
    if actor != "admin":
        # The list is null, the rest of the practice still answers.
        practice_id = gid("Practice", scene.own.world.practice_id)
        assert body["data"] == {"practice": {"id": practice_id, "paymentProcessors": None}}
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
        assert body["errors"][0]["path"] == ["practice", "paymentProcessors"]
        return
    processor = scene.own.processor
    assert body == {
        "data": {
            "practice": {
                "id": gid("Practice", scene.own.world.practice_id),
                "paymentProcessors": [
                    {
                        "id": processor,
                        "type": "STRIPE",
                        "description": "Main account",
                        "webhookPath": f"/webhooks/stripe/{processor}",
                        "publishableKey": PUBLISHABLE_KEY,
                    }
                ],
            }
        }
    }


@pytest.mark.parametrize("actor", ACTORS)
async def test_invoices_list(api: Api, scene: Scene, actor: str) -> None:
    body = await api.post(INVOICES, token=await scene.token(actor))
    if actor == "anonymous":
        _unauthenticated(body)
        return
    own = scene.own
    expected = {gid("Invoice", own.invoices[c]) for c in SEES_INVOICES[actor]}
    connection = body["data"]["invoices"]
    assert {e["node"]["id"] for e in connection["edges"]} == expected
    assert connection["totalCount"] == len(expected)
    for edge in connection["edges"]:
        client = next(c for c, i in own.invoices.items() if gid("Invoice", i) == edge["node"]["id"])
        provider = "provider2" if client == "c3" else "provider"
        assert edge["node"]["client"] == {"id": own.client_gid(client)}
        assert edge["node"]["provider"] == {"id": own.user_gid(provider)}


@pytest.mark.parametrize("actor", ACTORS)
async def test_clients_list(api: Api, scene: Scene, actor: str) -> None:
    body = await api.post(CLIENTS, token=await scene.token(actor))
    if actor == "anonymous":
        _unauthenticated(body)
        return
    own = scene.own
    providers = {"c1": "provider", "c2": "provider", "c3": "provider2"}
    expected = [
        {
            "node": {
                "id": own.client_gid(c),
                "name": own.person(c).name,
                "email": own.person(c).email,
                "providers": [{"id": own.user_gid(providers[c])}],
            }
        }
        for c in sorted(SEES_CLIENTS[actor])  # c1, c2, c3 are also in name order
    ]
    assert body["data"]["clients"] == {"totalCount": len(expected), "edges": expected}


@pytest.mark.parametrize("home", HOMES)
@pytest.mark.parametrize("actor", ACTORS)
async def test_client_by_id(api: Api, scene: Scene, actor: str, home: str) -> None:
    token = await scene.token(actor)
    target = scene.home(home)
    for client in ("c1", "c2", "c3"):
        body = await api.post(CLIENT, {"id": target.client_gid(client)}, token)
        if actor == "anonymous":
            _unauthenticated(body)
            continue
        visible = home == "own" and client in SEES_CLIENTS[actor]
        person = target.person(client)
        expected = (
            {"id": target.client_gid(client), "name": person.name, "email": person.email}
            if visible
            else None
        )
        assert body == {"data": {"client": expected}}, (client, body)


@pytest.mark.parametrize("home", HOMES)
@pytest.mark.parametrize("actor", ACTORS)
async def test_invoice_by_id(api: Api, scene: Scene, actor: str, home: str) -> None:
    token = await scene.token(actor)
    target = scene.home(home)
    for client, invoice_id in target.invoices.items():
        body = await api.post(INVOICE, {"id": gid("Invoice", invoice_id)}, token)
        if actor == "anonymous":
            _unauthenticated(body)
            continue
        visible = home == "own" and client in SEES_INVOICES[actor]
        expected = (
            {
                "id": gid("Invoice", invoice_id),
                "status": "UNPAID",
                "client": {"id": target.client_gid(client)},
            }
            if visible
            else None
        )
        assert body == {"data": {"invoice": expected}}, (client, body)


@pytest.mark.parametrize("home", HOMES)
@pytest.mark.parametrize("actor", ACTORS)
async def test_node(api: Api, scene: Scene, actor: str, home: str) -> None:
    token = await scene.token(actor)
    target = scene.home(home)
    own = home == "own"
    cases: list[tuple[str, str, bool]] = [
        ("Practice", gid("Practice", target.world.practice_id), own),
        ("PaymentProcessor", target.processor, own and actor == "admin"),
    ]
    for client, invoice_id in target.invoices.items():
        visible = own and client in SEES_INVOICES.get(actor, set())
        cases.append(("Invoice", gid("Invoice", invoice_id), visible))
        cases.append(("Client", target.client_gid(client), visible))
    for handle in ("admin", "provider", "provider2", "c1", "c2", "c3"):
        visible = own and handle in SEES_PEOPLE.get(actor, set())
        cases.append(("User", target.user_gid(handle), visible))
    for type_name, global_id, visible in cases:
        body = await api.post(NODE, {"id": global_id}, token)
        if actor == "anonymous":
            _unauthenticated(body)
            continue
        expected = {"__typename": type_name, "id": global_id} if visible else None
        assert body == {"data": {"node": expected}}, (type_name, global_id, body)


# --- mutations ---------------------------------------------------------------------------


async def _refused(
    api: Api,
    scene: Scene,
    actor: str,
    operation: str,
    variables: dict[str, Any],
    code: str,
    field: str | None = None,
) -> None:
    """The mutation is refused with `code` (UNAUTHENTICATED for the anonymous) and nothing in
    either practice changed."""
    token = await scene.token(actor)
    before = await scene.state()
    body = await api.post(operation, variables, token)
    if actor == "anonymous":
        _unauthenticated(body)
    else:
        assert "errors" not in body, body
        payload = next(iter(body["data"].values()))
        (error,) = payload.pop("errors")
        assert (error["code"], error["field"]) == (code, field), error
        assert error["message"]
        assert all(value is None for value in payload.values()), payload
    assert await scene.state() == before


async def _payload(api: Api, scene: Scene, operation: str, variables: dict[str, Any]) -> Any:
    data = await api.data(operation, variables, token=await scene.token("admin"))
    return next(iter(data.values()))


def _deny(actor: str, home: str, field: str) -> tuple[str, str | None] | None:
    """How an ADMIN-only mutation aimed at `home`'s object is refused (code, field), or None
    when the actor may perform it: other roles are FORBIDDEN, and the other practice's objects
    are NOT_FOUND even for an ADMIN."""
    if actor != "admin":
        return ("FORBIDDEN", None)
    return None if home == "own" else ("NOT_FOUND", field)


@pytest.mark.parametrize("actor", ACTORS)
async def test_add_member(api: Api, scene: Scene, actor: str) -> None:
    email = f"new-{scene.own.world.practice_id}@example.test"
    variables = {"input": {"email": email.upper(), "name": " Nia New ", "role": "CLIENT"}}
    if actor != "admin":
        await _refused(api, scene, actor, ADD_MEMBER, variables, "FORBIDDEN")
        return
    other = scene.other.world
    other_before = await snapshot(other.db, other.practice_id)
    payload = await _payload(api, scene, ADD_MEMBER, variables)
    invite = payload.pop("inviteToken")
    assert isinstance(invite, str)
    assert len(invite) >= 32
    # An invitation: nobody joins, and no account is made, before the person accepts.
    assert payload == {"user": None, "errors": []}
    other_after = await snapshot(other.db, other.practice_id)
    assert other_after.pop("invitations:count") == other_before.pop("invitations:count") + 1
    assert other_after == other_before


@pytest.mark.parametrize("home", HOMES)
@pytest.mark.parametrize("actor", ACTORS)
async def test_remove_member(api: Api, scene: Scene, actor: str, home: str) -> None:
    target = scene.home(home)
    variables = {"userId": target.client_gid("c2"), "role": "CLIENT"}
    denied = _deny(actor, home, "userId")
    if denied:
        await _refused(api, scene, actor, REMOVE_MEMBER, variables, *denied)
        return
    payload = await _payload(api, scene, REMOVE_MEMBER, variables)
    assert payload == {
        "user": {"id": gid("User", target.person("c2").id)},
        "inviteToken": None,
        "errors": [],
    }
    clients = await api.data(CLIENTS, token=await scene.token("admin"))
    assert {e["node"]["id"] for e in clients["clients"]["edges"]} == {
        target.client_gid("c1"),
        target.client_gid("c3"),
    }


@pytest.mark.parametrize("home", HOMES)
@pytest.mark.parametrize("actor", ACTORS)
async def test_assign_client(api: Api, scene: Scene, actor: str, home: str) -> None:
    target = scene.home(home)
    variables = {
        "input": {"providerId": target.user_gid("provider2"), "clientId": target.client_gid("c1")}
    }
    denied = _deny(actor, home, "providerId")
    if denied:
        await _refused(api, scene, actor, ASSIGN_CLIENT, variables, *denied)
        return
    payload = await _payload(api, scene, ASSIGN_CLIENT, variables)
    assert payload == {"user": {"id": target.user_gid("c1")}, "inviteToken": None, "errors": []}
    seen = await api.data(CLIENTS, token=await scene.token("provider2"))
    assert {e["node"]["id"] for e in seen["clients"]["edges"]} == {
        target.client_gid("c1"),
        target.client_gid("c3"),
    }


@pytest.mark.parametrize("home", HOMES)
@pytest.mark.parametrize("actor", ACTORS)
async def test_unassign_client(api: Api, scene: Scene, actor: str, home: str) -> None:
    target = scene.home(home)
    variables = {
        "input": {"providerId": target.user_gid("provider"), "clientId": target.client_gid("c1")}
    }
    denied = _deny(actor, home, "providerId")
    if denied:
        await _refused(api, scene, actor, UNASSIGN_CLIENT, variables, *denied)
        return
    payload = await _payload(api, scene, UNASSIGN_CLIENT, variables)
    assert payload == {"user": {"id": target.user_gid("c1")}, "inviteToken": None, "errors": []}
    seen = await api.data(INVOICES, token=await scene.token("provider"))
    assert {e["node"]["id"] for e in seen["invoices"]["edges"]} == {
        gid("Invoice", target.invoices["c2"])
    }


@pytest.mark.parametrize("actor", ACTORS)
async def test_configure_payment_processor(api: Api, scene: Scene, actor: str) -> None:
    variables = {
        "input": {
            "type": "STRIPE",
            "description": "Rotated",
            "secretKey": "sk_live_" + "R0tat3d0" * 3,
            "webhookSecret": "whsec_" + "n3w" * 10,
        }
    }
    if actor != "admin":
        await _refused(api, scene, actor, CONFIGURE_PROCESSOR, variables, "FORBIDDEN")
        return
    other_before = await snapshot(scene.own.world.db, scene.other.world.practice_id)
    payload = await _payload(api, scene, CONFIGURE_PROCESSOR, variables)
    assert payload == {
        "paymentProcessor": {
            "id": scene.own.processor,
            "type": "STRIPE",
            "description": "Rotated",
            "publishableKey": None,
        },
        "errors": [],
    }
    assert await snapshot(scene.own.world.db, scene.other.world.practice_id) == other_before


@pytest.mark.parametrize("home", HOMES)
@pytest.mark.parametrize("actor", ACTORS)
async def test_remove_payment_processor(api: Api, scene: Scene, actor: str, home: str) -> None:
    target = scene.home(home)
    variables = {"id": target.processor}
    denied = _deny(actor, home, "id")
    if denied:
        await _refused(api, scene, actor, REMOVE_PROCESSOR, variables, *denied)
        return
    payload = await _payload(api, scene, REMOVE_PROCESSOR, variables)
    assert payload == {"paymentProcessor": {"id": target.processor, "type": "STRIPE"}, "errors": []}
    listed = await api.data(PROCESSORS, token=await scene.token("admin"))
    assert listed["practice"]["paymentProcessors"] == []


@pytest.mark.parametrize("actor", ACTORS)
async def test_set_sales_tax(api: Api, scene: Scene, actor: str) -> None:
    variables = {"input": {"mode": "EXCLUSIVE", "rateBasisPoints": 825, "label": "NY sales tax"}}
    if actor != "admin":
        await _refused(api, scene, actor, SET_SALES_TAX, variables, "FORBIDDEN")
        return
    other_before = await snapshot(scene.own.world.db, scene.other.world.practice_id)
    payload = await _payload(api, scene, SET_SALES_TAX, variables)
    assert payload == {
        "practice": {
            "id": gid("Practice", scene.own.world.practice_id),
            "salesTax": {"mode": "EXCLUSIVE", "rateBasisPoints": 825, "label": "NY sales tax"},
        },
        "errors": [],
    }
    assert await snapshot(scene.own.world.db, scene.other.world.practice_id) == other_before


@pytest.mark.parametrize("home", HOMES)
@pytest.mark.parametrize("actor", ACTORS)
async def test_configure_client_billing(api: Api, scene: Scene, actor: str, home: str) -> None:
    target = scene.home(home)
    variables = {
        "input": {
            "enabled": True,
            "providerIds": [target.user_gid("provider"), target.user_gid("provider2")],
        }
    }
    denied = _deny(actor, home, "providerIds")
    if denied:
        await _refused(api, scene, actor, CONFIGURE_CLIENT_BILLING, variables, *denied)
        return
    payload = await _payload(api, scene, CONFIGURE_CLIENT_BILLING, variables)
    assert payload == {
        "practice": {
            "id": gid("Practice", target.world.practice_id),
            "clientBilling": {
                "enabled": True,
                "providers": [
                    {"id": target.user_gid("provider")},
                    {"id": target.user_gid("provider2")},
                ],
            },
        },
        "errors": [],
    }


@pytest.mark.parametrize("actor", ACTORS)
async def test_switch_role(api: Api, scene: Scene, actor: str) -> None:
    """Only a role held in the same practice; the admin also provides care."""
    if actor != "admin":
        wanted = "ADMIN" if actor != "anonymous" else "PROVIDER"
        await _refused(api, scene, actor, SWITCH_ROLE, {"role": wanted}, "FORBIDDEN")
        return
    payload = await _payload(api, scene, SWITCH_ROLE, {"role": "PROVIDER"})
    assert payload["errors"] == []
    assert payload["viewer"] == {"role": "PROVIDER", "user": {"id": scene.own.user_gid("admin")}}


@pytest.mark.parametrize("actor", ACTORS)
async def test_logout(api: Api, scene: Scene, actor: str) -> None:
    token = await scene.token(actor)
    if actor == "anonymous":
        before = await scene.state()
        _unauthenticated(await api.post(LOGOUT))
        assert await scene.state() == before
        return
    assert await api.data(LOGOUT, token=token) == {"logout": True}
    _unauthenticated(await api.post(INVOICES, token=token))


@pytest.mark.parametrize("actor", ACTORS)
async def test_login_ignores_the_callers_token(api: Api, scene: Scene, actor: str) -> None:
    """Anyone may log in; the bearer token sent along changes nothing."""
    c1 = scene.own.person("c1")
    body = await api.post(
        LOGIN, {"email": c1.email, "password": PASSWORD}, token=await scene.token(actor)
    )
    payload = body["data"]["login"]
    assert payload["errors"] == []
    assert payload["viewer"] == {"role": "CLIENT", "user": {"id": gid("User", c1.id)}}


@pytest.mark.parametrize("actor", ACTORS)
async def test_accept_invite_with_an_unknown_token(api: Api, scene: Scene, actor: str) -> None:
    token = await scene.token(actor)
    before = await scene.state()
    body = await api.post(
        ACCEPT_INVITE, {"token": "no-such-invite", "password": "long enough"}, token
    )
    assert body == {
        "data": {
            "acceptInvite": {
                "token": None,
                "viewer": None,
                "errors": [
                    {"code": "NOT_FOUND", "field": "inviteToken", "message": "invite not found"}
                ],
            }
        }
    }
    assert await scene.state() == before


# --- notifications -------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ACTORS)
async def test_notification_deliveries_are_admin_only(api: Api, scene: Scene, actor: str) -> None:
    """ADMIN reads its own practice's deliveries (none: no email channel in these tests);
    other roles get a top-level FORBIDDEN."""
    body = await api.post(DELIVERIES, token=await scene.token(actor))
    if actor == "anonymous":
        _unauthenticated(body)
        return
    if actor != "admin":
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
        return
    assert body == {"data": {"notificationDeliveries": {"totalCount": 0, "edges": []}}}


@pytest.mark.parametrize("actor", ACTORS)
async def test_configure_reminders(api: Api, scene: Scene, actor: str) -> None:
    variables = {"input": {"daysBeforeDue": [3], "daysAfterDue": [1, 7, 30]}}
    if actor != "admin":
        await _refused(api, scene, actor, CONFIGURE_REMINDERS, variables, "FORBIDDEN")
        return
    other_before = await snapshot(scene.own.world.db, scene.other.world.practice_id)
    payload = await _payload(api, scene, CONFIGURE_REMINDERS, variables)
    assert payload == {
        "practice": {
            "id": gid("Practice", scene.own.world.practice_id),
            "reminders": {"daysBeforeDue": [3], "daysAfterDue": [1, 7, 30]},
        },
        "errors": [],
    }
    await _only_own_settings_row_added(scene, other_before)


async def _only_own_settings_row_added(scene: Scene, other_before: dict[str, Any]) -> None:
    """The other practice is untouched; the one new row is the own practice's settings."""
    other_after = await snapshot(scene.own.world.db, scene.other.world.practice_id)
    key = "practice_notification_settings:count"
    assert other_after.pop(key) == other_before.pop(key) + 1
    assert other_after == other_before


@pytest.mark.parametrize("actor", ACTORS)
async def test_configure_notification_emails(api: Api, scene: Scene, actor: str) -> None:
    variables = {"input": {"includeAmount": True}}
    if actor != "admin":
        await _refused(api, scene, actor, CONFIGURE_EMAILS, variables, "FORBIDDEN")
        return
    other_before = await snapshot(scene.own.world.db, scene.other.world.practice_id)
    payload = await _payload(api, scene, CONFIGURE_EMAILS, variables)
    assert payload == {
        "practice": {
            "id": gid("Practice", scene.own.world.practice_id),
            "notificationEmails": {"includeAmount": True},
        },
        "errors": [],
    }
    await _only_own_settings_row_added(scene, other_before)


@pytest.mark.parametrize("actor", ACTORS)
async def test_update_notification_preferences_is_the_viewers_own(
    api: Api, scene: Scene, actor: str
) -> None:
    """Every role sets its own preferences, and only its own."""
    token = await scene.token(actor)
    variables = {"input": {"emailEnabled": False, "paymentReceivedEmails": True}}
    if actor == "anonymous":
        before = await scene.state()
        _unauthenticated(await api.post(UPDATE_PREFERENCES, variables))
        assert await scene.state() == before
        return
    body = await api.post(UPDATE_PREFERENCES, variables, token)
    assert body == {
        "data": {
            "updateNotificationPreferences": {
                "preferences": {"emailEnabled": False, "paymentReceivedEmails": True},
                "errors": [],
            }
        }
    }
    assert await api.data(PREFERENCES, token=token) == {
        "viewer": {
            "notificationPreferences": {"emailEnabled": False, "paymentReceivedEmails": True}
        }
    }
    for bystander in ("admin", "provider", "c1"):
        if bystander != actor:
            seen = await api.data(PREFERENCES, token=await scene.token(bystander))
            assert seen["viewer"]["notificationPreferences"]["emailEnabled"] is True
