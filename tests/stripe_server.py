"""localstripe, a stateful fake Stripe, run by the tests on 127.0.0.1 with its state in memory.

Its own command binds every interface and pickles its state to a fixed file after each change;
here its aiohttp app runs in a background thread with its own event loop, bound to a free
local port, and the store never touches the disk. It can be stopped (port closed, connections
dropped) and started again on the same port with its state intact, to play an outage.

Its webhooks go to a small capture server in the same thread: tests pick them up with
`wait_for_event` and deliver them to CareBill themselves (the app under test has no socket).
localstripe signs them with `WEBHOOK_SECRET`, so practices in the tests use that secret.

Known gaps of localstripe: it ignores idempotency keys, does not cap refunds, sends each webhook
once about a second later, sends no refund events. Tests build and sign those themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
import warnings
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from aiohttp import web

from schema.node import encode_id
from tests.api import Api
from tests.factories import World

with warnings.catch_warnings():
    # localstripe registers plain functions as aiohttp handlers, which aiohttp deprecates.
    warnings.simplefilter("ignore", DeprecationWarning)
    from localstripe import resources as localstripe_resources
    from localstripe import server as localstripe_server

SECRET_KEY = "sk_test_carebillLocalStripe0001"
PUBLISHABLE_KEY = "pk_test_carebillLocalStripe0001"
WEBHOOK_SECRET = "whsec_carebillLocalStripeWebhook0001"

T = TypeVar("T")


@dataclass(frozen=True)
class CapturedWebhook:
    body: bytes
    signature: str

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event


class LocalStripe:
    """One in-process localstripe (its store is a module global: one per process)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._capture_runner: web.AppRunner | None = None
        self.port = 0
        self.capture_port = 0
        self.webhooks: list[CapturedWebhook] = []
        self._lock = threading.Lock()

    # --- life cycle (called from the tests' thread) -----------------------------------------

    def start(self) -> None:
        # In memory only: the instance attribute shadows the method that pickles to /tmp.
        localstripe_resources.store.dump_to_disk = lambda: None
        self._thread.start()
        self._call(self._start_capture())
        self._call(self._listen())
        self._configure_webhook()

    def stop(self) -> None:
        """Close the port and every open connection: the processor is down."""
        self._call(self._close())

    def resume(self) -> None:
        """Listen again on the same port, with the same state."""
        self._call(self._listen())

    def close(self) -> None:
        self._call(self._close())
        self._call(self._close_capture())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Forget every object and every captured webhook (each test starts empty)."""
        with httpx.Client(base_url=self.url, timeout=10) as http:
            http.delete("/_config/data").raise_for_status()
        with self._lock:
            self.webhooks.clear()

    # --- helpers for the tests (plain HTTP, like a client app would) --------------------------

    def create_payment_method(self, number: str = "4242424242424242") -> str:
        """What Stripe.js does in the client's app: the card becomes a PaymentMethod id."""
        with httpx.Client(base_url=self.url, timeout=10, auth=(SECRET_KEY, "")) as http:
            response = http.post(
                "/v1/payment_methods",
                data={
                    "type": "card",
                    "card[number]": number,
                    "card[exp_month]": "12",
                    "card[exp_year]": "2034",
                    "card[cvc]": "123",
                },
            )
            response.raise_for_status()
            pm_id: str = response.json()["id"]
            return pm_id

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        with httpx.Client(base_url=self.url, timeout=10, auth=(SECRET_KEY, "")) as http:
            response = http.get(path, params=params)
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

    def post(self, path: str, **data: Any) -> dict[str, Any]:
        with httpx.Client(base_url=self.url, timeout=10, auth=(SECRET_KEY, "")) as http:
            response = http.post(path, data=data)
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

    def payment_intents(self) -> list[dict[str, Any]]:
        """Every PaymentIntent the server holds (it was reset for this test)."""
        listed: list[dict[str, Any]] = self.get("/v1/payment_intents", limit=1000)["data"]
        return listed

    def authenticate(self, payment_intent: str, client_secret: str, success: bool = True) -> None:
        """What the client's app does to finish 3-D Secure."""
        with httpx.Client(base_url=self.url, timeout=10) as http:
            response = http.post(
                f"/v1/payment_intents/{payment_intent}/_authenticate",
                data={
                    "key": PUBLISHABLE_KEY,
                    "client_secret": client_secret,
                    "success": "true" if success else "false",
                },
            )
            response.raise_for_status()

    async def wait_for_event(
        self, event_type: str, object_id: str, within: float = 10.0
    ) -> CapturedWebhook:
        """The webhook localstripe sent about `object_id` (it sends them ~1 s later)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with self._lock:
                for hook in self.webhooks:
                    event = hook.event
                    if event["type"] == event_type and event["data"]["object"]["id"] == object_id:
                        return hook
            await asyncio.sleep(0.05)
        raise AssertionError(f"localstripe sent no {event_type} for {object_id}")

    # --- inside the server's thread -----------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    async def _listen(self) -> None:
        runner = web.AppRunner(localstripe_server.app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = _bound_port(runner)
        self._runner = runner

    async def _close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _start_capture(self) -> None:
        async def receive(request: web.Request) -> web.Response:
            hook = CapturedWebhook(
                body=await request.read(), signature=request.headers.get("Stripe-Signature", "")
            )
            with self._lock:
                self.webhooks.append(hook)
            return web.Response(text="ok")

        capture = web.Application()
        capture.router.add_post("/", receive)
        runner = web.AppRunner(capture, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.capture_port = _bound_port(runner)
        self._capture_runner = runner

    async def _close_capture(self) -> None:
        if self._capture_runner is not None:
            await self._capture_runner.cleanup()

    def _configure_webhook(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            http.post(
                "/_config/webhooks/carebill-tests",
                data={"url": f"http://127.0.0.1:{self.capture_port}/", "secret": WEBHOOK_SECRET},
            ).raise_for_status()


def _bound_port(runner: web.AppRunner) -> int:
    addresses = runner.addresses
    port: int = addresses[0][1]
    return port


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header as Stripe computes it: HMAC-SHA256 over `t.payload`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event_body(event_id: str, event_type: str, obj: dict[str, Any]) -> bytes:
    """A Stripe event envelope around `obj`, as Stripe would send it."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": obj},
        }
    ).encode()


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[LocalStripe]:
    server = LocalStripe()
    server.start()
    yield server
    server.close()


@pytest.fixture
def localstripe(stripe_server: LocalStripe) -> LocalStripe:
    """The session's localstripe, emptied for this test."""
    stripe_server.reset()
    return stripe_server


# --- CareBill side: a practice that takes cards -------------------------------------------------

CONFIGURE_STRIPE = """
mutation($input: ConfigurePaymentProcessorInput!) {
  configurePaymentProcessor(input: $input) {
    paymentProcessor { id webhookPath }
    errors { code field message }
  }
}
"""


async def enable_cards(api: Api, world: World, webhook_secret: str = WEBHOOK_SECRET) -> str:
    """The practice's ADMIN configures Stripe (keys of localstripe); returns the webhook path."""
    token = await world.token(world.admin, "ADMIN")
    data = await api.data(
        CONFIGURE_STRIPE,
        {
            "input": {
                "type": "STRIPE",
                "secretKey": SECRET_KEY,
                "publishableKey": PUBLISHABLE_KEY,
                "webhookSecret": webhook_secret,
            }
        },
        token,
    )
    payload = data["configurePaymentProcessor"]
    assert payload["errors"] == [], payload
    path: str = payload["paymentProcessor"]["webhookPath"]
    return path


async def deliver(api: Api, path: str, body: bytes, signature: str | None) -> httpx.Response:
    """POST a webhook to CareBill as the processor would."""
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return await api.http.post(path, content=body, headers=headers)


PAY_INVOICE = """
mutation($input: PayInvoiceInput!) {
  payInvoice(input: $input) {
    invoice { status }
    requiresAction
    paymentClientSecret
    errors { code field message }
  }
}
"""


async def pay_by_card(
    api: Api, world: World, invoice_id: int, payment_method: str, key: str | None = None
) -> dict[str, Any]:
    """The invoice's client (c1) pays it with `payment_method`; the payInvoice payload."""
    variables = {
        "input": {
            "invoiceId": encode_id("Invoice", invoice_id),
            "paymentMethodId": payment_method,
            "idempotencyKey": key,
        }
    }
    data = await api.data(PAY_INVOICE, variables, await world.token(world.c1, "CLIENT"))
    payload: dict[str, Any] = data["payInvoice"]
    return payload
