"""A card charge the invoice could not take (it was settled otherwise meanwhile) goes back to the
card as a durable return: committed before the processor hears of it, with its own key, and
settled by the answer, the webhook's next delivery or reconciliation — whatever the processor
does meanwhile, exactly one return is made, and the books match the processor's."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

from sqlalchemy import select

from models import RefundAttempt
from models.refunding import RefundKind, RefundStatus
from resolvers.payments.lookups import Report
from resolvers.payments.reconciliation import reconcile
from schema.services import Services
from settings import Settings
from tests.api import Api
from tests.books import assert_books_match
from tests.factories import World
from tests.stripe_proxy import FaultyStripe
from tests.stripe_server import (
    CapturedWebhook,
    LocalStripe,
    deliver,
    enable_cards,
    event_body,
    pay_by_card,
    sign,
)
from tests.test_card_refunds import refunds_at_stripe
from tests.test_processor_down import app_with, invoice_state
from tests.test_refund_faults import TIMEOUT, codes, record_cash
from tests.test_webhooks import charge_of


@contextlib.asynccontextmanager
async def reconciler(services: Services, stripe_api_base: str) -> AsyncIterator[Services]:
    """Reconciliation's services, talking to the processor at `stripe_api_base`."""
    settings = dataclasses.replace(
        services.settings, stripe_api_base=stripe_api_base, processor_timeout_seconds=TIMEOUT
    )
    built = Services.build(settings, services.db)
    try:
        yield built
    finally:
        await built.processors.aclose()


async def returns_of(world: World, invoice_id: int) -> list[tuple[RefundStatus, int]]:
    async with world.db.reader() as session:
        rows = await session.execute(
            select(RefundAttempt.status, RefundAttempt.amount)
            .where(RefundAttempt.invoice_id == invoice_id, RefundAttempt.kind == RefundKind.RETURN)
            .order_by(RefundAttempt.id)
        )
        return [(status, int(amount)) for status, amount in rows.all()]


async def settled_in_cash_while_charged(
    api: Api, world: World, settings: Settings, localstripe: LocalStripe, proxy: FaultyStripe
) -> tuple[str, int, str, CapturedWebhook]:
    """An invoice of 10000 whose card payment's answer was lost, then paid in cash: the charge
    is at the processor, and its webhook is ready. (webhook path, invoice id, intent, webhook)"""
    path = await enable_cards(api, world)
    invoice_id = await world.invoice(amount=10_000)
    proxy.drop("/v1/payment_intents")
    async with app_with(settings, stripe_api_base=proxy.url) as through_proxy:
        payload = await pay_by_card(
            through_proxy, world, invoice_id, localstripe.create_payment_method()
        )
    assert codes(payload) == ["PROCESSOR_UNAVAILABLE"]
    assert (await record_cash(api, world, invoice_id, 10_000))["errors"] == []
    (intent,) = localstripe.payment_intents()
    hook = await localstripe.wait_for_event("payment_intent.succeeded", intent["id"])
    return path, invoice_id, str(intent["id"]), hook


def refund_posts(proxy: FaultyStripe) -> set[str | None]:
    """The idempotency keys of every refund request that reached the proxy."""
    return {r.idempotency_key for r in proxy.sent("/v1/refunds") if r.method == "POST"}


def settled_lines(report: Report) -> list[str]:
    return [line for line in report.settled if "return attempt" in line]


async def test_a_return_refused_twice_by_5xx_is_made_once_by_reconciliation(
    api: Api,
    world: World,
    services: Services,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    path, invoice_id, intent, hook = await settled_in_cash_while_charged(
        api, world, settings, localstripe, faulty_stripe
    )
    faulty_stripe.fail("/v1/refunds", status=503, times=2)
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        first = await deliver(through_proxy, path, hook.body, hook.signature)
    assert first.status_code == 503  # not done yet: the processor sends it again
    # The return is a row of its own, kept pending (committed before the call)
    assert await returns_of(world, invoice_id) == [(RefundStatus.UNKNOWN, 10_000)]
    async with reconciler(services, faulty_stripe.url) as through_proxy:
        report = await reconcile(through_proxy, practice_id=world.practice_id)
        assert settled_lines(report) == []
        assert any("stays pending" in line for line in report.needs_attention)
        assert refunds_at_stripe(localstripe, intent) == []
        report = await reconcile(through_proxy, practice_id=world.practice_id)
    assert len(settled_lines(report)) == 1
    assert await returns_of(world, invoice_id) == [(RefundStatus.SUCCEEDED, 10_000)]
    # The processor's next delivery finds it done: nothing more is returned
    assert (await deliver(api, path, hook.body, hook.signature)).status_code == 200
    assert refunds_at_stripe(localstripe, intent) == [10_000]
    assert len(refund_posts(faulty_stripe)) == 1  # one key for every try
    assert (await invoice_state(api, world, invoice_id))["payments"] == [
        {"method": "CASH", "reference": None}
    ]
    await assert_books_match(localstripe, world, invoice_id)


async def test_a_return_whose_answer_was_lost_is_found_not_made_again(
    api: Api,
    world: World,
    services: Services,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    path, invoice_id, intent, hook = await settled_in_cash_while_charged(
        api, world, settings, localstripe, faulty_stripe
    )
    faulty_stripe.drop("/v1/refunds")
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        first = await deliver(through_proxy, path, hook.body, hook.signature)
    assert first.status_code == 503
    assert refunds_at_stripe(localstripe, intent) == [10_000]  # it happened at the processor
    assert await returns_of(world, invoice_id) == [(RefundStatus.UNKNOWN, 10_000)]
    faulty_stripe.forget_keys()  # a replay of its key would now return the money twice
    async with reconciler(services, faulty_stripe.url) as through_proxy:
        report = await reconcile(through_proxy, practice_id=world.practice_id)
    assert len(settled_lines(report)) == 1
    assert report.needs_attention == []
    assert await returns_of(world, invoice_id) == [(RefundStatus.SUCCEEDED, 10_000)]
    assert (await deliver(api, path, hook.body, hook.signature)).status_code == 200
    assert refunds_at_stripe(localstripe, intent) == [10_000]
    await assert_books_match(localstripe, world, invoice_id)


async def test_a_return_answered_after_our_timeout_is_settled_by_the_next_delivery(
    api: Api,
    world: World,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    path, invoice_id, intent, hook = await settled_in_cash_while_charged(
        api, world, settings, localstripe, faulty_stripe
    )
    faulty_stripe.hold("/v1/refunds")
    async with app_with(
        settings, stripe_api_base=faulty_stripe.url, processor_timeout_seconds=TIMEOUT
    ) as timing_out:
        first = await deliver(timing_out, path, hook.body, hook.signature)
        assert first.status_code == 503
        faulty_stripe.release()
        again = await deliver(timing_out, path, hook.body, hook.signature)
    assert again.status_code == 200
    assert await returns_of(world, invoice_id) == [(RefundStatus.SUCCEEDED, 10_000)]
    assert refunds_at_stripe(localstripe, intent) == [10_000]
    assert len(refund_posts(faulty_stripe)) == 1
    await assert_books_match(localstripe, world, invoice_id)


async def test_the_return_is_committed_before_the_processor_hears_of_it(
    api: Api,
    world: World,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    path, invoice_id, intent, hook = await settled_in_cash_while_charged(
        api, world, settings, localstripe, faulty_stripe
    )
    faulty_stripe.hold("/v1/refunds")
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        delivering = asyncio.create_task(deliver(through_proxy, path, hook.body, hook.signature))
        try:
            await faulty_stripe.wait_holding(1)
            # While the processor holds its answer, the return is on record, claimed
            assert await returns_of(world, invoice_id) == [(RefundStatus.PROCESSING, 10_000)]
        finally:
            faulty_stripe.release()
            response = await delivering
    assert response.status_code == 200
    assert await returns_of(world, invoice_id) == [(RefundStatus.SUCCEEDED, 10_000)]
    assert refunds_at_stripe(localstripe, intent) == [10_000]
    await assert_books_match(localstripe, world, invoice_id)


async def test_a_return_pay_invoice_could_not_make_is_made_by_reconciliation(
    api: Api,
    world: World,
    services: Services,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    # payInvoice's own answer finds the invoice settled in cash meanwhile; the return fails.
    path = await enable_cards(api, world)
    invoice_id = await world.invoice(amount=10_000)
    faulty_stripe.hold("/v1/payment_intents")
    faulty_stripe.fail("/v1/refunds", status=500)
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        paying = asyncio.create_task(
            pay_by_card(through_proxy, world, invoice_id, localstripe.create_payment_method())
        )
        try:
            await faulty_stripe.wait_holding(1)
            assert (await record_cash(api, world, invoice_id, 10_000))["errors"] == []
        finally:
            faulty_stripe.release()
            payload = await paying
    assert codes(payload) == ["CONFLICT"]
    assert "being returned to the card" in payload["errors"][0]["message"]
    (intent,) = localstripe.payment_intents()
    assert refunds_at_stripe(localstripe, intent["id"]) == []
    assert await returns_of(world, invoice_id) == [(RefundStatus.UNKNOWN, 10_000)]
    report = await reconcile(services, practice_id=world.practice_id)
    assert len(settled_lines(report)) == 1
    assert refunds_at_stripe(localstripe, intent["id"]) == [10_000]
    # Its webhook (and the charge's refund event) record nothing more
    hook = await localstripe.wait_for_event("payment_intent.succeeded", intent["id"])
    assert (await deliver(api, path, hook.body, hook.signature)).status_code == 200
    refunded = event_body("evt_returned", "charge.refunded", charge_of(localstripe, intent["id"]))
    assert (await deliver(api, path, refunded, sign(refunded))).status_code == 200
    assert await returns_of(world, invoice_id) == [(RefundStatus.SUCCEEDED, 10_000)]
    assert refunds_at_stripe(localstripe, intent["id"]) == [10_000]
    await assert_books_match(localstripe, world, invoice_id)


async def test_a_return_left_open_is_settled_by_the_refund_event(
    api: Api,
    world: World,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    path, invoice_id, intent, hook = await settled_in_cash_while_charged(
        api, world, settings, localstripe, faulty_stripe
    )
    faulty_stripe.drop("/v1/refunds")
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        assert (await deliver(through_proxy, path, hook.body, hook.signature)).status_code == 503
    refunded = event_body("evt_return_made", "charge.refunded", charge_of(localstripe, intent))
    assert (await deliver(api, path, refunded, sign(refunded))).status_code == 200
    assert await returns_of(world, invoice_id) == [(RefundStatus.SUCCEEDED, 10_000)]
    assert (await invoice_state(api, world, invoice_id))["history"] == [
        {"action": "SENT"},
        {"action": "PAID"},
    ]
    assert refunds_at_stripe(localstripe, intent) == [10_000]
    await assert_books_match(localstripe, world, invoice_id)
