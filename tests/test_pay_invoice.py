"""payInvoice: a client pays what is due by card, through Stripe (localstripe), never twice."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from models import Alert, PaymentAttempt
from models.enums import AlertKind
from schema.node import encode_id
from tests.api import Api
from tests.factories import World
from tests.stripe_server import LocalStripe, deliver, enable_cards

PAY = """
mutation($input: PayInvoiceInput!) {
  payInvoice(input: $input) {
    invoice {
      status
      amountDue { amount }
      amountPaid { amount }
      payments { amount { amount } method reference }
      history { action note amount { amount } }
    }
    requiresAction
    paymentClientSecret
    errors { code field message }
  }
}
"""

INVOICE = """
query($id: ID!) {
  invoice(id: $id) {
    status
    amountDue { amount }
    payments { amount { amount } method reference }
    history { action note }
  }
}
"""

DECLINED_CARD = "4000000000000341"
THREE_D_SECURE_CARD = "4000002500003155"


async def pay(
    api: Api, world: World, invoice_id: int, method: str, key: str | None = None
) -> dict[str, Any]:
    token = await world.token(world.c1, "CLIENT")
    variables = {
        "input": {
            "invoiceId": encode_id("Invoice", invoice_id),
            "paymentMethodId": method,
            "idempotencyKey": key,
        }
    }
    data = await api.data(PAY, variables, token)
    payload: dict[str, Any] = data["payInvoice"]
    return payload


async def read_invoice(api: Api, world: World, invoice_id: int) -> dict[str, Any]:
    token = await world.token(world.c1, "CLIENT")
    data = await api.data(INVOICE, {"id": encode_id("Invoice", invoice_id)}, token)
    invoice: dict[str, Any] = data["invoice"]
    return invoice


async def alerts_of(world: World, invoice_id: int, kind: AlertKind) -> int:
    async with world.db.reader() as session:
        count = (
            await session.execute(
                select(func.count())
                .select_from(Alert)
                .where(Alert.invoice_id == invoice_id, Alert.kind == kind)
            )
        ).scalar_one()
    return int(count)


async def test_a_card_payment_pays_the_invoice(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    # Given a practice that takes cards and an invoice of 100.00
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=10_000)
    card = localstripe.create_payment_method()
    # When its client pays it with a card token
    payload = await pay(api, world, invoice_id, card)
    # Then the card is charged once, for the amount due, and the invoice is PAID
    intents = localstripe.payment_intents()
    assert len(intents) == 1
    intent = intents[0]
    assert (intent["amount"], intent["currency"], intent["status"]) == (10_000, "usd", "succeeded")
    assert intent["metadata"]["carebill_invoice"] == str(invoice_id)
    assert payload == {
        "invoice": {
            "status": "PAID",
            "amountDue": {"amount": 0},
            "amountPaid": {"amount": 10_000},
            "payments": [
                {"amount": {"amount": 10_000}, "method": "CARD", "reference": intent["id"]}
            ],
            "history": [
                {"action": "SENT", "note": None, "amount": {"amount": 10_000}},
                {"action": "PAID", "note": None, "amount": {"amount": 10_000}},
            ],
        },
        "requiresAction": False,
        "paymentClientSecret": None,
        "errors": [],
    }
    assert await alerts_of(world, invoice_id, AlertKind.INVOICE_PAID) == 1


async def test_the_card_pays_only_what_is_still_due(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=10_000, paid=2_500)
    payload = await pay(api, world, invoice_id, localstripe.create_payment_method())
    assert payload["errors"] == []
    assert payload["invoice"]["status"] == "PAID"
    assert [i["amount"] for i in localstripe.payment_intents()] == [7_500]
    assert [p["method"] for p in payload["invoice"]["payments"]] == ["CASH", "CARD"]


async def test_a_declined_card_changes_nothing_but_the_history(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=10_000)
    payload = await pay(api, world, invoice_id, localstripe.create_payment_method(DECLINED_CARD))
    assert payload == {
        "invoice": None,
        "requiresAction": False,
        "paymentClientSecret": None,
        "errors": [
            {
                "code": "PAYMENT_DECLINED",
                "field": "paymentMethodId",
                "message": "Your card was declined.",
            }
        ],
    }
    invoice = await read_invoice(api, world, invoice_id)
    assert invoice["status"] == "UNPAID"
    assert invoice["amountDue"] == {"amount": 10_000}
    assert invoice["payments"] == []
    assert invoice["history"] == [
        {"action": "SENT", "note": None},
        {"action": "PAYMENT_FAILED", "note": "Your card was declined."},
    ]
    assert await alerts_of(world, invoice_id, AlertKind.PAYMENT_FAILED) == 1
    # And another card then pays it
    payload = await pay(api, world, invoice_id, localstripe.create_payment_method())
    assert payload["errors"] == []
    assert payload["invoice"]["status"] == "PAID"


async def test_3d_secure_returns_the_client_secret_and_the_webhook_completes(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    webhook_path = await enable_cards(api, world)
    invoice_id = await world.invoice(amount=4_200)
    card = localstripe.create_payment_method(THREE_D_SECURE_CARD)
    payload = await pay(api, world, invoice_id, card)
    (intent,) = localstripe.payment_intents()
    assert intent["status"] == "requires_action"
    assert payload["errors"] == []
    assert payload["requiresAction"] is True
    assert payload["paymentClientSecret"] == intent["client_secret"]
    assert payload["invoice"]["status"] == "UNPAID"
    # Asking again (the app was closed) gives the same secret, and no new payment
    again = await pay(api, world, invoice_id, card)
    assert again["paymentClientSecret"] == intent["client_secret"]
    assert len(localstripe.payment_intents()) == 1
    # When the customer authenticates in the app, Stripe's webhook completes the invoice
    localstripe.authenticate(intent["id"], intent["client_secret"])
    hook = await localstripe.wait_for_event("payment_intent.succeeded", intent["id"])
    response = await deliver(api, webhook_path, hook.body, hook.signature)
    assert response.status_code == 200
    invoice = await read_invoice(api, world, invoice_id)
    assert invoice["status"] == "PAID"
    assert invoice["payments"] == [
        {"amount": {"amount": 4_200}, "method": "CARD", "reference": intent["id"]}
    ]


async def test_another_card_abandons_the_one_waiting_for_authentication(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=4_200)
    first = await pay(
        api, world, invoice_id, localstripe.create_payment_method(THREE_D_SECURE_CARD)
    )
    assert first["requiresAction"] is True
    payload = await pay(api, world, invoice_id, localstripe.create_payment_method())
    assert payload["errors"] == []
    assert payload["invoice"]["status"] == "PAID"
    statuses = sorted(i["status"] for i in localstripe.payment_intents())
    assert statuses == ["canceled", "succeeded"]
    # One successful payInvoice: one history event, one alert (defect 9)
    history = [e["action"] for e in (await read_invoice(api, world, invoice_id))["history"]]
    assert history == ["SENT", "PAID"]
    assert await alerts_of(world, invoice_id, AlertKind.PAYMENT_FAILED) == 0
    assert await alerts_of(world, invoice_id, AlertKind.INVOICE_PAID) == 1


async def test_ten_concurrent_payments_charge_once(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=10_000)
    card = localstripe.create_payment_method()
    payloads = await asyncio.gather(*(pay(api, world, invoice_id, card) for _ in range(10)))
    succeeded = [p for p in payloads if not p["errors"]]
    refused = {e["code"] for p in payloads for e in p["errors"]}
    assert len(succeeded) == 1
    assert refused <= {"CONFLICT", "INVALID_STATE"}
    assert len(localstripe.payment_intents()) == 1
    invoice = await read_invoice(api, world, invoice_id)
    assert invoice["status"] == "PAID"
    assert len(invoice["payments"]) == 1


async def test_a_retried_request_returns_the_first_result(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=10_000)
    card = localstripe.create_payment_method()
    first = await pay(api, world, invoice_id, card, key="pay-once")
    second = await pay(api, world, invoice_id, card, key="pay-once")
    assert first["errors"] == []
    assert second == first
    assert len(localstripe.payment_intents()) == 1


async def test_no_processor_means_not_configured(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    invoice_id = await world.invoice(amount=10_000)
    payload = await pay(api, world, invoice_id, localstripe.create_payment_method())
    assert payload["errors"] == [
        {
            "code": "NOT_CONFIGURED",
            "field": None,
            "message": "this practice does not take card payments yet",
        }
    ]
    assert localstripe.payment_intents() == []
    async with world.db.reader() as session:
        attempts = await session.scalar(
            select(func.count())
            .select_from(PaymentAttempt)
            .where(PaymentAttempt.invoice_id == invoice_id)
        )
    assert attempts == 0


async def test_only_the_invoices_client_pays_and_only_when_payable(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    await enable_cards(api, world)
    unpaid = await world.invoice(amount=10_000)
    paid = await world.invoice(amount=10_000, paid=10_000)
    card = localstripe.create_payment_method()
    variables = {"input": {"invoiceId": encode_id("Invoice", unpaid), "paymentMethodId": card}}
    cases = [
        (world.provider, "PROVIDER", "FORBIDDEN"),
        (world.admin, "ADMIN", "FORBIDDEN"),
        (world.c2, "CLIENT", "NOT_FOUND"),
    ]
    for person, role, code in cases:
        data = await api.data(PAY, variables, await world.token(person, role))
        assert [e["code"] for e in data["payInvoice"]["errors"]] == [code]
    payload = await pay(api, world, paid, card)
    assert [e["code"] for e in payload["errors"]] == ["INVALID_STATE"]
    assert localstripe.payment_intents() == []
    assert (await read_invoice(api, world, unpaid))["status"] == "UNPAID"


async def test_a_card_number_is_refused_before_anything_happens(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=10_000)
    payload = await pay(api, world, invoice_id, "4242424242424242")
    assert payload["errors"] == [
        {
            "code": "VALIDATION",
            "field": "paymentMethodId",
            "message": "send the payment method id made by the processor's SDK, "
            "never a card number",
        }
    ]
    assert localstripe.payment_intents() == []


async def test_an_unknown_payment_method_is_a_validation_error(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=10_000)
    payload = await pay(api, world, invoice_id, "pm_doesNotExist")
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [
        ("VALIDATION", "paymentMethodId")
    ]
    invoice = await read_invoice(api, world, invoice_id)
    assert invoice["status"] == "UNPAID"
    assert invoice["history"] == [{"action": "SENT", "note": None}]
    # The refused attempt is closed: a good card goes through
    payload = await pay(api, world, invoice_id, localstripe.create_payment_method())
    assert payload["errors"] == []


async def test_the_publishable_key_is_readable_by_every_role(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    query = "{ practice { cardPayments { processorType publishableKey } } }"
    token = await world.token(world.c1, "CLIENT")
    assert (await api.data(query, token=token))["practice"]["cardPayments"] is None
    await enable_cards(api, world)
    for person, role in ((world.c1, "CLIENT"), (world.provider, "PROVIDER")):
        data = await api.data(query, token=await world.token(person, role))
        assert data["practice"]["cardPayments"] == {
            "processorType": "STRIPE",
            "publishableKey": "pk_test_carebillLocalStripe0001",
        }
