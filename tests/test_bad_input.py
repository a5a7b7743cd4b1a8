"""Bad input everywhere: unknown and malformed ids, empty, huge and wrongly typed values get a
typed answer — a payload UserError or a GraphQL validation error — never an HTTP 500, never a
masked internal error, never a stack trace."""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.enums import Role
from models.errors import ErrorCode
from schema.node import encode_id
from tests.api import Api
from tests.factories import World
from tests.snapshots import snapshot

# Huge, yet two of them fit in a request body (1 MiB, see tests/test_request_limits.py).
MB = "x" * 500_000
ERROR_CODES = {code.value for code in ErrorCode}
# Every top-level error has a code (docs/API.md lists them); bad input gets one of these.
TOP_LEVEL_CODES = {
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "VALIDATION",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "BAD_USER_INPUT",
    "QUERY_TOO_COMPLEX",
}

INVOICES = (
    "query($first: Int, $after: String) { invoices(first: $first, after: $after) { totalCount } }"
)
FILTERED = "query($filter: InvoiceFilter) { invoices(filter: $filter) { totalCount } }"
CLIENTS = (
    "query($search: String, $first: Int) { clients(search: $search, first: $first) { totalCount } }"
)
NODE = "query($id: ID!) { node(id: $id) { id } }"
INVOICE = "query($id: ID!) { invoice(id: $id) { id } }"
CLIENT = "query($id: ID!) { client(id: $id) { id } }"
LOGIN = """mutation($email: String!, $password: String!, $role: Role) {
  login(email: $email, password: $password, role: $role) { token errors { code field } } }"""
SWITCH_ROLE = "mutation($role: Role!) { switchRole(role: $role) { token errors { code field } } }"
ACCEPT_INVITE = """mutation($token: String!, $password: String!) {
  acceptInvite(inviteToken: $token, password: $password) { token errors { code field } } }"""
ADD_MEMBER = """mutation($input: AddMemberInput!) { addMember(input: $input) {
  user { id } errors { code field } } }"""
REMOVE_MEMBER = """mutation($userId: ID!, $role: Role!) {
  removeMember(userId: $userId, role: $role) { user { id } errors { code field } } }"""
ASSIGN = """mutation($input: AssignClientInput!) { assignClient(input: $input) {
  user { id } errors { code field } } }"""
UNASSIGN = """mutation($input: AssignClientInput!) { unassignClient(input: $input) {
  user { id } errors { code field } } }"""
CONFIGURE = """mutation($input: ConfigurePaymentProcessorInput!) {
  configurePaymentProcessor(input: $input) { paymentProcessor { id } errors { code field } } }"""
REMOVE_PROCESSOR = """mutation($id: ID!) { removePaymentProcessor(id: $id) {
  paymentProcessor { id } errors { code field } } }"""
SET_SALES_TAX = """mutation($input: SetSalesTaxInput!) { setSalesTax(input: $input) {
  practice { id } errors { code field } } }"""
BILLING = """mutation($input: ConfigureClientBillingInput!) {
  configureClientBilling(input: $input) {
  practice { id } errors { code field } } }"""
SEND = """mutation($input: SendInvoiceInput!) { sendInvoice(input: $input) {
  invoice { id } errors { code field } } }"""

STRIPE = {
    "type": "STRIPE",
    "secretKey": "sk_test_" + "a" * 24,
    "webhookSecret": "whsec_" + "b" * 24,
}


def gid(type_name: str, pk: int) -> str:
    return str(encode_id(type_name, pk))


BAD_IDS = [
    "",
    " ",
    "garbage",
    "🙂",
    "=====",
    MB,
    gid("User", 0),
    gid("User", 2**31),
    gid("Invoice", 2**31 - 1),
    gid("Nothing", 1),
    "SW52b2ljZTotMQ==",  # Invoice:-1
    "SW52b2ljZTp4",  # Invoice:x
]


def assert_typed(status: int, text: str) -> dict[str, Any]:
    """The answer names the problem: no 500, no trace, no masked internal error; payload
    errors and top-level codes are from the contract's sets."""
    assert status in (200, 400), (status, text[:300])
    assert "Traceback" not in text
    assert "INTERNAL_SERVER_ERROR" not in text, text[:500]
    if status == 400:
        return {}
    body: dict[str, Any] = json.loads(text)
    for error in body.get("errors") or []:
        assert error["message"]
        assert error.get("extensions", {}).get("code") in TOP_LEVEL_CODES, error
    for payload in (body.get("data") or {}).values():
        if isinstance(payload, dict) and "errors" in payload:
            assert {e["code"] for e in payload["errors"]} <= ERROR_CODES, payload
    return body


async def send(
    api: Api, query: str, variables: dict[str, Any], token: str | None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await api.http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    return assert_typed(response.status_code, response.text)


def problems(body: dict[str, Any]) -> list[Any]:
    """Top-level error messages and payload error codes: what the client is told."""
    found: list[Any] = [e["message"] for e in body.get("errors") or []]
    for payload in (body.get("data") or {}).values():
        if isinstance(payload, dict):
            found.extend(e["code"] for e in payload.get("errors") or [])
    return found


# Wrongly typed variables: GraphQL refuses them before anything runs.
WRONG_TYPES: list[tuple[str, str, dict[str, Any]]] = [
    ("string for Int", INVOICES, {"first": "ten"}),
    ("2**70 for Int", INVOICES, {"first": 2**70}),
    ("2**31 for Int", INVOICES, {"first": 2**31}),
    ("float for Int", INVOICES, {"first": 1.5}),
    ("bool for Int", INVOICES, {"first": True}),
    ("object for String", INVOICES, {"after": {"a": 1}}),
    ("list for ID", NODE, {"id": ["a"]}),
    ("null for ID!", NODE, {"id": None}),
    ("missing ID!", INVOICE, {}),
    ("number for String!", LOGIN, {"email": 5, "password": "x"}),
    ("unknown role", LOGIN, {"email": "a@b.c", "password": "x", "role": "KING"}),
    ("lower-case role", SWITCH_ROLE, {"role": "admin"}),
    ("unknown status", FILTERED, {"filter": {"status": ["LOST"]}}),
    ("bad DateTime", FILTERED, {"filter": {"sentFrom": "yesterday"}}),
    ("number DateTime", FILTERED, {"filter": {"sentTo": 1700000000}}),
    ("unknown filter field", FILTERED, {"filter": {"amount": 5}}),
    ("string filter", FILTERED, {"filter": "PAID"}),
    ("2**70 tax rate", SET_SALES_TAX, {"input": {"mode": "EXCLUSIVE", "rateBasisPoints": 2**70}}),
    ("string tax rate", SET_SALES_TAX, {"input": {"mode": "EXCLUSIVE", "rateBasisPoints": "5%"}}),
    ("missing tax mode", SET_SALES_TAX, {"input": {"rateBasisPoints": 5}}),
    ("string for Boolean", BILLING, {"input": {"enabled": "yes"}}),
    ("id list of numbers", BILLING, {"input": {"enabled": True, "providerIds": [[1]]}}),
    ("unknown processor type", CONFIGURE, {"input": {**STRIPE, "type": "PAYPAL"}}),
    ("missing secret key", CONFIGURE, {"input": {"type": "STRIPE", "webhookSecret": "x"}}),
    ("null input", ADD_MEMBER, {"input": None}),
    ("input as a list", ADD_MEMBER, {"input": [{"email": "a@b.c"}]}),
    ("2**70 amount", SEND, {"input": {"clientId": "x", "description": "d", "amount": 2**70}}),
    ("-2**70 amount", SEND, {"input": {"clientId": "x", "description": "d", "amount": -(2**70)}}),
    ("string amount", SEND, {"input": {"clientId": "x", "description": "d", "amount": "100"}}),
    ("float amount", SEND, {"input": {"clientId": "x", "description": "d", "amount": 10.5}}),
]


@pytest.mark.parametrize(
    ("query", "variables"), [case[1:] for case in WRONG_TYPES], ids=[c[0] for c in WRONG_TYPES]
)
async def test_wrongly_typed_variables_are_graphql_errors(
    api: Api, world: World, query: str, variables: dict[str, Any]
) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    before = await snapshot(world.db, world.practice_id)
    body = await send(api, query, variables, token)
    assert body.get("data") is None, body
    (error,) = body["errors"]
    assert error["message"].startswith("Variable '$"), error
    assert "path" not in error
    assert await snapshot(world.db, world.practice_id) == before


@pytest.mark.parametrize(
    "query",
    [
        "{ invoices(first: 99999999999) { totalCount } }",
        '{ invoices(first: "ten") { totalCount } }',
        "{ invoices(first: 1.5) { totalCount } }",
        "{ invoice(id: true) { id } }",
        "{ invoice(id: 1.5) { id } }",
        "{ node { id } }",
        "{ invoices(filter: { status: [LOST] }) { totalCount } }",
        '{ invoices(filter: { sentFrom: "not a date" }) { totalCount } }',
        "{ nothing }",
        "{ invoices { nothing } }",
        '{ invoice(id: "x") }',
        "mutation { setSalesTax(input: { mode: EXCLUSIVE,"
        " rateBasisPoints: 1180591620717411303424 }) { errors { code } } }",
        'mutation { sendInvoice(input: { clientId: "x", description: "d",'
        " amount: 1180591620717411303424 }) { errors { code } } }",
        "{ invoices { totalCount }",
        "{",
        "",
        "subscription { nothing }",
        "query A { viewer { role } } query A { viewer { role } }",
        "query($x: Int) { viewer { role } }",
        "fragment F on Invoice { id } { viewer { role } }",
        "{ viewer { ...F } } fragment F on Viewer { ...F }",
    ],
)
async def test_invalid_documents_are_graphql_errors(api: Api, world: World, query: str) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    body = await send(api, query, {}, token)
    if body:
        assert body.get("data") is None
        assert body["errors"]


@pytest.mark.parametrize("bad_id", BAD_IDS, ids=range(len(BAD_IDS)))
async def test_unknown_and_malformed_ids_everywhere(api: Api, world: World, bad_id: str) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    before = await snapshot(world.db, world.practice_id)
    for query, key in ((NODE, "node"), (INVOICE, "invoice"), (CLIENT, "client")):
        assert await send(api, query, {"id": bad_id}, admin) == {"data": {key: None}}
    filtered = await send(
        api, FILTERED, {"filter": {"clientId": bad_id, "providerId": bad_id}}, admin
    )
    assert filtered == {"data": {"invoices": {"totalCount": 0}}}
    client = gid("Client", world.c1.id)
    provider = gid("User", world.provider.id)
    refused: list[tuple[str, dict[str, Any], tuple[str, str]]] = [
        (REMOVE_MEMBER, {"userId": bad_id, "role": "CLIENT"}, ("NOT_FOUND", "userId")),
        (
            ASSIGN,
            {"input": {"providerId": bad_id, "clientId": client}},
            ("NOT_FOUND", "providerId"),
        ),
        (
            ASSIGN,
            {"input": {"providerId": provider, "clientId": bad_id}},
            ("NOT_FOUND", "clientId"),
        ),
        (
            UNASSIGN,
            {"input": {"providerId": provider, "clientId": bad_id}},
            ("NOT_FOUND", "clientId"),
        ),
        (REMOVE_PROCESSOR, {"id": bad_id}, ("NOT_FOUND", "id")),
        (
            BILLING,
            {"input": {"enabled": True, "providerIds": [bad_id]}},
            ("NOT_FOUND", "providerIds"),
        ),
    ]
    for query, variables, expected in refused:
        body = await send(api, query, variables, admin)
        (payload,) = body["data"].values()
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [expected], query
    assert await snapshot(world.db, world.practice_id) == before


async def test_huge_and_empty_strings(api: Api, world: World) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    before = await snapshot(world.db, world.practice_id)
    cases: list[tuple[str, dict[str, Any], list[Any]]] = [
        (LOGIN, {"email": MB, "password": MB}, ["VALIDATION"]),
        (LOGIN, {"email": "", "password": ""}, ["VALIDATION"]),
        (ACCEPT_INVITE, {"token": MB, "password": "long enough"}, ["NOT_FOUND"]),
        (ACCEPT_INVITE, {"token": "", "password": "long enough"}, ["NOT_FOUND"]),
        (ACCEPT_INVITE, {"token": "t", "password": MB}, ["VALIDATION"]),
        (ADD_MEMBER, {"input": {"email": MB, "name": "n", "role": "CLIENT"}}, ["VALIDATION"]),
        (ADD_MEMBER, {"input": {"email": "", "name": "n", "role": "CLIENT"}}, ["VALIDATION"]),
        (
            ADD_MEMBER,
            {"input": {"email": "a@example.test", "name": MB, "role": "CLIENT"}},
            ["VALIDATION"],
        ),
        (
            ADD_MEMBER,
            {"input": {"email": "a@example.test", "name": "", "role": "CLIENT"}},
            ["VALIDATION"],
        ),
        (CONFIGURE, {"input": {**STRIPE, "description": MB}}, ["VALIDATION"]),
        (CONFIGURE, {"input": {**STRIPE, "secretKey": MB}}, ["VALIDATION"]),
        (CONFIGURE, {"input": {**STRIPE, "secretKey": ""}}, ["VALIDATION"]),
        (CONFIGURE, {"input": {**STRIPE, "webhookSecret": MB}}, ["VALIDATION"]),
        (CONFIGURE, {"input": {**STRIPE, "publishableKey": MB}}, ["VALIDATION"]),
        (
            SET_SALES_TAX,
            {"input": {"mode": "EXCLUSIVE", "rateBasisPoints": 10, "label": MB}},
            ["VALIDATION"],
        ),
        (CLIENTS, {"search": MB}, ["`search` must be at most 254 characters"]),
        (INVOICES, {"after": MB}, ["`after` is not a cursor this API gave out"]),
        (INVOICES, {"after": ""}, ["`after` is not a cursor this API gave out"]),
    ]
    for query, variables, expected in cases:
        body = await send(api, query, variables, admin)
        assert problems(body) == expected, (query[:40], body)
    assert await snapshot(world.db, world.practice_id) == before


async def test_boundaries_of_numbers(api: Api, world: World) -> None:
    admin = await world.token(world.admin, Role.ADMIN)
    before = await snapshot(world.db, world.practice_id)
    for rate in (-(2**31), -1, 10_001, 2**31 - 1):
        body = await send(
            api, SET_SALES_TAX, {"input": {"mode": "INCLUSIVE", "rateBasisPoints": rate}}, admin
        )
        assert problems(body) == ["VALIDATION"]
    for first in (-(2**31), -1, 101, 2**31 - 1):
        body = await send(api, INVOICES, {"first": first}, admin)
        assert problems(body) == ["`first` must be between 0 and 100"]
    assert await snapshot(world.db, world.practice_id) == before


async def test_anonymous_bad_input_is_still_typed(api: Api) -> None:
    """Without a token the answer is UNAUTHENTICATED or a GraphQL error, for any input."""
    cases: list[tuple[str, dict[str, Any]]] = [
        (INVOICES, {"first": 2**70}),
        (INVOICES, {"after": MB}),
        (NODE, {"id": MB}),
        (SET_SALES_TAX, {"input": {"mode": "NONE", "label": MB}}),
        (REMOVE_MEMBER, {"userId": "🙂", "role": "CLIENT"}),
        ("mutation { logout }", {}),
    ]
    for query, variables in cases:
        body = await send(api, query, variables, None)
        assert body["errors"]
