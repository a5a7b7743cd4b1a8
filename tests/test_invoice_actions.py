"""recordPayment, forgiveInvoice, voidInvoice and refundInvoice: the contract's status rules,
who may act, amounts, history — and for every refusal, that nothing changed."""

from __future__ import annotations

import pytest

from tests.api import Api
from tests.factories import World
from tests.lifecycle import FORGIVE, INVOICE, RECORD, REFUND, VOID, gid, mutate, snapshot

CONFIGURE_STRIPE = """mutation { configurePaymentProcessor(input: {type: STRIPE,
  secretKey: "sk_test_abcdefghijkl", webhookSecret: "whsec_abcdefghijkl"}) {
  paymentProcessor { id } errors { code } } }"""


async def configure_stripe(api: Api, admin_token: str) -> None:
    data = await api.data(CONFIGURE_STRIPE, token=admin_token)
    assert data["configurePaymentProcessor"]["errors"] == []


async def test_partial_then_full_payment(api: Api, world: World) -> None:
    invoice_id = await world.invoice(amount=10_000)
    token = await world.token(world.provider, "PROVIDER")

    first = await mutate(
        api, RECORD, token, invoiceId=gid("Invoice", invoice_id), amount=4_000, method="CASH"
    )
    assert first["errors"] == []
    assert first["invoice"]["status"] == "UNPAID"
    assert first["invoice"]["amountPaid"] == {"amount": 4_000}
    assert first["invoice"]["amountDue"] == {"amount": 6_000}
    assert first["invoice"]["history"][-1] == {
        "action": "PAYMENT_RECORDED",
        "actor": {"name": world.provider.name},
        "amount": {"amount": 4_000},
        "note": None,
    }

    second = await mutate(
        api,
        RECORD,
        token,
        invoiceId=gid("Invoice", invoice_id),
        amount=6_000,
        method="CHECK",
        reference="cheque 1042",
    )
    invoice = second["invoice"]
    assert second["errors"] == []
    assert invoice["status"] == "PAID"
    assert invoice["amountPaid"] == {"amount": 10_000}
    assert invoice["amountDue"] == {"amount": 0}
    assert invoice["refundableAmount"] == {"amount": 10_000}
    assert invoice["payments"] == [
        {"amount": {"amount": 4_000}, "method": "CASH", "reference": None},
        {"amount": {"amount": 6_000}, "method": "CHECK", "reference": "cheque 1042"},
    ]
    assert [e["action"] for e in invoice["history"]] == ["SENT", "PAYMENT_RECORDED", "PAID"]
    assert (invoice["canRecordPayment"], invoice["canForgive"], invoice["canVoid"]) == (
        False,
        False,
        False,
    )
    assert invoice["canRefund"] is True


async def test_admin_may_record_payment_and_paid_invoice_alerts(api: Api, world: World) -> None:
    invoice_id = await world.invoice(amount=2_500)
    token = await world.token(world.admin, "ADMIN")
    before = await snapshot(world, invoice_id)
    payload = await mutate(
        api,
        RECORD,
        token,
        invoiceId=gid("Invoice", invoice_id),
        amount=2_500,
        method="BANK_TRANSFER",
    )
    assert payload["errors"] == []
    after = await snapshot(world, invoice_id)
    assert after["events"] == before["events"] + 1
    assert after["alerts"] == before["alerts"] + 1
    assert after["payments"] == 1


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"amount": 10_001}, "VALIDATION", "amount"),  # more than due
        ({"amount": 0}, "VALIDATION", "amount"),
        ({"method": "CARD"}, "VALIDATION", "method"),
        ({"receivedAt": "2999-01-01T00:00:00Z"}, "VALIDATION", "receivedAt"),
        ({"reference": "r" * 201}, "VALIDATION", "reference"),
        ({"invoiceId": "garbage"}, "NOT_FOUND", "invoiceId"),
    ],
)
async def test_record_payment_refusals_change_nothing(
    api: Api, world: World, fields: dict[str, object], code: str, field: str
) -> None:
    invoice_id = await world.invoice(amount=10_000)
    token = await world.token(world.provider, "PROVIDER")
    before = await snapshot(world, invoice_id)
    variables = {
        "invoiceId": gid("Invoice", invoice_id),
        "amount": 1_000,
        "method": "CASH",
        **fields,
    }
    payload = await mutate(api, RECORD, token, **variables)
    assert payload["invoice"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert await snapshot(world, invoice_id) == before


async def test_forgive_writes_off_what_is_due(api: Api, world: World) -> None:
    invoice_id = await world.invoice(amount=10_000, paid=3_000)
    token = await world.token(world.provider, "PROVIDER")
    payload = await mutate(
        api, FORGIVE, token, invoiceId=gid("Invoice", invoice_id), reason="hardship"
    )
    invoice = payload["invoice"]
    assert payload["errors"] == []
    assert invoice["status"] == "FORGIVEN"
    assert invoice["amountPaid"] == {"amount": 3_000}
    assert invoice["amountDue"] == {"amount": 0}
    assert invoice["history"][-1] == {
        "action": "FORGIVEN",
        "actor": {"name": world.provider.name},
        "amount": {"amount": 7_000},
        "note": "hardship",
    }
    assert not any(invoice[f] for f in ("canRecordPayment", "canForgive", "canVoid", "canRefund"))


async def test_void_only_without_payment(api: Api, world: World) -> None:
    token = await world.token(world.admin, "ADMIN")
    clean = await world.invoice(amount=5_000)
    voided = await mutate(api, VOID, token, invoiceId=gid("Invoice", clean), reason="duplicate")
    assert voided["errors"] == []
    assert voided["invoice"]["status"] == "VOID"
    assert voided["invoice"]["history"][-1]["action"] == "VOIDED"

    partly_paid = await world.invoice(amount=5_000, paid=100)
    before = await snapshot(world, partly_paid)
    refused = await mutate(api, VOID, token, invoiceId=gid("Invoice", partly_paid))
    assert refused["invoice"] is None
    assert [e["code"] for e in refused["errors"]] == ["INVALID_STATE"]
    assert "payments" in refused["errors"][0]["message"]
    assert await snapshot(world, partly_paid) == before


async def test_partial_and_full_refund(api: Api, world: World) -> None:
    invoice_id = await world.invoice(amount=9_000, paid=9_000)
    token = await world.token(world.provider, "PROVIDER")

    partial = await mutate(
        api, REFUND, token, invoiceId=gid("Invoice", invoice_id), amount=2_000, reason="missed"
    )
    assert partial["errors"] == []
    assert partial["invoice"]["status"] == "PAID"
    assert partial["invoice"]["amountPaid"] == {"amount": 9_000}
    assert partial["invoice"]["amountRefunded"] == {"amount": 2_000}
    assert partial["invoice"]["refundableAmount"] == {"amount": 7_000}
    assert partial["invoice"]["refunds"] == [{"amount": {"amount": 2_000}, "reason": "missed"}]

    rest = await mutate(api, REFUND, token, invoiceId=gid("Invoice", invoice_id), reason="closing")
    invoice = rest["invoice"]
    assert rest["errors"] == []
    assert invoice["status"] == "REFUNDED"
    assert invoice["amountRefunded"] == {"amount": 9_000}
    assert invoice["refundableAmount"] == {"amount": 0}
    assert invoice["canRefund"] is False
    assert [e["action"] for e in invoice["history"]] == ["SENT", "PAID", "REFUNDED", "REFUNDED"]
    assert [e["amount"] for e in invoice["history"][-2:]] == [{"amount": 2_000}, {"amount": 7_000}]


async def test_refund_spanning_several_payments(api: Api, world: World) -> None:
    invoice_id = await world.invoice(amount=10_000, paid=4_000)
    token = await world.token(world.provider, "PROVIDER")
    paid = await mutate(
        api, RECORD, token, invoiceId=gid("Invoice", invoice_id), amount=6_000, method="CASH"
    )
    assert paid["invoice"]["status"] == "PAID"
    refunded = await mutate(
        api, REFUND, token, invoiceId=gid("Invoice", invoice_id), amount=8_000, reason="x"
    )
    assert refunded["errors"] == []
    # newest payment first: 6 000 from the second, 2 000 from the first; one history event
    assert refunded["invoice"]["refunds"] == [
        {"amount": {"amount": 6_000}, "reason": "x"},
        {"amount": {"amount": 2_000}, "reason": "x"},
    ]
    assert [e["action"] for e in refunded["invoice"]["history"]].count("REFUNDED") == 1


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"amount": 9_001}, "VALIDATION", "amount"),
        ({"amount": 0}, "VALIDATION", "amount"),
        ({"reason": "   "}, "VALIDATION", "reason"),
    ],
)
async def test_refund_refusals_change_nothing(
    api: Api, world: World, fields: dict[str, object], code: str, field: str
) -> None:
    invoice_id = await world.invoice(amount=9_000, paid=9_000)
    token = await world.token(world.provider, "PROVIDER")
    before = await snapshot(world, invoice_id)
    variables = {"invoiceId": gid("Invoice", invoice_id), "amount": 100, "reason": "r", **fields}
    payload = await mutate(api, REFUND, token, **variables)
    assert payload["invoice"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)]
    assert await snapshot(world, invoice_id) == before


@pytest.mark.parametrize(
    ("state", "operation", "extra"),
    [
        ("unpaid", REFUND, {"reason": "r"}),
        ("partly_paid", REFUND, {"reason": "r"}),
        ("paid", RECORD, {"amount": 1, "method": "CASH"}),
        ("paid", FORGIVE, {}),
        ("paid", VOID, {}),
        ("forgiven", RECORD, {"amount": 1, "method": "CASH"}),
        ("forgiven", FORGIVE, {}),
        ("forgiven", VOID, {}),
        ("forgiven", REFUND, {"reason": "r"}),
        ("void", RECORD, {"amount": 1, "method": "CASH"}),
        ("void", FORGIVE, {}),
        ("void", VOID, {}),
        ("void", REFUND, {"reason": "r"}),
        ("refunded", REFUND, {"reason": "r"}),
        ("refunded", RECORD, {"amount": 1, "method": "CASH"}),
        ("refunded", VOID, {}),
        ("refunded", FORGIVE, {}),
    ],
)
async def test_illegal_transitions_are_invalid_state(
    api: Api, world: World, state: str, operation: str, extra: dict[str, object]
) -> None:
    make = {
        "unpaid": {},
        "partly_paid": {"paid": 100},
        "paid": {"paid": 1_000},
        "forgiven": {"forgive": True},
        "void": {"void": True},
        "refunded": {"paid": 1_000, "refunded": 1_000},
    }[state]
    invoice_id = await world.invoice(amount=1_000, **make)  # type: ignore[arg-type]
    token = await world.token(world.admin, "ADMIN")
    before = await snapshot(world, invoice_id)
    payload = await mutate(api, operation, token, invoiceId=gid("Invoice", invoice_id), **extra)
    assert payload["invoice"] is None
    assert [e["code"] for e in payload["errors"]] == ["INVALID_STATE"]
    assert payload["errors"][0]["message"].startswith(("cannot", "nothing"))
    assert await snapshot(world, invoice_id) == before


async def test_who_may_manage_an_invoice(api: Api, world: World, other_world: World) -> None:
    invoice_id = await world.invoice(world.c1, world.provider, amount=1_000)
    target = gid("Invoice", invoice_id)
    cases = [
        (world.c1, "CLIENT", "FORBIDDEN"),  # own invoice, but clients only pay
        (world.c2, "CLIENT", "NOT_FOUND"),  # another client's invoice
        (world.provider2, "PROVIDER", "NOT_FOUND"),  # not their client
        (world.admin, "PROVIDER", "NOT_FOUND"),  # admin acting as provider: no assigned clients
        (other_world.admin, "ADMIN", "NOT_FOUND"),  # another practice
    ]
    for person, role, code in cases:
        owner = other_world if person is other_world.admin else world
        token = await owner.token(person, role)
        for operation, extra in (
            (RECORD, {"amount": 100, "method": "CASH"}),
            (FORGIVE, {}),
            (VOID, {}),
        ):
            before = await snapshot(world, invoice_id)
            payload = await mutate(api, operation, token, invoiceId=target, **extra)
            assert [e["code"] for e in payload["errors"]] == [code], (person, role, operation)
            assert await snapshot(world, invoice_id) == before


async def test_capability_flags_follow_the_viewer(api: Api, world: World) -> None:
    invoice_id = await world.invoice(world.c1, world.provider, amount=1_000)
    query = "query($id: ID!) { invoice(id: $id) { %s } }"
    client = await world.token(world.c1, "CLIENT")

    # nothing to pay with until the admin configures a processor
    data = await api.data(query % "canPay", {"id": gid("Invoice", invoice_id)}, token=client)
    assert data["invoice"] == {"canPay": False}
    await configure_stripe(api, await world.token(world.admin, "ADMIN"))

    flags = "canPay canRecordPayment canForgive canVoid canRefund"
    expected = {
        (world.c1, "CLIENT"): [True, False, False, False, False],
        (world.provider, "PROVIDER"): [False, True, True, True, False],
        (world.admin, "ADMIN"): [False, True, True, True, False],
    }
    for (person, role), values in expected.items():
        token = await world.token(person, role)
        data = await api.data(query % flags, {"id": gid("Invoice", invoice_id)}, token=token)
        assert list(data["invoice"].values()) == values, (person, role)


async def test_history_and_amounts_read_back_the_same(api: Api, world: World) -> None:
    invoice_id = await world.invoice(amount=3_000, paid=3_000, refunded=500)
    token = await world.token(world.admin, "ADMIN")
    data = await api.data(INVOICE, {"id": gid("Invoice", invoice_id)}, token=token)
    invoice = data["invoice"]
    assert invoice["status"] == "PAID"
    assert (invoice["amountPaid"], invoice["amountRefunded"], invoice["refundableAmount"]) == (
        {"amount": 3_000},
        {"amount": 500},
        {"amount": 2_500},
    )
    assert [e["action"] for e in invoice["history"]] == ["SENT", "PAID", "REFUNDED"]
