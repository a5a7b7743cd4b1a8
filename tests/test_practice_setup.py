"""Practice set-up by an ADMIN: payment processors (validated, rotated, never readable back,
encrypted at rest), sales tax and Client Billing."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from sqlalchemy import select

from adapters.crypto import DecryptionError, Vault
from models import PaymentProcessorConfig
from models.enums import Role
from schema.node import encode_id
from tests.api import Api
from tests.factories import World
from tests.snapshots import snapshot

SECRET = "sk_test_" + "S3cr3tK3y" * 3
WEBHOOK = "whsec_" + "W3bh00kS3cr3t" * 2
PUBLISHABLE = "pk_test_" + "Publ1sh" * 3

CONFIGURE = """mutation($input: ConfigurePaymentProcessorInput!) {
  configurePaymentProcessor(input: $input) {
    paymentProcessor { id type description publishableKey createdAt updatedAt webhookPath }
    errors { code field message } } }"""
REMOVE = """mutation($id: ID!) { removePaymentProcessor(id: $id) {
  paymentProcessor { id } errors { code field message } } }"""
PROCESSORS = "{ practice { paymentProcessors { id type description } } }"
SET_SALES_TAX = """mutation($input: SetSalesTaxInput!) { setSalesTax(input: $input) {
  practice { salesTax { mode rateBasisPoints label } } errors { code field message } } }"""
CONFIGURE_BILLING = """mutation($input: ConfigureClientBillingInput!) {
  configureClientBilling(input: $input) {
    practice { clientBilling { enabled providers { id } } } errors { code field message } } }"""
INTROSPECT_TYPES = """{ __schema { types { name kind
  fields(includeDeprecated: true) { name }
  inputFields { name } } } }"""
PROCESSOR_FIELDS = (
    '{ __type(name: "PaymentProcessor") { fields(includeDeprecated: true) { name } } }'
)


def gid(type_name: str, pk: int) -> str:
    return str(encode_id(type_name, pk))


def stripe(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "STRIPE",
        "description": "Main account",
        "secretKey": SECRET,
        "webhookSecret": WEBHOOK,
        "publishableKey": PUBLISHABLE,
    }
    data.update(overrides)
    return data


async def configure(api: Api, world: World, **overrides: Any) -> dict[str, Any]:
    token = await world.token(world.admin, Role.ADMIN)
    data = await api.data(CONFIGURE, {"input": stripe(**overrides)}, token)
    payload: dict[str, Any] = data["configurePaymentProcessor"]
    return payload


async def stored(world: World) -> list[PaymentProcessorConfig]:
    async with world.db.reader() as session:
        rows = await session.execute(
            select(PaymentProcessorConfig).where(
                PaymentProcessorConfig.practice_id == world.practice_id
            )
        )
        return list(rows.scalars())


# --- payment processors ----------------------------------------------------------------


async def test_configure_a_processor(api: Api, world: World) -> None:
    payload = await configure(api, world)
    processor = payload["paymentProcessor"]
    assert payload["errors"] == []
    (row,) = await stored(world)
    assert processor == {
        "id": gid("PaymentProcessor", row.id),
        "type": "STRIPE",
        "description": "Main account",
        "publishableKey": PUBLISHABLE,
        "createdAt": processor["createdAt"],
        "updatedAt": processor["updatedAt"],
        "webhookPath": f"/webhooks/stripe/{gid('PaymentProcessor', row.id)}",
    }


async def test_reconfiguring_a_type_rotates_its_keys_and_keeps_its_id(
    api: Api, world: World
) -> None:
    first = (await configure(api, world))["paymentProcessor"]
    (before,) = await stored(world)
    rotated_secret = "rk_live_" + "R0tat3d" * 4
    rotated_webhook = "whsec_" + "n3wW3bh00k" * 3
    second = await configure(
        api,
        world,
        description="  Rotated  ",
        secretKey=rotated_secret,
        webhookSecret=rotated_webhook,
        publishableKey="pk_live_" + "L1v3" * 5,
    )
    assert second["errors"] == []
    assert second["paymentProcessor"]["id"] == first["id"]
    assert second["paymentProcessor"]["description"] == "Rotated"
    assert second["paymentProcessor"]["createdAt"] == first["createdAt"]
    assert second["paymentProcessor"]["updatedAt"] >= first["updatedAt"]
    (after,) = await stored(world)
    assert after.id == before.id
    assert after.encrypted_credentials != before.encrypted_credentials
    assert world.services.vault.decrypt(after.encrypted_credentials) == {
        "secret_key": rotated_secret,
        "webhook_secret": rotated_webhook,
    }


async def test_credentials_are_ciphertext_at_rest(api: Api, world: World) -> None:
    await configure(api, world)
    (row,) = await stored(world)
    blob = bytes(row.encrypted_credentials)
    for plaintext in (SECRET, WEBHOOK, SECRET[8:], WEBHOOK[6:]):
        assert plaintext.encode() not in blob
    assert world.services.vault.decrypt(blob) == {"secret_key": SECRET, "webhook_secret": WEBHOOK}
    with pytest.raises(DecryptionError):
        Vault("another-secret-key-0123456789").decrypt(blob)


async def test_no_field_of_the_schema_can_expose_a_secret(api: Api, world: World) -> None:
    """Output fields with a secret-sounding name would be a leak waiting to happen (input fields
    may carry secrets in; nothing carries them out). `token`/`inviteToken` are the caller's own
    new credentials and are expected."""
    schema = await api.data(INTROSPECT_TYPES)
    suspicious = re.compile(r"secret|password|hash|credential|encrypt|cipher|private", re.I)
    leaks = [
        f"{t['name']}.{f['name']}"
        for t in schema["__schema"]["types"]
        if t["kind"] in ("OBJECT", "INTERFACE") and not t["name"].startswith("__")
        for f in t["fields"] or []
        if suspicious.search(f["name"])
    ]
    # A Stripe PaymentIntent's client secret is made for the paying client's browser (it
    # confirms that one payment and nothing else); it is not a processor credential.
    assert set(leaks) <= {"InvoicePayload.paymentClientSecret"}
    inputs = {
        f["name"]
        for t in schema["__schema"]["types"]
        if t["name"] == "ConfigurePaymentProcessorInput"
        for f in t["inputFields"]
    }
    assert {"secretKey", "webhookSecret"} <= inputs


async def test_every_processor_field_is_free_of_secrets(api: Api, world: World) -> None:
    await configure(api, world)
    fields = [f["name"] for f in (await api.data(PROCESSOR_FIELDS))["__type"]["fields"]]
    assert {"id", "type", "description", "createdAt", "webhookPath"} <= set(fields)
    query = "{ practice { paymentProcessors { %s } } }" % " ".join(fields)  # noqa: UP031
    token = await world.token(world.admin, Role.ADMIN)
    body = await api.post(query, token=token)
    assert "errors" not in body
    text = json.dumps(body)
    for secret in (SECRET, WEBHOOK, SECRET[8:], WEBHOOK[6:]):
        assert secret not in text
    node = await api.post(
        "query($id: ID!) { node(id: $id) { ... on PaymentProcessor { %s } } }"  # noqa: UP031
        % " ".join(fields),
        {"id": body["data"]["practice"]["paymentProcessors"][0]["id"]},
        token,
    )
    assert "errors" not in node
    assert SECRET not in json.dumps(node)
    assert WEBHOOK not in json.dumps(node)


async def test_secrets_are_not_logged_nor_echoed(
    api: Api, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await configure(api, world)
    bad = await configure(api, world, secretKey="sk_test_short", webhookSecret=WEBHOOK)
    assert bad["errors"][0]["field"] == "secretKey"
    assert "sk_test_short" not in json.dumps(bad)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in logged
    assert WEBHOOK not in logged


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"secretKey": PUBLISHABLE}, "secretKey"),
        ({"secretKey": "sk_test_short"}, "secretKey"),
        ({"secretKey": "sk_prod_" + "a" * 24}, "secretKey"),
        ({"secretKey": ""}, "secretKey"),
        ({"secretKey": "sk_test_" + "a" * 300}, "secretKey"),
        ({"secretKey": "sk_test_" + "a" * 20 + " ; drop"}, "secretKey"),
        ({"webhookSecret": "wh_" + "a" * 20}, "webhookSecret"),
        ({"webhookSecret": ""}, "webhookSecret"),
        ({"publishableKey": SECRET}, "publishableKey"),
        ({"publishableKey": "pk_live_" + "a" * 20}, "publishableKey"),  # live with a test key
        ({"description": "d" * 201}, "description"),
    ],
)
async def test_processor_validation(
    api: Api, world: World, overrides: dict[str, str], field: str
) -> None:
    await configure(api, world)
    before = await snapshot(world.db, world.practice_id)
    payload = await configure(api, world, **overrides)
    assert payload["paymentProcessor"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("VALIDATION", field)]
    assert await snapshot(world.db, world.practice_id) == before


async def test_secret_keys_may_be_restricted_and_publishable_key_optional(
    api: Api, world: World
) -> None:
    payload = await configure(
        api, world, secretKey="rk_test_" + "x" * 30, publishableKey=None, description=None
    )
    assert payload["errors"] == []
    assert payload["paymentProcessor"]["publishableKey"] is None
    assert payload["paymentProcessor"]["description"] is None


async def test_remove_a_processor(api: Api, world: World) -> None:
    processor = (await configure(api, world))["paymentProcessor"]["id"]
    token = await world.token(world.admin, Role.ADMIN)
    removed = await api.data(REMOVE, {"id": processor}, token)
    assert removed == {
        "removePaymentProcessor": {"paymentProcessor": {"id": processor}, "errors": []}
    }
    # Kept, marked removed, for the payments taken through it (refunds, look-ups, webhooks)
    (kept,) = await stored(world)
    assert kept.removed_at is not None
    assert await api.data(PROCESSORS, token=token) == {"practice": {"paymentProcessors": []}}
    before = await snapshot(world.db, world.practice_id)
    again = await api.data(REMOVE, {"id": processor}, token)
    assert again == {
        "removePaymentProcessor": {
            "paymentProcessor": None,
            "errors": [
                {"code": "NOT_FOUND", "field": "id", "message": "payment processor not found"}
            ],
        }
    }
    assert await snapshot(world.db, world.practice_id) == before


@pytest.mark.parametrize(
    "bad_id", ["", "garbage", gid("Invoice", 1), gid("PaymentProcessor", 2**31 - 1), "🙂"]
)
async def test_remove_an_unknown_processor(api: Api, world: World, bad_id: str) -> None:
    await configure(api, world)
    token = await world.token(world.admin, Role.ADMIN)
    before = await snapshot(world.db, world.practice_id)
    payload = (await api.data(REMOVE, {"id": bad_id}, token))["removePaymentProcessor"]
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("NOT_FOUND", "id")]
    assert await snapshot(world.db, world.practice_id) == before


# --- sales tax -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"mode": "EXCLUSIVE", "rateBasisPoints": 825, "label": "NY"}, ("EXCLUSIVE", 825, "NY")),
        ({"mode": "INCLUSIVE", "rateBasisPoints": 10_000}, ("INCLUSIVE", 10_000, None)),
        ({"mode": "INCLUSIVE", "rateBasisPoints": 1, "label": " VAT "}, ("INCLUSIVE", 1, "VAT")),
        ({"mode": "NONE"}, ("NONE", 0, None)),
        ({"mode": "NONE", "rateBasisPoints": 0, "label": "   "}, ("NONE", 0, None)),
        ({"mode": "EXCLUSIVE", "rateBasisPoints": 5, "label": ""}, ("EXCLUSIVE", 5, None)),
    ],
)
async def test_set_sales_tax(
    api: Api, world: World, given: dict[str, Any], expected: tuple[str, int, str | None]
) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    payload = (await api.data(SET_SALES_TAX, {"input": given}, token))["setSalesTax"]
    mode, rate, label = expected
    assert payload == {
        "practice": {"salesTax": {"mode": mode, "rateBasisPoints": rate, "label": label}},
        "errors": [],
    }


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"mode": "NONE", "rateBasisPoints": 5}, "rateBasisPoints"),
        ({"mode": "EXCLUSIVE", "rateBasisPoints": 0}, "rateBasisPoints"),
        ({"mode": "EXCLUSIVE"}, "rateBasisPoints"),
        ({"mode": "INCLUSIVE", "rateBasisPoints": 10_001}, "rateBasisPoints"),
        ({"mode": "EXCLUSIVE", "rateBasisPoints": -1}, "rateBasisPoints"),
        ({"mode": "EXCLUSIVE", "rateBasisPoints": 100, "label": "l" * 101}, "label"),
    ],
)
async def test_sales_tax_validation(
    api: Api, world: World, given: dict[str, Any], field: str
) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    before = await snapshot(world.db, world.practice_id)
    payload = (await api.data(SET_SALES_TAX, {"input": given}, token))["setSalesTax"]
    assert payload["practice"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("VALIDATION", field)]
    assert await snapshot(world.db, world.practice_id) == before


# --- Client Billing ------------------------------------------------------------------------


async def test_configure_client_billing(api: Api, world: World) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    provider, provider2, admin = (
        gid("User", p.id) for p in (world.provider, world.provider2, world.admin)
    )

    async def billing(given: dict[str, Any]) -> Any:
        return (await api.data(CONFIGURE_BILLING, {"input": given}, token))[
            "configureClientBilling"
        ]

    both = await billing({"enabled": True, "providerIds": [provider2, admin, provider2]})
    expected = sorted([{"id": provider2}, {"id": admin}], key=lambda p: p["id"])
    assert both["errors"] == []
    assert sorted(both["practice"]["clientBilling"]["providers"], key=lambda p: p["id"]) == expected
    # Omitting providerIds keeps them; switching off keeps them too.
    off = await billing({"enabled": False})
    assert off["practice"]["clientBilling"]["enabled"] is False
    assert sorted(off["practice"]["clientBilling"]["providers"], key=lambda p: p["id"]) == expected
    cleared = await billing({"enabled": True, "providerIds": []})
    assert cleared == {
        "practice": {"clientBilling": {"enabled": True, "providers": []}},
        "errors": [],
    }
    assert (await billing({"enabled": True, "providerIds": [provider]}))["practice"] == {
        "clientBilling": {"enabled": True, "providers": [{"id": provider}]}
    }


@pytest.mark.parametrize(
    "who", ["client", "client-as-client-id", "other-practice", "garbage", "unknown"]
)
async def test_client_billing_providers_must_be_providers_here(
    api: Api, world: World, other_world: World, who: str
) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    bad = {
        "client": gid("User", world.c1.id),
        "client-as-client-id": gid("Client", world.c1.id),
        "other-practice": gid("User", other_world.provider.id),
        "garbage": "%%%",
        "unknown": gid("User", 2_000_000_000),
    }[who]
    before = await snapshot(world.db, world.practice_id)
    payload = (
        await api.data(
            CONFIGURE_BILLING,
            {"input": {"enabled": False, "providerIds": [gid("User", world.provider.id), bad]}},
            token,
        )
    )["configureClientBilling"]
    assert payload["practice"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("NOT_FOUND", "providerIds")]
    assert await snapshot(world.db, world.practice_id) == before
