"""Failed logins are throttled per account and per client address, in the database (every
server process sees the same counts): a typed TOO_MANY_ATTEMPTS with when to retry, the same
whether or not the account exists; the window expires; other accounts log in as usual."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from app import create_app
from models.base import utcnow
from settings import Settings
from tests.asgi import running
from tests.factories import PASSWORD, World

LOGIN = """mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) {
    token retryAfterSeconds errors { code field message } } }"""
WINDOW = timedelta(minutes=15)


@dataclass
class Clock:
    now: datetime = field(default_factory=utcnow)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Server:
    """One app (one server process's worth of state) with a clock the test moves."""

    application: Any
    clock: Clock

    def client(self, address: str = "203.0.113.7") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.application, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://carebill.test")


@pytest.fixture
async def servers(settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    started: list[Any] = []

    async def start(clock: Clock, **overrides: Any) -> Server:
        values: dict[str, Any] = {
            "database_url": settings.database_url,
            "secret_key": settings.secret_key,
            "login_max_failures": 5,
            "login_window": WINDOW,
        }
        values.update(overrides)
        lifespan = running(create_app(Settings(**values), clock=clock))
        served = await lifespan.__aenter__()
        started.append(lifespan)
        return Server(served.app, clock)

    yield start
    for lifespan in reversed(started):
        await lifespan.__aexit__(None, None, None)


async def attempt(http: httpx.AsyncClient, email: str, password: str) -> tuple[dict[str, Any], Any]:
    response = await http.post(
        "/graphql", json={"query": LOGIN, "variables": {"email": email, "password": password}}
    )
    assert response.status_code == 200
    payload: dict[str, Any] = response.json()["data"]["login"]
    return payload, response.headers.get("retry-after")


def refused(seconds: int) -> dict[str, Any]:
    return {
        "token": None,
        "retryAfterSeconds": seconds,
        "errors": [
            {
                "code": "TOO_MANY_ATTEMPTS",
                "field": None,
                "message": f"too many failed logins; try again in {seconds} seconds",
            }
        ],
    }


BAD = {
    "token": None,
    "retryAfterSeconds": None,
    "errors": [{"code": "VALIDATION", "field": None, "message": "invalid email or password"}],
}


async def test_an_account_is_throttled_then_the_window_expires(
    world: World, servers: Callable[..., Any]
) -> None:
    clock = Clock()
    server = await servers(clock)
    async with server.client() as http:
        for n in range(5):
            clock.now += timedelta(seconds=10)
            assert await attempt(http, world.c1.email, f"guess-{n}") == (BAD, None)
        # The sixth try is refused before the password is looked at, even the right one.
        clock.now += timedelta(seconds=10)
        wait = 900 - 50  # the first failure, 50 s ago, leaves the window in 850 s
        assert await attempt(http, world.c1.email, PASSWORD) == (refused(wait), str(wait))
        # Other accounts log in as usual, from the same address.
        payload, _ = await attempt(http, world.c2.email, PASSWORD)
        assert payload["errors"] == []
        assert payload["token"]
        # Once the first failure has aged out, one more try is allowed: the right password.
        clock.now += timedelta(seconds=wait)
        payload, _ = await attempt(http, world.c1.email, PASSWORD)
        assert payload["errors"] == []
        assert payload["token"]
        # A success forgets the account's failures: five more guesses before the next refusal.
        for n in range(5):
            assert await attempt(http, world.c1.email, f"again-{n}") == (BAD, None)
        payload, _ = await attempt(http, world.c1.email, PASSWORD)
        assert payload["errors"][0]["code"] == "TOO_MANY_ATTEMPTS"


async def test_the_answer_never_tells_whether_the_account_exists(
    world: World, servers: Callable[..., Any]
) -> None:
    clock = Clock()
    server = await servers(clock)
    unknown = f"nobody-{world.practice_id}@example.test"
    async with server.client() as http:
        for n in range(5):
            assert await attempt(http, world.c3.email, f"guess-{n}") == (BAD, None)
            assert await attempt(http, unknown, f"guess-{n}") == (BAD, None)
        assert await attempt(http, world.c3.email, "x" * 9) == await attempt(http, unknown, "x" * 9)
        payload, _ = await attempt(http, unknown.upper(), "x" * 9)  # the same email
        assert payload["errors"][0]["code"] == "TOO_MANY_ATTEMPTS"


async def test_every_server_process_sees_the_same_failures(
    world: World, servers: Callable[..., Any]
) -> None:
    clock = Clock()
    first, second = await servers(clock), await servers(clock)
    async with first.client() as one, second.client() as two:
        for n in range(5):
            await attempt(one if n % 2 else two, world.provider2.email, f"guess-{n}")
        payload, _ = await attempt(one, world.provider2.email, PASSWORD)
        assert payload == refused(900)
        payload, _ = await attempt(two, world.provider2.email, PASSWORD)
        assert payload == refused(900)


async def test_an_address_trying_many_accounts_is_throttled(
    world: World, servers: Callable[..., Any]
) -> None:
    clock = Clock()
    server = await servers(clock, login_max_failures_per_address=3)
    emails = [f"spray-{world.practice_id}-{n}@example.test" for n in range(3)]
    async with server.client("198.51.100.9") as spraying, server.client("192.0.2.1") as other:
        for email in emails:
            assert await attempt(spraying, email, "password1") == (BAD, None)
        payload, retry_after = await attempt(spraying, world.admin.email, PASSWORD)
        assert payload == refused(900)
        assert retry_after == "900"
        # The accounts themselves are not locked: from another address they log in.
        payload, _ = await attempt(other, world.admin.email, PASSWORD)
        assert payload["errors"] == []
        assert payload["token"]


def test_the_policy_comes_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CAREBILL_LOGIN_MAX_FAILURES": "7",
            "CAREBILL_LOGIN_MAX_FAILURES_PER_ADDRESS": "70",
            "CAREBILL_LOGIN_WINDOW_SECONDS": "60",
        }
    )
    assert (
        settings.login_max_failures,
        settings.login_max_failures_per_address,
        settings.login_window,
    ) == (7, 70, timedelta(seconds=60))
