"""Real components for the notification tests: an SMTP server (aiosmtpd) on a free port that
can answer 4xx/5xx or go away and come back, a clock the tests move, and helpers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any, TypeVar

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from adapters.dispatcher import Dispatcher, MailSettings
from adapters.mail import SmtpChannel
from app import create_app
from models import NotificationDelivery, Practice
from models.enums import DeliveryStatus
from schema.services import Services
from tests.api import Api
from tests.asgi import running
from tests.live_server import free_port

MAIL_FROM = "Demo Billing <billing@carebill.test>"
APP_URL = "https://app.carebill.test"

T = TypeVar("T")


class Mailbox:
    """An aiosmtpd handler: keeps what it accepts; `answer` (e.g. "451 4.3.0 busy") makes it
    refuse every recipient with that reply instead."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []
        self.answer: str | None = None
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.answer is not None:
            return self.answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        assert isinstance(content, bytes)
        message = message_from_bytes(content, policy=default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
            self.raw.append(content)
        return "250 Message accepted for delivery"

    def received(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)


@dataclass
class MailServer:
    """A real SMTP server on 127.0.0.1; `stop()` and `start()` again on the same port."""

    port: int = field(default_factory=free_port)
    mailbox: Mailbox = field(default_factory=Mailbox)
    controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class ManualClock:
    """A clock that moves only when the test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self.moment = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)

    def set(self, moment: datetime) -> None:
        self.moment = moment


def dispatcher(services: Services, server: MailServer, clock: ManualClock) -> Dispatcher:
    return Dispatcher(
        services.db,
        services.vault,
        SmtpChannel(server.url, MAIL_FROM, timeout=10),
        MailSettings(mail_from=MAIL_FROM, app_url=APP_URL),
        clock,
    )


async def deliveries(services: Services, practice_id: int) -> list[NotificationDelivery]:
    async with services.db.reader() as session:
        return list(
            (
                await session.execute(
                    select(NotificationDelivery)
                    .where(NotificationDelivery.practice_id == practice_id)
                    .order_by(NotificationDelivery.id)
                )
            ).scalars()
        )


async def settled(services: Services, practice_id: int) -> list[NotificationDelivery]:
    """The practice's deliveries once none is PENDING."""
    return await eventually(
        lambda: deliveries(services, practice_id),
        lambda rows: bool(rows) and all(r.status is not DeliveryStatus.PENDING for r in rows),
    )


async def eventually(
    read: Callable[[], Awaitable[T]], ok: Callable[[T], bool], within: float = 60
) -> T:
    """Polls `read` until `ok` holds (a deadline, never a fixed sleep)."""
    deadline = time.monotonic() + within
    value = await read()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"still not as expected after {within}s: {value!r}")
        await asyncio.sleep(0.05)
        value = await read()
    return value


async def set_time_zone(services: Services, practice_id: int, time_zone: str) -> None:
    async with services.db.writer() as session, session.begin():
        practice = await session.get_one(Practice, practice_id)
        practice.time_zone = time_zone


def headers(message: EmailMessage) -> dict[str, Any]:
    return {key: str(value) for key, value in message.items()}


@contextlib.asynccontextmanager
async def own_api_of(services: Services) -> AsyncIterator[Api]:
    """The app (no email channel) on `services`' database, spoken to over ASGI."""
    async with running(create_app(services.settings)) as application:
        transport = httpx.ASGITransport(app=application.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://carebill.test") as http:
            yield Api(http)


@pytest.fixture
async def own_api(own_database: Services) -> AsyncIterator[Api]:
    """The app (no email channel) on the test's own database."""
    async with own_api_of(own_database) as api:
        yield api
