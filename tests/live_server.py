"""Real servers for the alert tests: uvicorn (and redis-server) in subprocesses on free local
ports, and a websocket client speaking graphql-transport-ws (or legacy graphql-ws) to them.

`start_server` runs `uvicorn app:create_app --factory` with `CAREBILL_DATABASE_URL` pointing at
the test database and waits for `/healthz`. `RedisServer` runs a throw-away `redis-server`
that a test may stop and start again on the same port (never the machine's own on 6379).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin, Subprotocol

from adapters.database import Database
from adapters.http_server import websocket_flags
from schema.services import Services
from settings import Settings
from tests.api import Api
from tests.databases import create_pg_database, drop_pg_database, migrate, sqlite_url

ROOT = Path(__file__).resolve().parent.parent
TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
# Idle subscriptions re-check their token this often in the tests (logout ends them).
TEST_RECHECK_MS = 300

ALERT_FIELDS = "id kind occurredAt readAt invoice { id number status }"
SUBSCRIPTION = f"subscription($after: ID) {{ invoiceAlerts(after: $after) {{ {ALERT_FIELDS} }} }}"


def _lifecycle(field_name: str, input_type: str) -> str:
    return (
        f"mutation($input: {input_type}!) {{ {field_name}(input: $input) {{"
        " invoice { id number status } errors { code message } } }"
    )


SEND = _lifecycle("sendInvoice", "SendInvoiceInput")
RECORD = _lifecycle("recordPayment", "RecordPaymentInput")
FORGIVE = _lifecycle("forgiveInvoice", "InvoiceActionInput")
VOID = _lifecycle("voidInvoice", "InvoiceActionInput")
REFUND = _lifecycle("refundInvoice", "RefundInvoiceInput")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@dataclass
class LiveServer:
    """One uvicorn process serving the app."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """The whole response body, over a real TCP connection (see tests/api.py `Api`)."""
        async with httpx.AsyncClient(base_url=self.http_url, trust_env=False) as http:
            return await Api(http).post(query, variables, token)

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.http_url, trust_env=False) as http:
            return await Api(http).data(query, variables, token)

    async def change(self, operation: str, token: str, **input_fields: Any) -> dict[str, Any]:
        """The invoice ({id number status}) after a lifecycle mutation that must succeed."""
        data = await self.data(operation, {"input": input_fields}, token)
        payload: dict[str, Any] = next(iter(data.values()))
        assert payload["errors"] == [], payload
        invoice: dict[str, Any] = payload["invoice"]
        return invoice

    async def health(self) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.http_url, trust_env=False) as http:
            body: dict[str, Any] = (await http.get("/healthz")).json()
        return body


def start_server(
    settings: Settings,
    *,
    redis_url: str | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> LiveServer:
    """A uvicorn process on `port` (default: a free one) serving `settings`' database, ready
    (/healthz)."""
    port = port or free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CAREBILL_")}
    environ.update(
        CAREBILL_DATABASE_URL=settings.database_url,
        CAREBILL_SECRET_KEY=settings.secret_key,
        CAREBILL_ALERT_RECHECK_MS=str(TEST_RECHECK_MS),
        PYTHONUNBUFFERED="1",
    )
    if redis_url:
        environ["CAREBILL_REDIS_URL"] = redis_url
    environ.update(env or {})
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
        prefix=f"uvicorn-{port}-", suffix=".log", delete=False
    )
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app:create_app",
        "--factory",
        "--host=127.0.0.1",
        f"--port={port}",
        # As `carebill serve` runs it.
        *websocket_flags(),
        "--http=adapters.http_server:HeaderDeadlineProtocol",
        "--log-level=warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=environ, stdout=log_file, stderr=subprocess.STDOUT
    )
    server = LiveServer(port=port, process=process, log_path=Path(log_file.name))
    deadline = time.monotonic() + 30
    try:
        _wait_for_port(port, process, deadline)
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.http_url}/healthz", trust_env=False).status_code == 200:
                    return server
            time.sleep(0.05)
        raise RuntimeError("/healthz never answered")
    except RuntimeError as exc:
        server.stop()
        raise RuntimeError(f"uvicorn did not start: {exc}\n{server.log()}") from exc


@contextlib.contextmanager
def running_server(
    settings: Settings, *, redis_url: str | None = None, env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    server = start_server(settings, redis_url=redis_url, env=env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """One uvicorn process per database backend, in-process broker."""
    with running_server(settings) as server:
        yield server


@pytest.fixture
async def own_database(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    """A migrated database of its own on the test's backend: no relay of another test (in this
    process or in the session's live server) publishes its alerts behind the test's back."""
    name = None
    if database_url.startswith("sqlite"):
        url = sqlite_url(tmp_path)
    else:
        url, name = await create_pg_database()
    await migrate(url)
    settings = Settings(database_url=url, secret_key="relay-test-secret-key-0123456789")
    db = Database(url)
    yield Services.build(settings, db)
    await db.dispose()
    if name is not None:
        await drop_pg_database(name)


@dataclass
class RedisServer:
    """A throw-away redis-server that can be stopped and started again on the same port."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is required by the alert tests")
        self.process = subprocess.Popen(
            [
                executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.process, time.monotonic() + 10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class SocketClosed(AssertionError):
    """The server closed the socket where the test expected a message."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"socket closed: {code} {reason}")
        self.code = code
        self.reason = reason


class GraphQLSocket:
    """A graphql-transport-ws (or legacy graphql-ws) client over one websocket."""

    def __init__(self, ws: ClientConnection, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol

    @classmethod
    async def open(
        cls,
        server: LiveServer,
        *,
        protocol: str = TRANSPORT_WS,
        origin: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> GraphQLSocket:
        ws = await connect(
            server.ws_url,
            subprotocols=[Subprotocol(protocol)],
            origin=Origin(origin) if origin else None,
            additional_headers=headers,
            proxy=None,
            open_timeout=10,
        )
        return cls(ws, protocol)

    @classmethod
    async def authenticated(
        cls, server: LiveServer, token: str, *, protocol: str = TRANSPORT_WS
    ) -> GraphQLSocket:
        """A socket whose connection_init (`Authorization: Bearer <token>`) was acknowledged."""
        socket_ = await cls.open(server, protocol=protocol)
        await socket_.init({"Authorization": f"Bearer {token}"})
        message = await socket_.receive()
        assert message["type"] == "connection_ack", message
        return socket_

    async def init(self, payload: dict[str, Any] | None) -> None:
        message: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        await self.send(message)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, within: float = 10) -> dict[str, Any]:
        """The next protocol message, answering pings and skipping keep-alives."""
        while True:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), within)
            except ConnectionClosed as exc:
                code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, "")
                raise SocketClosed(code, reason) from exc
            message: dict[str, Any] = json.loads(raw)
            if message.get("type") == "ka":
                continue
            if message.get("type") == "ping":
                await self.send({"type": "pong"})
                continue
            return message

    async def subscribe(
        self, variables: dict[str, Any] | None = None, op_id: str = "1", query: str = SUBSCRIPTION
    ) -> None:
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        payload = {"query": query, "variables": variables or {}}
        await self.send({"id": op_id, "type": kind, "payload": payload})

    async def next_result(self, within: float = 10) -> dict[str, Any]:
        """The payload ({data, errors}) of the next result; fails on complete or close."""
        message = await self.receive(within)
        assert message["type"] in ("next", "data"), message
        payload: dict[str, Any] = message["payload"]
        return payload

    async def next_alert(self, within: float = 10) -> dict[str, Any]:
        payload = await self.next_result(within)
        assert not payload.get("errors"), payload
        alert: dict[str, Any] = payload["data"]["invoiceAlerts"]
        return alert

    async def alerts(self, count: int, within: float = 10) -> list[dict[str, Any]]:
        return [await self.next_alert(within) for _ in range(count)]

    async def silence(self, seconds: float = 1.0) -> None:
        """Nothing but keep-alives arrives for `seconds`."""
        with contextlib.suppress(TimeoutError):
            message = await self.receive(within=seconds)
            raise AssertionError(f"expected nothing, received {message}")

    async def closed(self, within: float = 10) -> SocketClosed:
        """Waits for the server to close the socket; its code and reason."""
        try:
            message = await self.receive(within)
        except SocketClosed as closed:
            return closed
        raise AssertionError(f"expected the socket to close, received {message}")

    async def close(self) -> None:
        await self.ws.close()


@contextlib.asynccontextmanager
async def subscribed(
    server: LiveServer, token: str, after: str | None = None, *, protocol: str = TRANSPORT_WS
) -> AsyncIterator[GraphQLSocket]:
    """An authenticated socket subscribed to invoiceAlerts (after `after`), closed at exit."""
    before = int((await server.health())["alertSubscribers"])
    socket_ = await GraphQLSocket.authenticated(server, token, protocol=protocol)
    try:
        await socket_.subscribe({"after": after})
        # Counted once its starting point is fixed: what commits from now on is delivered.
        await wait_for_subscribers(server, at_least=before + 1)
        yield socket_
    finally:
        await socket_.close()


async def wait_for_subscribers(
    server: LiveServer, at_least: int = 0, at_most: int | None = None, within: float = 10
) -> int:
    """Waits until the server counts a number of alert subscribers within bounds."""
    deadline = time.monotonic() + within
    count = -1
    while time.monotonic() < deadline:
        count = int((await server.health())["alertSubscribers"])
        if count >= at_least and (at_most is None or count <= at_most):
            return count
        await asyncio.sleep(0.02)
    raise AssertionError(f"server counts {count} alert subscribers")
