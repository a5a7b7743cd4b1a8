"""refundInvoice when the processor misbehaves: an answer later than our timeout, an answer
lost after the refund was made, a webhook that reports it first, a key the processor forgot.
Whatever happens, a request refunds at most once, and the books match the processor's."""

from __future__ import annotations

import asyncio
from typing import Any

from schema.node import encode_id
from settings import Settings
from tests.api import Api
from tests.books import assert_books_match
from tests.factories import World
from tests.stripe_proxy import FaultyStripe
from tests.stripe_server import (
    LocalStripe,
    deliver,
    enable_cards,
    event_body,
    pay_by_card,
    sign,
)
from tests.test_card_refunds import refunds_at_stripe
from tests.test_processor_down import app_with, invoice_state
from tests.test_webhooks import charge_of

REFUND = """
mutation($input: RefundInvoiceInput!) {
  refundInvoice(input: $input) {
    invoice { status amountRefunded { amount } refundableAmount { amount }
              refunds { amount { amount } reason } history { action } }
    errors { code message }
  }
}
"""
# Comfortably above a forward to localstripe on a busy machine, far below a held answer.
TIMEOUT = 3.0


async def refund(
    api: Api, world: World, invoice_id: int, amount: int, key: str | None
) -> dict[str, Any]:
    variables = {
        "input": {
            "invoiceId": encode_id("Invoice", invoice_id),
            "amount": amount,
            "reason": "goodwill",
            "idempotencyKey": key,
        }
    }
    data = await api.data(REFUND, variables, await world.token(world.provider, "PROVIDER"))
    payload: dict[str, Any] = data["refundInvoice"]
    return payload


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


async def test_a_timed_out_refund_recorded_by_its_webhook_is_not_paid_again_on_retry(
    api: Api,
    world: World,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    # Defect 1: Stripe makes the refund, our side times out, charge.refunded records it, the
    # user retries with the same key ("retrying is safe").
    webhook_path, invoice_id, intent = await enable_and_pay(api, world, localstripe)
    faulty_stripe.hold("/v1/refunds")
    async with app_with(
        settings, stripe_api_base=faulty_stripe.url, processor_timeout_seconds=TIMEOUT
    ) as timing_out:
        payload = await refund(timing_out, world, invoice_id, 3_000, key="refund-3000")
    assert codes(payload) == ["PROCESSOR_UNAVAILABLE"]
    assert refunds_at_stripe(localstripe, intent) == [3_000]  # it happened at Stripe
    body = event_body("evt_refunded", "charge.refunded", charge_of(localstripe, intent))
    assert (await deliver(api, webhook_path, body, sign(body))).status_code == 200
    faulty_stripe.release()
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as retrying:
        payload = await refund(retrying, world, invoice_id, 3_000, key="refund-3000")
    assert payload["errors"] == []
    assert payload["invoice"]["amountRefunded"] == {"amount": 3_000}
    assert payload["invoice"]["refundableAmount"] == {"amount": 7_000}
    # The webhook settled our own attempt: the user's reason, one event
    assert payload["invoice"]["refunds"] == [{"amount": {"amount": 3_000}, "reason": "goodwill"}]
    assert payload["invoice"]["history"] == [
        {"action": "SENT"},
        {"action": "PAID"},
        {"action": "REFUNDED"},
    ]
    assert refunds_at_stripe(localstripe, intent) == [3_000]
    await assert_books_match(localstripe, world, invoice_id)


async def test_a_lost_answer_then_another_refund_then_the_retry_refunds_each_once(
    api: Api,
    world: World,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    # Defect 1: the answer is lost after Stripe refunded (as a crash before our commit would);
    # another refund lands before the retry, so "refunded so far" has changed.
    _, invoice_id, intent = await enable_and_pay(api, world, localstripe)
    faulty_stripe.drop("/v1/refunds")
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        payload = await refund(through_proxy, world, invoice_id, 3_000, key="first")
        assert codes(payload) == ["PROCESSOR_UNAVAILABLE"]
        payload = await refund(through_proxy, world, invoice_id, 1_000, key="second")
        assert payload["errors"] == []
        payload = await refund(through_proxy, world, invoice_id, 3_000, key="first")
    assert payload["errors"] == []
    assert payload["invoice"]["amountRefunded"] == {"amount": 4_000}
    assert refunds_at_stripe(localstripe, intent) == [1_000, 3_000]
    # Each refund was made once at the processor; nothing was replayed as a new refund
    posted = [r for r in faulty_stripe.sent("/v1/refunds") if r.idempotency_key is not None]
    assert len({r.idempotency_key for r in posted if not r.replayed}) == 2
    await assert_books_match(localstripe, world, invoice_id)


async def test_a_retry_after_the_processor_forgot_its_key_finds_the_refund(
    api: Api,
    world: World,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    # Stripe keeps idempotency keys 24 hours: a retry after that must look the refund up, a
    # replay of the key would be a second refund.
    _, invoice_id, intent = await enable_and_pay(api, world, localstripe)
    faulty_stripe.drop("/v1/refunds")
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        payload = await refund(through_proxy, world, invoice_id, 3_000, key="late")
        assert codes(payload) == ["PROCESSOR_UNAVAILABLE"]
        faulty_stripe.forget_keys()
        payload = await refund(through_proxy, world, invoice_id, 3_000, key="late")
    assert payload["errors"] == []
    assert payload["invoice"]["amountRefunded"] == {"amount": 3_000}
    assert refunds_at_stripe(localstripe, intent) == [3_000]
    await assert_books_match(localstripe, world, invoice_id)


async def test_an_open_refund_reserves_its_amount(
    api: Api,
    world: World,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    # While a refund of 8000 is unresolved, another request cannot refund past the cap.
    _, invoice_id, intent = await enable_and_pay(api, world, localstripe)
    faulty_stripe.fail("/v1/refunds", status=503)
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        payload = await refund(through_proxy, world, invoice_id, 8_000, key="big")
        assert codes(payload) == ["PROCESSOR_UNAVAILABLE"]
        payload = await refund(through_proxy, world, invoice_id, 5_000, key="other")
        # the open refund was resolved first (replayed with its key), then this one refused
        assert codes(payload) == ["VALIDATION"]
        assert payload["errors"][0]["message"] == "amount 5000 is more than the 2000 refundable"
    assert refunds_at_stripe(localstripe, intent) == [8_000]
    await assert_books_match(localstripe, world, invoice_id)


async def test_no_database_lock_is_held_while_the_processor_answers(
    api: Api,
    world: World,
    other_world: World,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    # Defect 5: on SQLite a refund held the write lock while Stripe answered, on PostgreSQL
    # the invoice's row lock and a pooled connection.
    _, invoice_id, intent = await enable_and_pay(api, world, localstripe)
    other_invoice = await other_world.invoice(amount=5_000)
    faulty_stripe.hold("/v1/refunds")
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as slow:
        refunding = asyncio.create_task(refund(slow, world, invoice_id, 3_000, key="slow"))
        try:
            await faulty_stripe.wait_holding(1)
            # Another practice writes, and the same invoice is locked by a void, meanwhile
            record = await asyncio.wait_for(record_cash(api, other_world, other_invoice), 15)
            assert record["errors"] == []
            void = await asyncio.wait_for(void_invoice(api, world, invoice_id), 15)
            assert codes(void) == ["INVALID_STATE"]
            assert faulty_stripe.holding == 1
        finally:
            faulty_stripe.release()
            payload = await refunding
    assert payload["errors"] == []
    assert refunds_at_stripe(localstripe, intent) == [3_000]
    await assert_books_match(localstripe, world, invoice_id)


async def test_a_return_to_the_card_that_fails_is_sent_again_until_it_is_done(
    api: Api,
    world: World,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    # Defect 4: a card payment lands on an invoice settled in cash meanwhile; the return to
    # the card fails at Stripe. The webhook must not answer 200 "handled" with a log line.
    webhook_path = await enable_cards(api, world)
    invoice_id = await world.invoice(amount=10_000)
    card = localstripe.create_payment_method()
    faulty_stripe.drop("/v1/payment_intents")
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        payload = await pay_by_card(through_proxy, world, invoice_id, card)
        assert codes(payload) == ["PROCESSOR_UNAVAILABLE"]
        assert (await record_cash(api, world, invoice_id, 10_000))["errors"] == []
        (intent,) = localstripe.payment_intents()
        hook = await localstripe.wait_for_event("payment_intent.succeeded", intent["id"])
        faulty_stripe.fail("/v1/refunds", status=500)
        first = await deliver(through_proxy, webhook_path, hook.body, hook.signature)
        assert first.status_code == 503  # not done: Stripe sends it again
        assert refunds_at_stripe(localstripe, intent["id"]) == []
        again = await deliver(through_proxy, webhook_path, hook.body, hook.signature)
        assert again.status_code == 200
    assert refunds_at_stripe(localstripe, intent["id"]) == [10_000]
    await assert_books_match(localstripe, world, invoice_id)


async def test_a_payment_left_open_at_a_removed_processor_is_cancelled_there(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    # Defect 2: a payment waits for 3-D Secure; the processor is removed and configured again;
    # the client pays with another card. The first one was only marked declined locally, left
    # open at Stripe, and could still succeed: two charges, one recorded.
    old_path = await enable_cards(api, world)
    invoice_id = await world.invoice(amount=4_200)
    three_d_secure = localstripe.create_payment_method("4000002500003155")
    first = await pay_by_card(api, world, invoice_id, three_d_secure)
    assert first["requiresAction"] is True
    await remove_processor(api, world, old_path)
    new_path = await enable_cards(api, world)
    assert new_path != old_path
    payload = await pay_by_card(api, world, invoice_id, localstripe.create_payment_method())
    assert payload["errors"] == []
    assert payload["invoice"]["status"] == "PAID"
    statuses = sorted(i["status"] for i in localstripe.payment_intents())
    assert statuses == ["canceled", "succeeded"]
    # The old configuration's webhook path still answers (its events are still verified)
    body = event_body("evt_old_path", "payment_intent.canceled", {"id": "pi_x"})
    assert (await deliver(api, old_path, body, sign(body))).status_code == 200
    await assert_books_match(localstripe, world, invoice_id)


# --- helpers ------------------------------------------------------------------------------------


async def enable_and_pay(api: Api, world: World, localstripe: LocalStripe) -> tuple[str, int, str]:
    """A practice taking cards and an invoice of 10000 paid by card: (webhook path, id, intent)."""
    path = await enable_cards(api, world)
    invoice_id = await world.invoice(amount=10_000)
    payload = await pay_by_card(api, world, invoice_id, localstripe.create_payment_method())
    assert payload["errors"] == [], payload
    (intent,) = localstripe.payment_intents()
    return path, invoice_id, str(intent["id"])


RECORD = """
mutation($input: RecordPaymentInput!) {
  recordPayment(input: $input) { invoice { status } errors { code message } }
}
"""
VOID = """
mutation($input: InvoiceActionInput!) {
  voidInvoice(input: $input) { invoice { status } errors { code message } }
}
"""


async def record_cash(
    api: Api, world: World, invoice_id: int, amount: int = 1_000
) -> dict[str, Any]:
    variables = {
        "input": {"invoiceId": encode_id("Invoice", invoice_id), "amount": amount, "method": "CASH"}
    }
    data = await api.data(RECORD, variables, await world.token(world.admin, "ADMIN"))
    payload: dict[str, Any] = data["recordPayment"]
    return payload


async def void_invoice(api: Api, world: World, invoice_id: int) -> dict[str, Any]:
    variables = {"input": {"invoiceId": encode_id("Invoice", invoice_id)}}
    data = await api.data(VOID, variables, await world.token(world.admin, "ADMIN"))
    payload: dict[str, Any] = data["voidInvoice"]
    return payload


REMOVE_PROCESSOR = """
mutation($id: ID!) { removePaymentProcessor(id: $id) { errors { code message } } }
"""


async def remove_processor(api: Api, world: World, webhook_path: str) -> None:
    processor_id = webhook_path.rsplit("/", 1)[1]
    token = await world.token(world.admin, "ADMIN")
    data = await api.data(REMOVE_PROCESSOR, {"id": processor_id}, token)
    assert data["removePaymentProcessor"]["errors"] == []


async def test_a_refund_that_fails_later_is_taken_back_once(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    # The processor accepted the refund, then the card's bank refused it (refund status
    # `failed`, charge.refund.updated): the money is still the practice's.
    webhook_path, invoice_id, intent = await enable_and_pay(api, world, localstripe)
    payload = await refund(api, world, invoice_id, 10_000, key="whole")
    assert payload["invoice"]["status"] == "REFUNDED"
    (made,) = localstripe.get("/v1/refunds", payment_intent=intent)["data"]
    failed = {**made, "status": "failed", "failure_reason": "expired_or_canceled_card"}
    for event_id in ("evt_refund_failed", "evt_refund_failed_again"):
        body = event_body(event_id, "charge.refund.updated", failed)
        assert (await deliver(api, webhook_path, body, sign(body))).status_code == 200
    state = await invoice_state(api, world, invoice_id)
    assert state["status"] == "PAID"
    assert [e["action"] for e in state["history"]] == ["SENT", "PAID", "REFUNDED", "REFUND_FAILED"]
    payload = await refund(api, world, invoice_id, 4_000, key="after")
    assert payload["errors"] == []
    assert payload["invoice"]["amountRefunded"] == {"amount": 4_000}


async def test_a_refund_left_open_that_failed_is_released(
    api: Api,
    world: World,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    webhook_path, invoice_id, intent = await enable_and_pay(api, world, localstripe)
    faulty_stripe.drop("/v1/refunds")
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        payload = await refund(through_proxy, world, invoice_id, 10_000, key="open")
    assert codes(payload) == ["PROCESSOR_UNAVAILABLE"]
    (made,) = localstripe.get("/v1/refunds", payment_intent=intent)["data"]
    body = event_body("evt_open_failed", "refund.failed", {**made, "status": "failed"})
    assert (await deliver(api, webhook_path, body, sign(body))).status_code == 200
    # The retry with its key answers the failure; nothing is recorded, nothing reserved
    payload = await refund(api, world, invoice_id, 10_000, key="open")
    assert codes(payload) == ["PAYMENT_DECLINED"]
    state = await invoice_state(api, world, invoice_id)
    assert state["status"] == "PAID"
    assert [e["action"] for e in state["history"]] == ["SENT", "PAID"]
