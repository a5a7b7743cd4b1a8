"""The processor is down or times out: PROCESSOR_UNAVAILABLE, nothing half-done, and a retry
(or the processor's webhook) completes the payment without charging twice."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app import create_app
from models import PaymentAttempt
from models.processing import AttemptStatus
from schema.node import encode_id
from settings import Settings
from tests.api import Api
from tests.asgi import running
from tests.factories import World
from tests.stripe_server import LocalStripe, closed_port, deliver, enable_cards, pay_by_card

INVOICE = """
query($id: ID!) {
  invoice(id: $id) { status payments { method reference } history { action } }
}
"""


class AnswerDroppingProxy:
    """Passes requests on to localstripe and throws its answers away: the processor acts,
    the caller never hears back (a timeout after the charge was made)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        try:
            while data := await reader.read(65536):
                up_writer.write(data)
                await up_writer.drain()
        finally:
            up_writer.close()
            writer.close()
            del up_reader
            self._tasks.discard(task)


@contextlib.asynccontextmanager
async def app_with(settings: Settings, **changes: Any) -> AsyncIterator[Api]:
    """Another CareBill process on the same database, configured with `changes`."""
    application = create_app(dataclasses.replace(settings, **changes))
    async with running(application) as served:
        transport = httpx.ASGITransport(app=served.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://carebill.test") as http:
            yield Api(http)


async def invoice_state(api: Api, world: World, invoice_id: int) -> dict[str, Any]:
    token = await world.token(world.c1, "CLIENT")
    data = await api.data(INVOICE, {"id": encode_id("Invoice", invoice_id)}, token)
    invoice: dict[str, Any] = data["invoice"]
    return invoice


async def attempt_statuses(world: World, invoice_id: int) -> list[AttemptStatus]:
    async with world.db.reader() as session:
        rows = await session.scalars(
            select(PaymentAttempt.status)
            .where(PaymentAttempt.invoice_id == invoice_id)
            .order_by(PaymentAttempt.attempt)
        )
        return list(rows)


UNAVAILABLE = "PROCESSOR_UNAVAILABLE"


async def test_a_stopped_processor_changes_nothing_and_a_retry_charges_once(
    api: Api, world: World, localstripe: LocalStripe
) -> None:
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=10_000)
    card = localstripe.create_payment_method()
    localstripe.stop()
    try:
        payload = await pay_by_card(api, world, invoice_id, card, key="pay-1")
    finally:
        localstripe.resume()
    assert [e["code"] for e in payload["errors"]] == [UNAVAILABLE]
    assert payload["invoice"] is None
    assert await invoice_state(api, world, invoice_id) == {
        "status": "UNPAID",
        "payments": [],
        "history": [{"action": "SENT"}],
    }
    # The attempt is kept, key and all, so that the retry replays it
    assert await attempt_statuses(world, invoice_id) == [AttemptStatus.UNKNOWN]
    payload = await pay_by_card(api, world, invoice_id, card, key="pay-1")
    assert payload["errors"] == []
    assert payload["invoice"] == {"status": "PAID"}
    assert len(localstripe.payment_intents()) == 1
    assert await attempt_statuses(world, invoice_id) == [AttemptStatus.SUCCEEDED]


async def test_a_processor_that_was_never_there_is_unavailable(
    api: Api, world: World, settings: Settings, localstripe: LocalStripe
) -> None:
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=10_000)
    card = localstripe.create_payment_method()
    async with app_with(settings, stripe_api_base=f"http://127.0.0.1:{closed_port()}") as down:
        payload = await pay_by_card(down, world, invoice_id, card)
    assert [e["code"] for e in payload["errors"]] == [UNAVAILABLE]
    assert (await invoice_state(api, world, invoice_id))["status"] == "UNPAID"


@pytest.fixture
async def silent_processor(localstripe: LocalStripe) -> AsyncIterator[str]:
    """The URL of localstripe behind a proxy that loses every answer."""
    proxy = AnswerDroppingProxy(localstripe.port)
    url = await proxy.start()
    yield url
    await proxy.close()


async def test_a_payment_that_succeeded_while_we_timed_out_is_reconciled_by_the_webhook(
    api: Api, world: World, settings: Settings, localstripe: LocalStripe, silent_processor: str
) -> None:
    webhook_path = await enable_cards(api, world)
    invoice_id = await world.invoice(amount=10_000)
    card = localstripe.create_payment_method()
    async with app_with(
        settings, stripe_api_base=silent_processor, processor_timeout_seconds=1.0
    ) as timing_out:
        payload = await pay_by_card(timing_out, world, invoice_id, card)
    assert [e["code"] for e in payload["errors"]] == [UNAVAILABLE]
    # Stripe took the money, but we do not know it yet
    (intent,) = localstripe.payment_intents()
    assert intent["status"] == "succeeded"
    assert (await invoice_state(api, world, invoice_id))["status"] == "UNPAID"
    # Its webhook finds our attempt by the metadata and records the payment
    hook = await localstripe.wait_for_event("payment_intent.succeeded", intent["id"])
    response = await deliver(api, webhook_path, hook.body, hook.signature)
    assert response.status_code == 200
    invoice = await invoice_state(api, world, invoice_id)
    assert invoice["status"] == "PAID"
    assert invoice["payments"] == [{"method": "CARD", "reference": intent["id"]}]
    # The client's retry charges nothing more
    payload = await pay_by_card(api, world, invoice_id, card)
    assert [e["code"] for e in payload["errors"]] == ["INVALID_STATE"]
    assert len(localstripe.payment_intents()) == 1


async def test_a_second_charge_for_one_attempt_is_given_back(
    api: Api, world: World, settings: Settings, localstripe: LocalStripe, silent_processor: str
) -> None:
    # After a lost answer the retry replays the same idempotency key. Stripe answers with the
    # first payment; localstripe ignores keys and charges again. Whatever the processor does,
    # the webhook of the charge the attempt did not settle with gives it back.
    webhook_path = await enable_cards(api, world)
    invoice_id = await world.invoice(amount=10_000)
    card = localstripe.create_payment_method()
    async with app_with(
        settings, stripe_api_base=silent_processor, processor_timeout_seconds=1.0
    ) as timing_out:
        payload = await pay_by_card(timing_out, world, invoice_id, card)
    assert [e["code"] for e in payload["errors"]] == [UNAVAILABLE]
    payload = await pay_by_card(api, world, invoice_id, card)
    assert payload["errors"] == []
    first, second = sorted(localstripe.payment_intents(), key=lambda i: i["created"])
    invoice = await invoice_state(api, world, invoice_id)
    assert invoice["status"] == "PAID"
    assert len(invoice["payments"]) == 1
    recorded = invoice["payments"][0]["reference"]
    stray = first if recorded == second["id"] else second
    hook = await localstripe.wait_for_event("payment_intent.succeeded", stray["id"])
    assert (await deliver(api, webhook_path, hook.body, hook.signature)).status_code == 200
    refunds = localstripe.get("/v1/refunds", payment_intent=stray["id"])["data"]
    assert [r["amount"] for r in refunds] == [10_000]
    assert len((await invoice_state(api, world, invoice_id))["payments"]) == 1
