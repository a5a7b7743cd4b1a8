"""Stripe webhooks: verified on the raw body with the processor's own secret, each event handled
once, whatever the order. localstripe sends payment_intent events (once, a second later); the
events it cannot produce (duplicates, out of order, refunds) are built and signed here."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from models import WebhookEvent
from schema.node import encode_id
from tests.api import Api
from tests.factories import World
from tests.stripe_server import (
    CapturedWebhook,
    LocalStripe,
    deliver,
    enable_cards,
    event_body,
    pay_by_card,
    sign,
)

THREE_D_SECURE_CARD = "4000002500003155"

INVOICE = """
query($id: ID!) {
  invoice(id: $id) {
    status
    amountRefunded { amount }
    payments { amount { amount } method reference }
    refunds { amount { amount } reason }
    history { action note }
  }
}
"""


async def read_invoice(api: Api, world: World, invoice_id: int) -> dict[str, Any]:
    token = await world.token(world.provider, "PROVIDER")
    data = await api.data(INVOICE, {"id": encode_id("Invoice", invoice_id)}, token)
    invoice: dict[str, Any] = data["invoice"]
    return invoice


async def handled_events(world: World, event_id: str) -> int:
    async with world.db.reader() as session:
        count = await session.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.event_id == event_id)
        )
    return int(count or 0)


async def authenticated_3ds_payment(
    api: Api, world: World, localstripe: LocalStripe
) -> tuple[str, int, dict[str, Any], CapturedWebhook]:
    """A 3-D Secure payment the customer finished in their app: the invoice waits for the
    webhook localstripe sent. (webhook path, invoice id, intent, that webhook)"""
    path = await enable_cards(api, world)
    invoice_id = await world.invoice(amount=5_000)
    card = localstripe.create_payment_method(THREE_D_SECURE_CARD)
    payload = await pay_by_card(api, world, invoice_id, card)
    assert payload["requiresAction"] is True
    (intent,) = localstripe.payment_intents()
    localstripe.authenticate(intent["id"], payload["paymentClientSecret"])
    hook = await localstripe.wait_for_event("payment_intent.succeeded", intent["id"])
    return path, invoice_id, intent, hook


async def test_the_processors_event_completes_the_payment(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    path, invoice_id, intent, hook = await authenticated_3ds_payment(api, world, localstripe)
    assert (await read_invoice(api, world, invoice_id))["status"] == "UNPAID"
    response = await deliver(api, path, hook.body, hook.signature)
    assert (response.status_code, response.json()) == (200, {"status": "handled"})
    invoice = await read_invoice(api, world, invoice_id)
    assert invoice["status"] == "PAID"
    assert invoice["payments"] == [
        {"amount": {"amount": 5_000}, "method": "CARD", "reference": intent["id"]}
    ]
    assert [e["action"] for e in invoice["history"]] == ["SENT", "PAID"]


async def test_a_bad_signature_is_refused_and_changes_nothing(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    path, invoice_id, _, hook = await authenticated_3ds_payment(api, world, localstripe)
    event_id = hook.event["id"]
    tampered = hook.body.replace(b'"amount": 5000', b'"amount": 1')
    assert tampered != hook.body
    attempts = {
        "missing": (hook.body, None),
        "garbage": (hook.body, "not a signature"),
        "wrong secret": (hook.body, sign(hook.body, "whsec_someoneElsesSecret0001")),
        "stale": (hook.body, sign(hook.body, timestamp=int(time.time()) - 3600)),
        "other body": (tampered, hook.signature),
    }
    for name, (body, signature) in attempts.items():
        response = await deliver(api, path, body, signature)
        assert response.status_code == 400, name
    assert await handled_events(world, event_id) == 0
    assert (await read_invoice(api, world, invoice_id))["status"] == "UNPAID"
    # The genuine delivery still works afterwards
    response = await deliver(api, path, hook.body, hook.signature)
    assert response.status_code == 200
    assert (await read_invoice(api, world, invoice_id))["status"] == "PAID"


async def test_an_unknown_processor_is_not_found(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    body = event_body("evt_unknown", "payment_intent.succeeded", {"id": "pi_x"})
    for path in ("/webhooks/stripe/nonsense", f"/webhooks/stripe/{encode_id('Invoice', 1)}"):
        response = await deliver(api, path, body, sign(body))
        assert response.status_code == 404


async def test_another_practices_secret_does_not_verify(
    api: Api, world: World, other_world: World, localstripe: LocalStripe
) -> None:
    _, invoice_id, _, hook = await authenticated_3ds_payment(api, world, localstripe)
    other_path = await enable_cards(api, other_world, webhook_secret="whsec_otherClinicSecret0001")
    response = await deliver(api, other_path, hook.body, sign(hook.body, "whsec_wrongOne0001"))
    assert response.status_code == 400
    # Signed for the other practice's processor, it is about none of its payments
    response = await deliver(
        api, other_path, hook.body, sign(hook.body, "whsec_otherClinicSecret0001")
    )
    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    assert (await read_invoice(api, world, invoice_id))["status"] == "UNPAID"


async def test_a_duplicate_event_changes_nothing_twice(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    path, invoice_id, _, hook = await authenticated_3ds_payment(api, world, localstripe)
    first = await deliver(api, path, hook.body, hook.signature)
    second = await deliver(api, path, hook.body, sign(hook.body))
    assert first.json() == {"status": "handled"}
    assert (second.status_code, second.json()) == (200, {"status": "duplicate"})
    # The same news under another event id (a redelivery) records nothing either
    copy = event_body("evt_redelivered", "payment_intent.succeeded", hook.event["data"]["object"])
    assert (await deliver(api, path, copy, sign(copy))).status_code == 200
    invoice = await read_invoice(api, world, invoice_id)
    assert len(invoice["payments"]) == 1
    assert [e["action"] for e in invoice["history"]] == ["SENT", "PAID"]
    assert await handled_events(world, hook.event["id"]) == 1


async def test_the_webhook_of_our_own_payment_is_harmless(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    path = await enable_cards(api, world)
    invoice_id = await world.invoice(amount=5_000)
    assert (await pay_by_card(api, world, invoice_id, localstripe.create_payment_method()))[
        "errors"
    ] == []
    (intent,) = localstripe.payment_intents()
    hook = await localstripe.wait_for_event("payment_intent.succeeded", intent["id"])
    response = await deliver(api, path, hook.body, hook.signature)
    assert response.status_code == 200
    invoice = await read_invoice(api, world, invoice_id)
    assert len(invoice["payments"]) == 1
    assert [e["action"] for e in invoice["history"]] == ["SENT", "PAID"]


async def test_a_failure_reported_after_the_success_changes_nothing(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    path, invoice_id, _, hook = await authenticated_3ds_payment(api, world, localstripe)
    assert (await deliver(api, path, hook.body, hook.signature)).status_code == 200
    failed = dict(hook.event["data"]["object"])
    failed["status"] = "requires_payment_method"
    failed["last_payment_error"] = {"code": "card_declined", "message": "Your card was declined."}
    late = event_body("evt_late_failure", "payment_intent.payment_failed", failed)
    response = await deliver(api, path, late, sign(late))
    assert response.status_code == 200
    invoice = await read_invoice(api, world, invoice_id)
    assert invoice["status"] == "PAID"
    assert [e["action"] for e in invoice["history"]] == ["SENT", "PAID"]


async def test_a_failed_authentication_is_recorded_once(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    path = await enable_cards(api, world)
    invoice_id = await world.invoice(amount=5_000)
    card = localstripe.create_payment_method(THREE_D_SECURE_CARD)
    payload = await pay_by_card(api, world, invoice_id, card)
    (intent,) = localstripe.payment_intents()
    localstripe.authenticate(intent["id"], payload["paymentClientSecret"], success=False)
    obj = localstripe.get(f"/v1/payment_intents/{intent['id']}")
    failed = event_body("evt_auth_failed", "payment_intent.payment_failed", obj)
    again = event_body("evt_auth_failed_again", "payment_intent.payment_failed", obj)
    for body in (failed, again):
        assert (await deliver(api, path, body, sign(body))).status_code == 200
    invoice = await read_invoice(api, world, invoice_id)
    assert invoice["status"] == "UNPAID"
    assert invoice["history"] == [
        {"action": "SENT", "note": None},
        {
            "action": "PAYMENT_FAILED",
            "note": "The provided PaymentMethod has failed authentication.",
        },
    ]
    # The client then pays with another card
    payload = await pay_by_card(api, world, invoice_id, localstripe.create_payment_method())
    assert payload["errors"] == []
    assert payload["invoice"]["status"] == "PAID"


def charge_of(localstripe: LocalStripe, intent_id: str) -> dict[str, Any]:
    intent = localstripe.get(f"/v1/payment_intents/{intent_id}")
    latest = intent["latest_charge"]
    charge_id = latest["id"] if isinstance(latest, dict) else latest
    return localstripe.get(f"/v1/charges/{charge_id}")


async def card_paid_invoice(
    api: Api, world: World, localstripe: LocalStripe, amount: int = 10_000
) -> tuple[str, int, str]:
    path = await enable_cards(api, world)
    invoice_id = await world.invoice(amount=amount)
    payload = await pay_by_card(api, world, invoice_id, localstripe.create_payment_method())
    assert payload["errors"] == []
    (intent,) = localstripe.payment_intents()
    return path, invoice_id, str(intent["id"])


async def test_a_refund_made_at_the_processor_is_recorded_once(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    path, invoice_id, intent = await card_paid_invoice(api, world, localstripe)
    # Refunded in Stripe's dashboard; localstripe sends no charge.refunded: we build it
    refund = localstripe.post("/v1/refunds", payment_intent=intent, amount=4_000)
    body = event_body("evt_refund_1", "charge.refunded", charge_of(localstripe, intent))
    assert (await deliver(api, path, body, sign(body))).status_code == 200
    again = event_body("evt_refund_1_again", "charge.refunded", charge_of(localstripe, intent))
    assert (await deliver(api, path, again, sign(again))).status_code == 200
    assert (await deliver(api, path, body, sign(body))).json() == {"status": "duplicate"}
    invoice = await read_invoice(api, world, invoice_id)
    assert invoice["status"] == "PAID"
    assert invoice["amountRefunded"] == {"amount": 4_000}
    assert invoice["refunds"] == [
        {"amount": {"amount": 4_000}, "reason": "Refunded at the payment processor"}
    ]
    assert [e["action"] for e in invoice["history"]] == ["SENT", "PAID", "REFUNDED"]
    assert refund["status"] == "succeeded"


async def test_a_refund_event_without_its_refunds_asks_the_processor(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    # Recent Stripe API versions leave `refunds` out of the charge: the handler lists them.
    path, invoice_id, intent = await card_paid_invoice(api, world, localstripe)
    localstripe.post("/v1/refunds", payment_intent=intent)
    charge = charge_of(localstripe, intent)
    del charge["refunds"]
    body = event_body("evt_refund_bare", "charge.refunded", charge)
    assert (await deliver(api, path, body, sign(body))).status_code == 200
    invoice = await read_invoice(api, world, invoice_id)
    assert invoice["status"] == "REFUNDED"
    assert invoice["amountRefunded"] == {"amount": 10_000}


async def test_a_refund_of_our_own_is_not_recorded_again(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    path, invoice_id, intent = await card_paid_invoice(api, world, localstripe)
    variables = {
        "input": {"invoiceId": encode_id("Invoice", invoice_id), "amount": 2_000, "reason": "x"}
    }
    refund = (
        "mutation($input: RefundInvoiceInput!) { refundInvoice(input: $input) { errors { code } } }"
    )
    data = await api.data(refund, variables, await world.token(world.provider, "PROVIDER"))
    assert data["refundInvoice"]["errors"] == []
    body = event_body("evt_own_refund", "charge.refunded", charge_of(localstripe, intent))
    assert (await deliver(api, path, body, sign(body))).status_code == 200
    invoice = await read_invoice(api, world, invoice_id)
    assert invoice["amountRefunded"] == {"amount": 2_000}
    assert len(invoice["refunds"]) == 1


async def test_refund_news_before_payment_news_records_both_in_order(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    # The payment succeeded after 3-D Secure and was refunded at once; the refund event
    # arrives before the success event.
    path, invoice_id, intent, hook = await authenticated_3ds_payment(api, world, localstripe)
    localstripe.post("/v1/refunds", payment_intent=intent["id"], amount=1_000)
    body = event_body("evt_refund_first", "charge.refunded", charge_of(localstripe, intent["id"]))
    assert (await deliver(api, path, body, sign(body))).status_code == 200
    assert (await deliver(api, path, hook.body, hook.signature)).status_code == 200
    invoice = await read_invoice(api, world, invoice_id)
    assert invoice["status"] == "PAID"
    assert invoice["amountRefunded"] == {"amount": 1_000}
    assert [e["action"] for e in invoice["history"]] == ["SENT", "PAID", "REFUNDED"]


async def test_a_refund_beyond_what_was_paid_is_never_recorded(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    path, invoice_id, intent = await card_paid_invoice(api, world, localstripe, amount=3_000)
    charge = charge_of(localstripe, intent)
    charge["refunds"] = {
        "object": "list",
        "has_more": False,
        "data": [{"id": "re_tooMuch", "amount": 9_000, "status": "succeeded"}],
    }
    body = event_body("evt_refund_too_much", "charge.refunded", charge)
    assert (await deliver(api, path, body, sign(body))).status_code == 200
    invoice = await read_invoice(api, world, invoice_id)
    assert invoice["status"] == "PAID"
    assert invoice["refunds"] == []
