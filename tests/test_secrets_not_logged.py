"""No code path logs or stores a card number, a secret key or a webhook secret: the payment
flows run with every logger (ours, Stripe's SDK, the database driver's, httpx's) at DEBUG, and the
captured logs and the stored rows are searched for the secrets used."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from models import PaymentAttempt, PaymentProcessorConfig
from schema.node import encode_id
from tests.api import Api
from tests.factories import World
from tests.stripe_server import (
    SECRET_KEY,
    WEBHOOK_SECRET,
    LocalStripe,
    deliver,
    enable_cards,
    pay_by_card,
    sign,
)

CARDS = {
    "ok": "4242424242424242",
    "declined": "4000000000000341",
    "3ds": "4000002500003155",
}

REFUND = """
mutation($input: RefundInvoiceInput!) { refundInvoice(input: $input) { errors { code } } }
"""


async def test_payment_flows_log_and_store_no_secret(
    api: Api, world: World, localstripe: LocalStripe, caplog: pytest.LogCaptureFixture
) -> None:
    # The client's app makes the card tokens: that is outside CareBill, before capture.
    methods = {name: localstripe.create_payment_method(number) for name, number in CARDS.items()}
    caplog.set_level(logging.DEBUG)

    webhook_path = await enable_cards(api, world)
    paid = await world.invoice(amount=10_000)
    declined = await world.invoice(amount=2_000)
    secured = await world.invoice(amount=3_000)
    down = await world.invoice(amount=4_000)

    assert (await pay_by_card(api, world, paid, methods["ok"]))["errors"] == []
    refund_input = {"invoiceId": encode_id("Invoice", paid), "amount": 1_000, "reason": "r"}
    data = await api.data(
        REFUND, {"input": refund_input}, await world.token(world.provider, "PROVIDER")
    )
    assert data["refundInvoice"]["errors"] == []

    payload = await pay_by_card(api, world, declined, methods["declined"])
    assert [e["code"] for e in payload["errors"]] == ["PAYMENT_DECLINED"]

    payload = await pay_by_card(api, world, secured, methods["3ds"])
    intent = next(i for i in localstripe.payment_intents() if i["status"] == "requires_action")
    localstripe.authenticate(intent["id"], payload["paymentClientSecret"])
    hook = await localstripe.wait_for_event("payment_intent.succeeded", intent["id"])
    assert (await deliver(api, webhook_path, b"{}", "t=1,v1=00")).status_code == 400
    assert (
        await deliver(api, webhook_path, hook.body, sign(hook.body, "whsec_x0000000"))
    ).status_code == 400
    assert (await deliver(api, webhook_path, hook.body, hook.signature)).status_code == 200

    localstripe.stop()
    try:
        payload = await pay_by_card(api, world, down, methods["ok"])
    finally:
        localstripe.resume()
    assert [e["code"] for e in payload["errors"]] == ["PROCESSOR_UNAVAILABLE"]

    # The logs were not empty: Stripe's SDK (request and response bodies) spoke at DEBUG
    assert any(record.name == "stripe" for record in caplog.records)
    logged = "\n".join(
        [caplog.text]
        + [record.getMessage() for record in caplog.records]
        + [repr(record.args) for record in caplog.records]
    )
    for secret in (SECRET_KEY, WEBHOOK_SECRET, *CARDS.values()):
        assert secret not in logged

    async with world.db.reader() as session:
        attempts = list(await session.scalars(select(PaymentAttempt)))
        processors = list(await session.scalars(select(PaymentProcessorConfig)))
    stored = repr([vars(a) for a in attempts]).encode() + b"".join(
        p.encrypted_credentials for p in processors
    )
    for secret in (SECRET_KEY, WEBHOOK_SECRET, *CARDS.values()):
        assert secret.encode() not in stored
