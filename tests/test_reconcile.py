"""Reconciliation: unresolved attempts are looked up at the processor and settled, what the
processor holds and CareBill does not is reported, and nothing is charged or refunded anew."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from models import RefundAttempt
from models.refunding import RefundStatus
from resolvers.payments.reconciliation import reconcile, sole_runner
from schema.services import Services
from settings import Settings
from tests.api import Api
from tests.books import assert_books_match
from tests.conftest import TEST_SECRET_KEY
from tests.factories import World
from tests.stripe_proxy import FaultyStripe
from tests.stripe_server import LocalStripe, enable_cards, pay_by_card
from tests.test_card_refunds import refunds_at_stripe
from tests.test_cli import carebill
from tests.test_processor_down import app_with, invoice_state
from tests.test_refund_faults import codes, enable_and_pay, refund

THREE_D_SECURE_CARD = "4000002500003155"


async def refund_statuses(world: World, invoice_id: int) -> list[RefundStatus]:
    async with world.db.reader() as session:
        rows = await session.scalars(
            select(RefundAttempt.status)
            .where(RefundAttempt.invoice_id == invoice_id)
            .order_by(RefundAttempt.id)
        )
        return list(rows)


async def test_a_refund_whose_answer_was_lost_is_settled_from_the_processor(
    api: Api,
    world: World,
    services: Services,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    _, invoice_id, intent = await enable_and_pay(api, world, localstripe)
    faulty_stripe.drop("/v1/refunds")
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        payload = await refund(through_proxy, world, invoice_id, 3_000, key="lost")
    assert codes(payload) == ["PROCESSOR_UNAVAILABLE"]
    assert await refund_statuses(world, invoice_id) == [RefundStatus.UNKNOWN]
    report = await reconcile(services, practice_id=world.practice_id)
    assert [line.split(":")[0] for line in report.lines()] == ["settled"]
    assert await refund_statuses(world, invoice_id) == [RefundStatus.SUCCEEDED]
    # The retry with the same key finds it done; nothing more at the processor
    payload = await refund(api, world, invoice_id, 3_000, key="lost")
    assert payload["errors"] == []
    assert payload["invoice"]["amountRefunded"] == {"amount": 3_000}
    assert refunds_at_stripe(localstripe, intent) == [3_000]
    await assert_books_match(localstripe, world, invoice_id)


async def test_a_refund_that_never_reached_the_processor_is_released(
    api: Api,
    world: World,
    services: Services,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    _, invoice_id, intent = await enable_and_pay(api, world, localstripe)
    faulty_stripe.fail("/v1/refunds", status=503)
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        payload = await refund(through_proxy, world, invoice_id, 8_000, key="never")
    assert codes(payload) == ["PROCESSOR_UNAVAILABLE"]
    report = await reconcile(services, practice_id=world.practice_id)
    assert report.needs_attention == []
    assert len(report.settled) == 1
    assert "never reached the processor" in report.settled[0]
    assert await refund_statuses(world, invoice_id) == [RefundStatus.FAILED]
    # Its reservation is released: the whole amount is refundable again, nothing was refunded
    payload = await refund(api, world, invoice_id, 10_000, key="again")
    assert payload["errors"] == []
    assert refunds_at_stripe(localstripe, intent) == [10_000]
    await assert_books_match(localstripe, world, invoice_id)


async def test_a_payment_authenticated_without_its_webhook_is_recorded(
    api: Api, world: World, services: Services, localstripe: LocalStripe
) -> None:
    # 3-D Secure finished in the client's app; the webhook never came.
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=4_200)
    card = localstripe.create_payment_method(THREE_D_SECURE_CARD)
    payload = await pay_by_card(api, world, invoice_id, card)
    assert payload["requiresAction"] is True
    (intent,) = localstripe.payment_intents()
    localstripe.authenticate(intent["id"], payload["paymentClientSecret"])
    report = await reconcile(services, practice_id=world.practice_id)
    assert report.needs_attention == []
    assert (await invoice_state(api, world, invoice_id))["status"] == "PAID"
    await assert_books_match(localstripe, world, invoice_id)
    # A second run finds nothing left
    assert (await reconcile(services, practice_id=world.practice_id)).lines() == []


async def test_a_refund_at_the_processor_that_we_do_not_hold_needs_a_person(
    api: Api, world: World, services: Services, localstripe: LocalStripe
) -> None:
    _, _, intent = await enable_and_pay(api, world, localstripe)
    made = localstripe.post("/v1/refunds", payment_intent=intent, amount=1_500)
    report = await reconcile(services, practice_id=world.practice_id)
    assert report.settled == []
    (line,) = report.needs_attention
    assert made["id"] in line
    assert "1500" in line


async def test_the_command_reconciles_one_practice(
    api: Api,
    world: World,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
    tmp_path: Path,
) -> None:
    _, invoice_id, intent = await enable_and_pay(api, world, localstripe)
    faulty_stripe.drop("/v1/refunds")
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        payload = await refund(through_proxy, world, invoice_id, 2_000, key="cli")
    assert codes(payload) == ["PROCESSOR_UNAVAILABLE"]
    run = await carebill(
        settings.database_url,
        "reconcile",
        "--practice",
        str(world.practice_id),
        "--since",
        "2020-01-01",
        cwd=tmp_path,
        CAREBILL_SECRET_KEY=TEST_SECRET_KEY,
        CAREBILL_STRIPE_API_BASE=localstripe.url,
    )
    assert run.code == 0, run.err
    assert run.out.startswith("settled: refund attempt")
    state = await invoice_state(api, world, invoice_id)
    assert state["status"] == "PAID"
    assert refunds_at_stripe(localstripe, intent) == [2_000]
    await assert_books_match(localstripe, world, invoice_id)


async def test_one_runner_at_a_time(services: Services) -> None:
    async with sole_runner(services) as first:
        assert first is True
        # Another process would be refused while this one runs (a second connection here)
        other = Services.build(services.settings)
        try:
            async with sole_runner(other) as second:
                assert second is False
        finally:
            await other.db.dispose()
    async with sole_runner(services) as again:
        assert again is True
