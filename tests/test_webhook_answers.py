"""What the webhook answers, for every kind of event it receives: 2xx only once the event is
fully handled (stored as handled, its effect recorded), 4xx when sending it again cannot help
(a bad signature, an unknown processor, an unreadable event, a processor refusing our
look-up), 5xx only for a transient failure (the database down, the processor not answering) —
and then nothing is stored, so the next delivery does it all."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from models import PaymentAttempt
from models.processing import AttemptStatus
from schema.node import encode_id
from settings import Settings
from tests.api import Api
from tests.factories import World
from tests.stripe_proxy import FaultyStripe
from tests.stripe_server import (
    SECRET_KEY,
    LocalStripe,
    deliver,
    enable_cards,
    event_body,
    pay_by_card,
    sign,
)
from tests.test_processor_down import app_with
from tests.test_refund_faults import codes, refund
from tests.test_webhooks import (
    THREE_D_SECURE_CARD,
    authenticated_3ds_payment,
    card_paid_invoice,
    charge_of,
    handled_events,
    read_invoice,
)


@dataclass
class Setting:
    """What a case may use: the suite's app, a second practice, the processor and its proxy."""

    api: Api
    world: World
    other_world: World
    settings: Settings
    localstripe: LocalStripe
    proxy: FaultyStripe
    client_of: Any


@dataclass
class Sent:
    """One delivery and what it must be answered."""

    event_id: str
    response: httpx.Response
    status: int
    outcome: str | None = None  # the answer's `status` field, when it matters
    then: Callable[[], Awaitable[None]] | None = None  # what follows, once it was checked


# Event ids are the processor's own: unique across the tests that share the database.
EVT_ACTION = f"evt_action_{uuid.uuid4().hex}"
EVT_CANCELED = f"evt_canceled_{uuid.uuid4().hex}"
EVT_CHARGE_REFUND_UPDATED = f"evt_charge_refund_updated_{uuid.uuid4().hex}"
EVT_CUSTOMER = f"evt_customer_{uuid.uuid4().hex}"
EVT_FAILED = f"evt_failed_{uuid.uuid4().hex}"
EVT_NOBODY = f"evt_nobody_{uuid.uuid4().hex}"
EVT_REFUND_FAILED = f"evt_refund_failed_{uuid.uuid4().hex}"
EVT_REFUND_UPDATED = f"evt_refund_updated_{uuid.uuid4().hex}"
EVT_REFUNDED = f"evt_refunded_{uuid.uuid4().hex}"
EVT_REFUSED = f"evt_refused_{uuid.uuid4().hex}"
EVT_UNANSWERED = f"evt_unanswered_{uuid.uuid4().hex}"
EVT_UNREADABLE = f"evt_unreadable_{uuid.uuid4().hex}"

Case = Callable[[Setting], Awaitable[Sent]]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def add(function: Case) -> Case:
        CASES[name] = function
        return function

    return add


async def signed(
    s: Setting, path: str, event_id: str, kind: str, obj: dict[str, Any], through: Api | None = None
) -> httpx.Response:
    body = event_body(event_id, kind, obj)
    return await deliver(through or s.api, path, body, sign(body))


async def attempt_of(world: World, invoice_id: int) -> tuple[AttemptStatus, str | None]:
    async with world.db.reader() as session:
        row = (
            await session.execute(
                select(PaymentAttempt.status, PaymentAttempt.processor_reference)
                .where(PaymentAttempt.invoice_id == invoice_id)
                .order_by(PaymentAttempt.attempt.desc())
                .limit(1)
            )
        ).one()
    return row[0], row[1]


# --- handled: 2xx ---------------------------------------------------------------------------


@case("payment_intent.succeeded")
async def _succeeded(s: Setting) -> Sent:
    path, invoice_id, _, hook = await authenticated_3ds_payment(s.api, s.world, s.localstripe)
    response = await deliver(s.api, path, hook.body, hook.signature)
    assert (await read_invoice(s.api, s.world, invoice_id))["status"] == "PAID"
    return Sent(hook.event["id"], response, 200, "handled")


@case("payment_intent.payment_failed")
async def _failed(s: Setting) -> Sent:
    path = await enable_cards(s.api, s.world)
    invoice_id = await s.world.invoice(amount=5_000)
    card = s.localstripe.create_payment_method(THREE_D_SECURE_CARD)
    payload = await pay_by_card(s.api, s.world, invoice_id, card)
    (intent,) = s.localstripe.payment_intents()
    s.localstripe.authenticate(intent["id"], payload["paymentClientSecret"], success=False)
    obj = s.localstripe.get(f"/v1/payment_intents/{intent['id']}")
    response = await signed(s, path, EVT_FAILED, "payment_intent.payment_failed", obj)
    assert (await attempt_of(s.world, invoice_id))[0] is AttemptStatus.DECLINED
    return Sent(EVT_FAILED, response, 200, "handled")


@case("payment_intent.canceled")
async def _canceled(s: Setting) -> Sent:
    # A payment waiting for 3-D Secure, canceled at the processor: the attempt is closed.
    path = await enable_cards(s.api, s.world)
    invoice_id = await s.world.invoice(amount=5_000)
    card = s.localstripe.create_payment_method(THREE_D_SECURE_CARD)
    assert (await pay_by_card(s.api, s.world, invoice_id, card))["requiresAction"] is True
    (intent,) = s.localstripe.payment_intents()
    obj = s.localstripe.post(f"/v1/payment_intents/{intent['id']}/cancel")
    response = await signed(s, path, EVT_CANCELED, "payment_intent.canceled", obj)
    assert await attempt_of(s.world, invoice_id) == (AttemptStatus.DECLINED, intent["id"])
    history = (await read_invoice(s.api, s.world, invoice_id))["history"]
    assert [e["action"] for e in history] == ["SENT"]
    return Sent(EVT_CANCELED, response, 200, "handled")


@case("payment_intent.requires_action")
async def _requires_action(s: Setting) -> Sent:
    # Our answer was lost before we learnt the payment's id: the event tells it.
    path = await enable_cards(s.api, s.world)
    invoice_id = await s.world.invoice(amount=5_000)
    card = s.localstripe.create_payment_method(THREE_D_SECURE_CARD)
    s.proxy.drop("/v1/payment_intents")
    async with app_with(s.settings, stripe_api_base=s.proxy.url) as through_proxy:
        payload = await pay_by_card(through_proxy, s.world, invoice_id, card)
    assert codes(payload) == ["PROCESSOR_UNAVAILABLE"]
    (intent,) = s.localstripe.payment_intents()
    response = await signed(s, path, EVT_ACTION, "payment_intent.requires_action", intent)
    assert await attempt_of(s.world, invoice_id) == (AttemptStatus.REQUIRES_ACTION, intent["id"])
    return Sent(EVT_ACTION, response, 200, "handled")


@case("charge.refunded")
async def _refunded(s: Setting) -> Sent:
    path, invoice_id, intent = await card_paid_invoice(s.api, s.world, s.localstripe)
    s.localstripe.post("/v1/refunds", payment_intent=intent, amount=4_000)
    response = await signed(
        s, path, EVT_REFUNDED, "charge.refunded", charge_of(s.localstripe, intent)
    )
    invoice = await read_invoice(s.api, s.world, invoice_id)
    assert invoice["amountRefunded"] == {"amount": 4_000}
    return Sent(EVT_REFUNDED, response, 200, "handled")


async def refunded_through_carebill(s: Setting) -> tuple[str, int, dict[str, Any]]:
    path, invoice_id, intent = await card_paid_invoice(s.api, s.world, s.localstripe)
    assert (await refund(s.api, s.world, invoice_id, 10_000, key="whole"))["errors"] == []
    (made,) = s.localstripe.get("/v1/refunds", payment_intent=intent)["data"]
    return path, invoice_id, made


@case("charge.refund.updated")
async def _refund_updated_failed(s: Setting) -> Sent:
    path, invoice_id, made = await refunded_through_carebill(s)
    failed = {**made, "status": "failed"}
    response = await signed(s, path, EVT_CHARGE_REFUND_UPDATED, "charge.refund.updated", failed)
    assert (await read_invoice(s.api, s.world, invoice_id))["status"] == "PAID"
    return Sent(EVT_CHARGE_REFUND_UPDATED, response, 200, "handled")


@case("refund.updated")
async def _refund_updated(s: Setting) -> Sent:
    # A refund made in the dashboard, told by refund.updated first: recorded.
    path, invoice_id, intent = await card_paid_invoice(s.api, s.world, s.localstripe)
    made = s.localstripe.post("/v1/refunds", payment_intent=intent, amount=2_500)
    response = await signed(s, path, EVT_REFUND_UPDATED, "refund.updated", made)
    invoice = await read_invoice(s.api, s.world, invoice_id)
    assert invoice["amountRefunded"] == {"amount": 2_500}
    return Sent(EVT_REFUND_UPDATED, response, 200, "handled")


@case("refund.failed")
async def _refund_failed(s: Setting) -> Sent:
    path, invoice_id, made = await refunded_through_carebill(s)
    response = await signed(
        s, path, EVT_REFUND_FAILED, "refund.failed", {**made, "status": "failed"}
    )
    assert (await read_invoice(s.api, s.world, invoice_id))["status"] == "PAID"
    return Sent(EVT_REFUND_FAILED, response, 200, "handled")


@case("an unknown kind")
async def _unknown_kind(s: Setting) -> Sent:
    path = await enable_cards(s.api, s.world)
    response = await signed(s, path, EVT_CUSTOMER, "customer.created", {"id": "cus_1"})
    return Sent(EVT_CUSTOMER, response, 200, "ignored")


@case("an unknown object")
async def _unknown_object(s: Setting) -> Sent:
    path = await enable_cards(s.api, s.world)
    obj = {"id": "pi_nobodys", "status": "succeeded", "amount": 100, "currency": "usd"}
    response = await signed(s, path, EVT_NOBODY, "payment_intent.succeeded", obj)
    return Sent(EVT_NOBODY, response, 200, "ignored")


@case("another practice's processor")
async def _other_practice(s: Setting) -> Sent:
    _, invoice_id, _, hook = await authenticated_3ds_payment(s.api, s.world, s.localstripe)
    other_path = await enable_cards(s.api, s.other_world)
    response = await deliver(s.api, other_path, hook.body, sign(hook.body))
    assert (await read_invoice(s.api, s.world, invoice_id))["status"] == "UNPAID"
    return Sent(hook.event["id"], response, 200, "ignored")


# --- refused for good: 4xx ------------------------------------------------------------------


@case("a bad signature")
async def _bad_signature(s: Setting) -> Sent:
    path, invoice_id, _, hook = await authenticated_3ds_payment(s.api, s.world, s.localstripe)
    response = await deliver(s.api, path, hook.body, sign(hook.body, "whsec_notTheSecret0001"))
    assert (await read_invoice(s.api, s.world, invoice_id))["status"] == "UNPAID"
    return Sent(hook.event["id"], response, 400)


@case("an unknown processor")
async def _unknown_processor(s: Setting) -> Sent:
    _, _, _, hook = await authenticated_3ds_payment(s.api, s.world, s.localstripe)
    path = f"/webhooks/stripe/{encode_id('PaymentProcessor', 999_999_999)}"
    response = await deliver(s.api, path, hook.body, hook.signature)
    return Sent(hook.event["id"], response, 404)


@case("an unreadable event")
async def _unreadable(s: Setting) -> Sent:
    path = await enable_cards(s.api, s.world)
    body = json.dumps({"id": EVT_UNREADABLE, "type": 7}).encode()  # a type is a string
    response = await deliver(s.api, path, body, sign(body))
    return Sent(EVT_UNREADABLE, response, 400)


@case("the processor refuses our look-up")
async def _look_up_refused(s: Setting) -> Sent:
    # charge.refunded without its refunds: we must ask, and the processor refuses our keys.
    path, _, intent = await card_paid_invoice(s.api, s.world, s.localstripe)
    s.localstripe.post("/v1/refunds", payment_intent=intent, amount=1_000)
    charge = charge_of(s.localstripe, intent)
    del charge["refunds"]
    s.proxy.fail("/v1/refunds", status=401)
    async with app_with(s.settings, stripe_api_base=s.proxy.url) as through_proxy:
        response = await signed(s, path, EVT_REFUSED, "charge.refunded", charge, through_proxy)
    return Sent(EVT_REFUSED, response, 422)


# --- transient: 5xx, and the next delivery handles it ---------------------------------------


@case("the processor does not answer our look-up")
async def _look_up_unanswered(s: Setting) -> Sent:
    path, invoice_id, intent = await card_paid_invoice(s.api, s.world, s.localstripe)
    s.localstripe.post("/v1/refunds", payment_intent=intent, amount=1_000)
    charge = charge_of(s.localstripe, intent)
    del charge["refunds"]
    body = event_body(EVT_UNANSWERED, "charge.refunded", charge)
    s.proxy.fail("/v1/refunds", status=503)
    async with app_with(s.settings, stripe_api_base=s.proxy.url) as through_proxy:
        response = await deliver(through_proxy, path, body, sign(body))

    async def delivered_again() -> None:
        again = await deliver(s.api, path, body, sign(body))
        assert (again.status_code, again.json()) == (200, {"status": "handled"})
        invoice = await read_invoice(s.api, s.world, invoice_id)
        assert invoice["amountRefunded"] == {"amount": 1_000}

    return Sent(EVT_UNANSWERED, response, 503, then=delivered_again)


@case("the database is down")
async def _database_down(s: Setting) -> Sent:
    path, _, _, hook = await authenticated_3ds_payment(s.api, s.world, s.localstripe)
    url = (
        "sqlite+aiosqlite:////nonexistent-directory/carebill.db"
        if s.settings.database_url.startswith("sqlite")
        else "postgresql+asyncpg://postgres@127.0.0.1:1/carebill"
    )
    down = await s.client_of(database_url=url, stripe_api_base=s.localstripe.url)
    response = await down.post(
        path,
        content=hook.body,
        headers={"Stripe-Signature": hook.signature, "Content-Type": "application/json"},
    )
    return Sent(hook.event["id"], response, 503)


@pytest.mark.parametrize("name", list(CASES))
async def test_every_event_kind_is_answered_for_what_was_done(
    name: str,
    api: Api,
    world: World,
    other_world: World,
    settings: Settings,
    localstripe: LocalStripe,
    faulty_stripe: FaultyStripe,
    client_of: Any,
) -> None:
    setting = Setting(api, world, other_world, settings, localstripe, faulty_stripe, client_of)
    sent = await CASES[name](setting)
    assert sent.response.status_code == sent.status, sent.response.text
    if sent.outcome is not None:
        assert sent.response.json() == {"status": sent.outcome}
    # Stored as handled exactly when it was answered 2xx: a 4xx or 5xx changes nothing
    handled = await handled_events(world, sent.event_id)
    assert handled == (1 if sent.status < 300 else 0)
    assert SECRET_KEY not in sent.response.text
    if sent.then is not None:
        await sent.then()
