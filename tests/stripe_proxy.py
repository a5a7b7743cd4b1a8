"""A fault-injecting Stripe in front of localstripe, for the tests of money under faults.

An aiohttp server on a free loopback port, running in the test's own event loop, that forwards
every request to localstripe and, per test, can:
- `fail(path, status)`: answer 5xx without forwarding (nothing happens at the processor);
- `drop(path)`: forward, then close the connection without an answer (it happened, we never
  hear of it);
- `hold(path)`: forward, then keep the answer until `release()` (an answer slower than our
  timeout, or one a test wants to keep waiting while it does something else).
Each rule applies to the next `times` requests whose path starts with `path`.

localstripe ignores idempotency keys; this proxy honours them as Stripe does: a POST with a key
already seen on the same endpoint is answered with the first answer, without forwarding (a
different body with the same key is Stripe's 400 `idempotency_error`). `forget_keys()` plays
Stripe forgetting keys after 24 hours. Every request is recorded with its key, so a test can
tell a replay from a second refund.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

from tests.stripe_server import LocalStripe

# Far longer than any processor timeout a test sets: a held answer is released by the test.
HOLD_LIMIT_SECONDS = 60.0


@dataclass
class Rule:
    path: str
    action: str  # "fail", "drop" or "hold"
    times: int
    status: int = 500


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    idempotency_key: str | None
    replayed: bool  # answered from the key's first answer, not forwarded
    fault: str | None  # the rule applied, if any


@dataclass
class _Answer:
    status: int
    body: bytes
    body_hash: str


@dataclass
class FaultyStripe:
    """The proxy; `url` is what CareBill's `stripe_api_base` points at."""

    target: str
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    _rules: list[Rule] = field(default_factory=list)
    _answers: dict[tuple[str, str], _Answer] = field(default_factory=dict)
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _holding: int = 0
    _runner: web.AppRunner | None = None
    _http: httpx.AsyncClient | None = None

    # --- what a test sets up ----------------------------------------------------------------

    def fail(self, path: str, status: int = 500, times: int = 1) -> None:
        self._rules.append(Rule(path, "fail", times, status))

    def drop(self, path: str, times: int = 1) -> None:
        self._rules.append(Rule(path, "drop", times))

    def hold(self, path: str, times: int = 1) -> None:
        self._released.clear()
        self._rules.append(Rule(path, "hold", times))

    def release(self) -> None:
        self._released.set()

    def forget_keys(self) -> None:
        self._answers.clear()

    @property
    def holding(self) -> int:
        """How many answers are held right now."""
        return self._holding

    async def wait_holding(self, count: int = 1, within: float = 20.0) -> None:
        """Until `count` answers are held (their requests forwarded already)."""
        deadline = asyncio.get_running_loop().time() + within
        while self._holding < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{self._holding} answers held, expected {count}")
            await asyncio.sleep(0.02)

    def sent(self, path: str) -> list[Recorded]:
        """The requests to endpoints starting with `path` (replays included)."""
        return [r for r in self.requests if r.path.startswith(path)]

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._http = httpx.AsyncClient(base_url=self.target, timeout=30)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.aclose()

    # --- the proxy ----------------------------------------------------------------------------

    def _rule_for(self, path: str) -> Rule | None:
        for rule in self._rules:
            if rule.times > 0 and path.startswith(rule.path):
                rule.times -= 1
                return rule
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = request.path
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        body_hash = hashlib.sha256(body).hexdigest()
        first = self._answers.get((key, path)) if key is not None else None
        if first is not None:
            self.requests.append(Recorded(request.method, path, key, True, None))
            if first.body_hash != body_hash:
                return _idempotency_error(key)
            return _response(first.status, first.body, key)
        rule = self._rule_for(path)
        self.requests.append(
            Recorded(request.method, path, key, False, rule.action if rule else None)
        )
        if rule is not None and rule.action == "fail":
            return _response(rule.status, _error_body("api_error", "injected failure"), key)
        assert self._http is not None
        forwarded = await self._http.request(
            request.method,
            request.path_qs,
            content=body,
            headers={
                name: value
                for name, value in request.headers.items()
                if name.lower() in ("authorization", "content-type", "stripe-version")
            },
        )
        answer = _Answer(forwarded.status_code, forwarded.content, body_hash)
        if key is not None and forwarded.status_code < 500:
            self._answers[(key, path)] = answer  # Stripe keeps every answer but a 5xx
        if rule is not None and rule.action == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)  # never reaches the caller: its socket is gone
        if rule is not None and rule.action == "hold":
            self._holding += 1
            try:
                await asyncio.wait_for(self._released.wait(), HOLD_LIMIT_SECONDS)
            finally:
                self._holding -= 1
        return _response(answer.status, answer.body, key)


def _response(status: int, body: bytes, key: str | None) -> web.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def _error_body(kind: str, message: str) -> bytes:
    return json.dumps({"error": {"type": kind, "message": message}}).encode()


def _idempotency_error(key: str | None) -> web.Response:
    message = f"Keys for idempotent requests can only be used with the same parameters ({key})"
    return _response(400, _error_body("idempotency_error", message), key)


@pytest.fixture
async def faulty_stripe(localstripe: LocalStripe) -> AsyncIterator[FaultyStripe]:
    """localstripe (emptied for this test) behind the fault-injecting proxy."""
    proxy = FaultyStripe(target=localstripe.url)
    await proxy.start()
    yield proxy
    await proxy.close()
