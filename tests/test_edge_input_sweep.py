"""Every String, ID, cursor, Date and DateTime argument of the schema, found by walking its
introspection (root fields, input objects, and the fields of the objects `client(id:)`,
`invoice(id:)`, `viewer` and `practice` reach), gets edge values — lone surrogates, NUL bytes,
cursors holding huge numbers or booleans, datetimes at the ends of the calendar with ±14 h
offsets — and each answer is a typed client error (or an ordinary answer), never
INTERNAL_SERVER_ERROR, never a 5xx."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import get_introspection_query

from models.enums import Role
from schema.node import encode_id
from tests.api import Api
from tests.factories import World

Ref = dict[str, Any]


def cursor(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


TEXT = ["\ud800", "\udfff", "a\udc00b", "\x00", "nul\x00inside", "🙂\ud83d"]
CURSORS = [
    cursor([2**70]),
    cursor([True]),
    cursor([-(2**70)]),
    cursor([2**70, 2**70]),
    cursor(["9999-12-31T23:59:59-14:00", 1]),
    cursor(["0001-01-01T00:00:00+14:00", True]),
    cursor([True, 1]),
    cursor(["\ud800", 1]),
    cursor(["x\x00", 2**31]),
    cursor([1.5e300]),
    cursor([None]),
    cursor({"a": 1}),
]
DATES = ["0001-01-01", "9999-12-31", "0000-01-01", "10000-01-01", "2026-02-30"]
DATETIMES = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T13:59:59+14:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T10:00:00-14:00",
    "9999-12-31T23:59:59.999999Z",
    "0001-01-01T00:00:00",
]
EDGE_VALUES = {"String": TEXT, "ID": TEXT, "Date": DATES, "DateTime": DATETIMES}


def unwrap(ref: Ref) -> Ref:
    while ref["kind"] in ("NON_NULL", "LIST"):
        ref = ref["ofType"]
    return ref


def printed(ref: Ref) -> str:
    if ref["kind"] == "NON_NULL":
        return printed(ref["ofType"]) + "!"
    if ref["kind"] == "LIST":
        return f"[{printed(ref['ofType'])}]"
    return str(ref["name"])


@dataclass
class Schema:
    types: dict[str, Ref]
    ids: dict[str, Any]  # argument names → a real id of the world, so checks go deeper

    def valid(self, ref: Ref, name: str) -> Any:
        """A plausible value of the type, so that the argument under test is reached."""
        if ref["kind"] == "NON_NULL":
            return self.valid(ref["ofType"], name)
        if ref["kind"] == "LIST":
            return [self.valid(ref["ofType"], name)]
        type_name = ref["name"]
        kind = self.types[type_name]["kind"]
        if kind == "ENUM":
            return self.types[type_name]["enumValues"][0]["name"]
        if kind == "INPUT_OBJECT":
            return {
                f["name"]: self.valid(f["type"], f["name"])
                for f in self.types[type_name]["inputFields"]
                if f["type"]["kind"] == "NON_NULL"
            }
        return {
            "ID": self.ids.get(name, self.ids["id"]),
            "String": "plain text",
            "Int": 1,
            "BigInt": 1,
            "Boolean": False,
            "Date": "2026-01-15",
            "DateTime": "2026-01-15T10:00:00Z",
        }[type_name]

    def edges(self, ref: Ref, name: str) -> Iterator[Any]:
        """Values of the type with one edge value somewhere inside."""
        if ref["kind"] == "NON_NULL":
            yield from self.edges(ref["ofType"], name)
            return
        if ref["kind"] == "LIST":
            for value in self.edges(ref["ofType"], name):
                yield [value]
            return
        type_name = ref["name"]
        if type_name == "String" and name == "after":
            yield from CURSORS
        yield from EDGE_VALUES.get(type_name, [])
        definition = self.types[type_name]
        if definition["kind"] == "INPUT_OBJECT":
            base = self.valid(ref, name)
            for input_field in definition["inputFields"]:
                for value in self.edges(input_field["type"], input_field["name"]):
                    yield {**base, input_field["name"]: value}


def operations(schema: Schema) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(argument, document, variables): each edge value of each argument of each field."""
    owners = {
        "Query": ("query", "{}"),
        "Mutation": ("mutation", "{}"),
        "Client": ("query", "{ client(id: $owner) {} }"),
        "Invoice": ("query", "{ invoice(id: $owner) {} }"),
        "Viewer": ("query", "{ viewer {} }"),
        "Practice": ("query", "{ practice {} }"),
    }
    for owner, (kind, frame) in owners.items():
        owner_id = {"Client": schema.ids["clientId"], "Invoice": schema.ids["invoiceId"]}
        for field in schema.types[owner]["fields"]:
            args = field["args"]
            returned = schema.types[unwrap(field["type"])["name"]]
            selection = "" if returned["kind"] in ("SCALAR", "ENUM") else " { __typename }"
            for target in args:
                for edge in schema.edges(target["type"], target["name"]):
                    variables = {a["name"]: schema.valid(a["type"], a["name"]) for a in args}
                    variables[target["name"]] = edge
                    declared = [f"${a['name']}: {printed(a['type'])}" for a in args]
                    if owner in owner_id:
                        declared.append("$owner: ID!")
                        variables["owner"] = owner_id[owner]
                    passed = ", ".join(f"{a['name']}: ${a['name']}" for a in args)
                    call = f"{field['name']}({passed})"
                    body = frame.replace("{}", "{ " + call + selection + " }")
                    label = f"{owner}.{field['name']}({target['name']})"
                    yield label, f"{kind}({', '.join(declared)}) {body}", variables


async def test_every_text_id_cursor_and_date_argument_gets_a_typed_answer(
    api: Api, world: World
) -> None:
    introspection = await api.data(get_introspection_query())
    types = {t["name"]: t for t in introspection["__schema"]["types"]}
    invoice = await world.invoice(paid=2_000)
    ids = {
        "id": encode_id("Invoice", invoice),
        "invoiceId": encode_id("Invoice", invoice),
        "clientId": encode_id("Client", world.c1.id),
        "providerId": encode_id("User", world.provider.id),
        "providerIds": encode_id("User", world.provider.id),
        "userId": encode_id("User", world.c2.id),
        "upTo": encode_id("InvoiceAlert", 1),
    }
    schema = Schema(types, ids)
    cases = list(operations(schema))
    assert len(cases) > 300
    swept = {label for label, _, _ in cases}
    assert {"Query.alerts(after)", "Client.statement(from)", "Mutation.login(email)"} <= swept
    assert len(swept) > 30
    failures: list[tuple[str, Any, str]] = []
    for role, person in ((Role.ADMIN, world.admin), (Role.PROVIDER, world.provider)):
        token = await world.token(person, role)
        for label, document, variables in cases:
            # ensure_ascii: lone surrogates travel as \\ud800 escapes, as a client sends them.
            response = await api.http.post(
                "/graphql",
                content=json.dumps({"query": document, "variables": variables}),
                headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
            )
            if response.status_code >= 500 or "INTERNAL_SERVER_ERROR" in response.text:
                failures.append((label, variables, response.text[:300]))
    assert failures == []
