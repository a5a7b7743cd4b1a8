"""Fixtures: each test runs once on SQLite and once on PostgreSQL, against the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from adapters.database import Database
from app import create_app
from schema.services import Services
from settings import Settings
from tests.api import Api
from tests.asgi import Running, running
from tests.configured_apps import client_of  # noqa: F401 - fixture
from tests.databases import create_pg_database, drop_pg_database, migrate, sqlite_url
from tests.factories import World, make_world
from tests.live_server import live_server, own_database, redis_server  # noqa: F401 - fixtures
from tests.notifications import mail_server, own_api  # noqa: F401 - fixtures
from tests.stripe_proxy import faulty_stripe  # noqa: F401 - fixtures
from tests.stripe_server import LocalStripe, localstripe, stripe_server  # noqa: F401 - fixtures

TEST_SECRET_KEY = "test-secret-key-0123456789abcdef"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """One migrated database per backend for the whole session."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path_factory.mktemp("sqlite"))
        await migrate(url)
        yield url
        return
    url, name = await create_pg_database()
    await migrate(url)
    yield url
    await drop_pg_database(name)


@pytest.fixture(scope="session")
def settings(database_url: str, stripe_server: LocalStripe) -> Settings:  # noqa: F811
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        stripe_api_base=stripe_server.url,  # card payments go to an in-process localstripe
        # Tests reconcile when they mean to: a periodic run would settle what they hold open.
        reconcile_interval_seconds=0,
        # Every test client speaks from 127.0.0.1: the per-address login throttle would soon
        # refuse the whole suite (tests/test_login_throttle.py checks it with its own apps).
        login_max_failures_per_address=1_000_000,
    )


@pytest.fixture(scope="session")
async def services(settings: Settings) -> AsyncIterator[Services]:
    """Services for factories, sharing the database with the app under test."""
    db = Database(settings.database_url)
    built = Services.build(settings, db)
    yield built
    await built.processors.aclose()  # a test may have reconciled through them
    await db.dispose()


@pytest.fixture(scope="session")
async def served(settings: Settings) -> AsyncIterator[Running]:
    async with running(create_app(settings)) as served:
        yield served


@pytest.fixture(scope="session")
def app(served: Running) -> Any:
    return served.app


@pytest.fixture
async def api(app: Any) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://carebill.test") as http:
        yield Api(http)


@pytest.fixture
async def world(services: Services) -> World:
    return await make_world(services)


@pytest.fixture
async def other_world(services: Services) -> World:
    """A second practice: nothing of it may ever show in `world`."""
    return await make_world(services, currency="EUR")


_COUNTING: ContextVar[StatementCounter | None] = ContextVar("counting", default=None)


class StatementCounter:
    """The SQL statements run on behalf of the test that started it: tasks the test's request
    spawns inherit its context, background tasks (the alert relay) do not."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.queries())

    def queries(self) -> list[str]:
        """The statements without transaction brackets (SQLite's explicit BEGIN and friends)."""
        brackets = ("BEGIN", "COMMIT", "ROLLBACK")
        return [s for s in self.statements if not s.lstrip().upper().startswith(brackets)]

    def reset(self) -> None:
        self.statements.clear()


@pytest.fixture
def count_statements(served: Running) -> Iterator[Callable[[], StatementCounter]]:
    """`count_statements()` starts counting the SQL statements that the app's engine runs for
    the calling test from then on (a SQLAlchemy event hook)."""
    engine = served.services.db.engine.sync_engine

    def on_execute(*args: Any) -> None:
        counter = _COUNTING.get()
        if counter is not None:
            counter.statements.append(str(args[2]))

    def start() -> StatementCounter:
        counter = StatementCounter()
        _COUNTING.set(counter)
        return counter

    event.listen(engine, "before_cursor_execute", on_execute)
    yield start
    event.remove(engine, "before_cursor_execute", on_execute)
    _COUNTING.set(None)
