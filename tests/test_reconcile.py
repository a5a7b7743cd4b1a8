"""Reconciliation: unresolved attempts are looked up at the processor and settled, what the
processor holds and CareBill does not is reported, and nothing is charged or refunded anew."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from models import Alert, PaymentAttempt, RefundAttempt
from models.processing import AttemptStatus
from models.refunding import RefundStatus
from resolvers.payments.reconciliation import reconcile, sole_runner
from schema.services import Services
from settings import Settings
from tests.api import Api
from tests.books import assert_books_match
from tests.conftest import TEST_SECRET_KEY
from tests.factories import World
from tests.stripe_proxy import FaultyStripe
from tests.stripe_server import LocalStripe, deliver, enable_cards, event_body, pay_by_card, sign
from tests.test_card_refunds import refunds_at_stripe
from tests.test_cli import carebill
from tests.test_processor_down import app_with, invoice_state
from tests.test_refund_faults import codes, enable_and_pay, record_cash, refund
from tests.test_webhooks import charge_of

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


async def test_a_refund_at_the_processor_that_we_do_not_hold_is_recorded_once(
    api: Api, world: World, services: Services, localstripe: LocalStripe
) -> None:
    # Refunded in the processor's dashboard; its webhook was lost (or has not come yet).
    webhook_path, invoice_id, intent = await enable_and_pay(api, world, localstripe)
    made = localstripe.post("/v1/refunds", payment_intent=intent, amount=1_500)
    report = await reconcile(services, practice_id=world.practice_id)
    assert report.needs_attention == []
    (line,) = report.settled
    assert made["id"] in line
    assert "1500" in line
    state = await invoice_state(api, world, invoice_id)
    assert [e["action"] for e in state["history"]] == ["SENT", "PAID", "REFUNDED"]
    assert await alert_kinds(world, invoice_id) == [
        "INVOICE_SENT",
        "INVOICE_PAID",
        "INVOICE_REFUNDED",
    ]
    # Its webhook, arriving later, and the next run record nothing more
    body = event_body("evt_late_refund", "charge.refunded", charge_of(localstripe, intent))
    assert (await deliver(api, webhook_path, body, sign(body))).status_code == 200
    assert (await reconcile(services, practice_id=world.practice_id)).lines() == []
    state = await invoice_state(api, world, invoice_id)
    assert [e["action"] for e in state["history"]] == ["SENT", "PAID", "REFUNDED"]
    await assert_books_match(localstripe, world, invoice_id)


async def test_a_refund_at_the_processor_beyond_our_cap_needs_a_person(
    api: Api, world: World, services: Services, localstripe: LocalStripe
) -> None:
    _, invoice_id, intent = await enable_and_pay(api, world, localstripe)
    assert (await refund(api, world, invoice_id, 8_000, key="most"))["errors"] == []
    made = localstripe.post("/v1/refunds", payment_intent=intent, amount=5_000)
    report = await reconcile(services, practice_id=world.practice_id)
    assert report.settled == []
    (line,) = report.needs_attention
    assert made["id"] in line
    assert "5000" in line
    assert (await invoice_state(api, world, invoice_id))["status"] == "PAID"


async def test_a_payment_whose_answer_was_lost_before_its_id_is_found_and_recorded(
    api: Api,
    world: World,
    services: Services,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    # The charge was made; our answer (and with it the PaymentIntent's id) was lost, and so
    # was its webhook.
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=4_200)
    faulty_stripe.drop("/v1/payment_intents")
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        payload = await pay_by_card(
            through_proxy, world, invoice_id, localstripe.create_payment_method()
        )
    assert codes(payload) == ["PROCESSOR_UNAVAILABLE"]
    assert await payment_attempts(world, invoice_id) == [(AttemptStatus.UNKNOWN, None)]
    report = await reconcile(services, practice_id=world.practice_id)
    assert report.needs_attention == []
    assert len(report.settled) == 1
    (intent,) = localstripe.payment_intents()
    assert await payment_attempts(world, invoice_id) == [(AttemptStatus.SUCCEEDED, intent["id"])]
    assert (await invoice_state(api, world, invoice_id))["status"] == "PAID"
    await assert_books_match(localstripe, world, invoice_id)


async def test_a_payment_that_never_reached_the_processor_is_closed(
    api: Api,
    world: World,
    services: Services,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=4_200)
    faulty_stripe.fail("/v1/payment_intents", status=503)
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        payload = await pay_by_card(
            through_proxy, world, invoice_id, localstripe.create_payment_method()
        )
    assert codes(payload) == ["PROCESSOR_UNAVAILABLE"]
    report = await reconcile(services, practice_id=world.practice_id)
    assert report.needs_attention == []
    (line,) = report.settled
    assert "never reached the processor" in line
    assert await payment_attempts(world, invoice_id) == [(AttemptStatus.DECLINED, None)]
    state = await invoice_state(api, world, invoice_id)
    assert [e["action"] for e in state["history"]] == ["SENT"]  # nothing happened to it
    # The client pays again: one charge
    payload = await pay_by_card(api, world, invoice_id, localstripe.create_payment_method())
    assert payload["errors"] == []
    assert len(localstripe.payment_intents()) == 1
    await assert_books_match(localstripe, world, invoice_id)


async def test_a_lost_payment_of_an_invoice_settled_otherwise_is_found_and_returned(
    api: Api,
    world: World,
    services: Services,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
) -> None:
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=4_200)
    faulty_stripe.drop("/v1/payment_intents")
    async with app_with(settings, stripe_api_base=faulty_stripe.url) as through_proxy:
        payload = await pay_by_card(
            through_proxy, world, invoice_id, localstripe.create_payment_method()
        )
    assert codes(payload) == ["PROCESSOR_UNAVAILABLE"]
    assert (await record_cash(api, world, invoice_id, 4_200))["errors"] == []
    report = await reconcile(services, practice_id=world.practice_id)
    assert report.needs_attention == []
    (intent,) = localstripe.payment_intents()
    assert refunds_at_stripe(localstripe, intent["id"]) == [4_200]
    assert (await reconcile(services, practice_id=world.practice_id)).lines() == []
    assert refunds_at_stripe(localstripe, intent["id"]) == [4_200]
    await assert_books_match(localstripe, world, invoice_id)


async def payment_attempts(world: World, invoice_id: int) -> list[tuple[AttemptStatus, str | None]]:
    async with world.db.reader() as session:
        rows = await session.execute(
            select(PaymentAttempt.status, PaymentAttempt.processor_reference)
            .where(PaymentAttempt.invoice_id == invoice_id)
            .order_by(PaymentAttempt.attempt)
        )
        return [(status, reference) for status, reference in rows.all()]


async def alert_kinds(world: World, invoice_id: int) -> list[str]:
    async with world.db.reader() as session:
        rows = await session.scalars(
            select(Alert.kind).where(Alert.invoice_id == invoice_id).order_by(Alert.id)
        )
        return [str(kind) for kind in rows]


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
