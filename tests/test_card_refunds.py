"""refundInvoice on card payments: the money goes back through the processor, recorded only when
it accepted, and our own rules cap what may be refunded (localstripe caps nothing)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from models import Membership, Payment, Refund
from models.enums import Role
from schema.node import encode_id
from tests.api import Api
from tests.factories import World
from tests.stripe_server import LocalStripe, enable_cards, pay_by_card

REFUND = """
mutation($input: RefundInvoiceInput!) {
  refundInvoice(input: $input) {
    invoice {
      status
      amountPaid { amount }
      amountRefunded { amount }
      refundableAmount { amount }
      refunds { amount { amount } reason }
      history { action amount { amount } }
    }
    errors { code field message }
  }
}
"""


async def paid_by_card(
    api: Api, world: World, localstripe: LocalStripe, amount: int, cash: int = 0
) -> tuple[int, str]:
    """An invoice of `amount`, `cash` of it paid in cash and the rest by card: (id, intent)."""
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=amount, paid=cash)
    payload = await pay_by_card(api, world, invoice_id, localstripe.create_payment_method())
    assert payload["errors"] == [], payload
    (intent,) = localstripe.payment_intents()
    return invoice_id, str(intent["id"])


async def refund(
    api: Api,
    world: World,
    invoice_id: int,
    amount: int | None,
    role: str = "PROVIDER",
    key: str | None = None,
) -> dict[str, Any]:
    person = world.provider if role == "PROVIDER" else world.admin
    variables = {
        "input": {
            "invoiceId": encode_id("Invoice", invoice_id),
            "amount": amount,
            "reason": "goodwill",
            "idempotencyKey": key,
        }
    }
    data = await api.data(REFUND, variables, await world.token(person, role))
    payload: dict[str, Any] = data["refundInvoice"]
    return payload


def refunds_at_stripe(localstripe: LocalStripe, intent: str) -> list[int]:
    listed = localstripe.get("/v1/refunds", payment_intent=intent, limit=100)["data"]
    return sorted(int(r["amount"]) for r in listed)


async def recorded_references(world: World, invoice_id: int) -> list[str | None]:
    async with world.db.reader() as session:
        rows = await session.scalars(
            select(Refund.processor_reference)
            .where(Refund.invoice_id == invoice_id)
            .order_by(Refund.id)
        )
        return list(rows)


async def test_a_partial_refund_goes_back_to_the_card(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    invoice_id, intent = await paid_by_card(api, world, localstripe, 10_000)
    payload = await refund(api, world, invoice_id, 3_000)
    assert payload == {
        "invoice": {
            "status": "PAID",
            "amountPaid": {"amount": 10_000},
            "amountRefunded": {"amount": 3_000},
            "refundableAmount": {"amount": 7_000},
            "refunds": [{"amount": {"amount": 3_000}, "reason": "goodwill"}],
            "history": [
                {"action": "SENT", "amount": {"amount": 10_000}},
                {"action": "PAID", "amount": {"amount": 10_000}},
                {"action": "REFUNDED", "amount": {"amount": 3_000}},
            ],
        },
        "errors": [],
    }
    assert refunds_at_stripe(localstripe, intent) == [3_000]
    (reference,) = await recorded_references(world, invoice_id)
    assert reference is not None
    assert reference.startswith("re_")


async def test_a_full_refund_refunds_what_is_left_and_closes_the_invoice(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    invoice_id, intent = await paid_by_card(api, world, localstripe, 10_000)
    assert (await refund(api, world, invoice_id, 2_500))["errors"] == []
    payload = await refund(api, world, invoice_id, None, role="ADMIN")
    assert payload["errors"] == []
    assert payload["invoice"]["status"] == "REFUNDED"
    assert payload["invoice"]["amountRefunded"] == {"amount": 10_000}
    assert refunds_at_stripe(localstripe, intent) == [2_500, 7_500]


async def test_our_rules_cap_the_refund_before_the_processor_hears_of_it(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    invoice_id, intent = await paid_by_card(api, world, localstripe, 10_000)
    assert (await refund(api, world, invoice_id, 6_000))["errors"] == []
    payload = await refund(api, world, invoice_id, 5_000)
    assert payload == {
        "invoice": None,
        "errors": [
            {
                "code": "VALIDATION",
                "field": "amount",
                "message": "amount 5000 is more than the 4000 refundable",
            }
        ],
    }
    # localstripe would have refunded it: the cap is ours
    assert refunds_at_stripe(localstripe, intent) == [6_000]


async def test_cash_portions_are_recorded_and_only_the_card_goes_to_the_processor(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    invoice_id, intent = await paid_by_card(api, world, localstripe, 10_000, cash=4_000)
    payload = await refund(api, world, invoice_id, None)
    assert payload["errors"] == []
    assert payload["invoice"]["status"] == "REFUNDED"
    # Newest payment first: the card's 6000 at Stripe, then the cash 4000 by hand
    assert refunds_at_stripe(localstripe, intent) == [6_000]
    references = await recorded_references(world, invoice_id)
    assert len(references) == 2
    assert references[0] is not None
    assert references[0].startswith("re_")
    assert references[1] is None


async def test_a_refund_the_processor_could_not_take_records_nothing(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    invoice_id, intent = await paid_by_card(api, world, localstripe, 10_000)
    localstripe.stop()
    try:
        payload = await refund(api, world, invoice_id, 1_000, key="refund-1")
    finally:
        localstripe.resume()
    assert [e["code"] for e in payload["errors"]] == ["PROCESSOR_UNAVAILABLE"]
    assert await recorded_references(world, invoice_id) == []
    # Once it is back, the same request (same key) goes through, once
    payload = await refund(api, world, invoice_id, 1_000, key="refund-1")
    assert payload["errors"] == []
    assert refunds_at_stripe(localstripe, intent) == [1_000]
    assert payload["invoice"]["amountRefunded"] == {"amount": 1_000}


async def test_a_client_cannot_refund(api: Api, world: World, localstripe: LocalStripe) -> None:
    invoice_id, intent = await paid_by_card(api, world, localstripe, 10_000)
    variables = {
        "input": {"invoiceId": encode_id("Invoice", invoice_id), "amount": 100, "reason": "mine"}
    }
    data = await api.data(REFUND, variables, await world.token(world.c1, "CLIENT"))
    assert [e["code"] for e in data["refundInvoice"]["errors"]] == ["FORBIDDEN"]
    assert refunds_at_stripe(localstripe, intent) == []


REMOVE_PROCESSOR = """
mutation($id: ID!) { removePaymentProcessor(id: $id) { errors { code message } } }
"""


async def card_processor_of(world: World, invoice_id: int) -> int:
    async with world.db.reader() as session:
        processor_id = await session.scalar(
            select(Payment.processor_id).where(
                Payment.invoice_id == invoice_id, Payment.processor_id.is_not(None)
            )
        )
    assert processor_id is not None
    return processor_id


async def test_after_the_processor_is_removed_the_card_part_still_goes_back_to_the_card(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    # Defect 6: refunds answered NOT_CONFIGURED while canRefund said true. The removed
    # configuration is kept, credentials and all, for what was paid through it.
    invoice_id, intent = await paid_by_card(api, world, localstripe, 10_000, cash=4_000)
    processor_id = await card_processor_of(world, invoice_id)
    data = await api.data(
        REMOVE_PROCESSOR,
        {"id": encode_id("PaymentProcessor", processor_id)},
        await world.token(world.admin, "ADMIN"),
    )
    assert data["removePaymentProcessor"]["errors"] == []
    payload = await refund(api, world, invoice_id, 3_000)
    assert payload["errors"] == []
    assert payload["invoice"]["amountRefunded"] == {"amount": 3_000}
    assert refunds_at_stripe(localstripe, intent) == [3_000]


async def test_a_card_part_that_cannot_go_back_leaves_the_cash_part_refundable(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    # Defect 6: the card payment's processor is gone altogether (removed before CareBill kept
    # removed processors): refunds took the card first and refused even the cash part.
    invoice_id, intent = await paid_by_card(api, world, localstripe, 10_000, cash=4_000)
    async with world.db.writer() as session, session.begin():
        await session.execute(
            update(Payment).where(Payment.invoice_id == invoice_id).values(processor_id=None)
        )
    payload = await refund(api, world, invoice_id, 3_000)
    assert payload["errors"] == []
    assert payload["invoice"]["amountRefunded"] == {"amount": 3_000}
    payload = await refund(api, world, invoice_id, 2_000)
    assert [e["code"] for e in payload["errors"]] == ["NOT_CONFIGURED"]
    assert refunds_at_stripe(localstripe, intent) == []
    assert await recorded_references(world, invoice_id) == [None]


async def test_a_refund_key_belongs_to_its_practice(
    api: Api, world: World, other_world: World, localstripe: LocalStripe
) -> None:
    """The same admin refunding with the same key in a second practice makes a second,
    independent refund there (as sendInvoice's keys do), not a CONFLICT."""
    async with world.db.writer() as session, session.begin():
        session.add(
            Membership(user_id=world.admin.id, practice_id=other_world.practice_id, role=Role.ADMIN)
        )
    here, here_intent = await paid_by_card(api, world, localstripe, 10_000)
    await enable_cards(api, other_world)
    there = await other_world.invoice(amount=8_000)
    payload = await pay_by_card(api, other_world, there, localstripe.create_payment_method())
    assert payload["errors"] == [], payload
    there_intent = next(i["id"] for i in localstripe.payment_intents() if i["id"] != here_intent)
    tokens = {
        here: await world.token(world.admin, "ADMIN"),
        there: await other_world.token(world.admin, "ADMIN"),
    }

    async def refund_in(invoice_id: int) -> dict[str, Any]:
        variables = {
            "input": {
                "invoiceId": encode_id("Invoice", invoice_id),
                "amount": 3_000,
                "reason": "goodwill",
                "idempotencyKey": "refund-everywhere",
            }
        }
        data = await api.data(REFUND, variables, tokens[invoice_id])
        payload: dict[str, Any] = data["refundInvoice"]
        return payload

    first = await refund_in(here)
    second = await refund_in(there)
    assert first["errors"] == second["errors"] == []
    assert refunds_at_stripe(localstripe, here_intent) == [3_000]
    assert refunds_at_stripe(localstripe, there_intent) == [3_000]
    # A retry in either practice answers that practice's refund, refunding nothing more
    assert await refund_in(here) == first
    assert await refund_in(there) == second
    assert refunds_at_stripe(localstripe, here_intent) == [3_000]
    assert refunds_at_stripe(localstripe, there_intent) == [3_000]
