"""`carebill serve --workers N`: several worker processes need a broker between them.

Without one, each process would ring only its own subscribers and an alert committed in
another worker would wait for the idle re-check: the command refuses to start them and says
why. With Redis, alerts committed through either worker reach a subscriber at once."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from schema.services import Services
from tests.factories import World, make_world
from tests.lifecycle import client_gid
from tests.live_server import (
    ROOT,
    SEND,
    GraphQLSocket,
    LiveServer,
    RedisServer,
    free_port,
)

CAREBILL = str(Path(sys.executable).with_name("carebill"))
# Idle re-reads only every minute: an alert arriving sooner came through the broker.
RECHECK_MS = "60000"


def _serve(services: Services, *args: str, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CAREBILL_")}
    environment.update(
        CAREBILL_DATABASE_URL=services.settings.database_url,
        CAREBILL_SECRET_KEY=services.settings.secret_key,
        CAREBILL_ALERT_RECHECK_MS=RECHECK_MS,
        PYTHONUNBUFFERED="1",
        **env,
    )
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
        prefix="carebill-serve-", suffix=".log", delete=False
    )
    process = subprocess.Popen(
        [CAREBILL, "serve", *args],
        cwd=ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, Path(log.name)


def test_several_workers_without_a_broker_are_refused(own_database: Services) -> None:
    port = free_port()
    process, log = _serve(own_database, "--workers", "2", f"--port={port}")
    try:
        code = process.wait(60)
    finally:
        if process.poll() is None:  # it started after all: stop its workers with it
            process.terminate()
            process.wait(30)
    assert code == 2
    assert log.read_text() == (
        "carebill: --workers 2 needs CAREBILL_REDIS_URL: without a broker an alert committed "
        "in one worker process reaches the subscribers of the others only at their next "
        "re-check; set CAREBILL_REDIS_URL or serve with one worker\n"
    )
    with pytest.raises(httpx.ConnectError):  # nothing was started
        httpx.get(f"http://127.0.0.1:{port}/healthz", trust_env=False)


@pytest.fixture
def two_workers(own_database: Services, redis_server: RedisServer) -> Iterator[LiveServer]:
    port = free_port()
    process, log = _serve(
        own_database, "--workers", "2", f"--port={port}", CAREBILL_REDIS_URL=redis_server.url
    )
    server = LiveServer(port=port, process=process, log_path=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.http_url}/healthz", trust_env=False).status_code == 200:
                    break
            assert process.poll() is None, server.log()
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


async def test_several_workers_with_redis_deliver_alerts_at_once(
    two_workers: LiveServer, own_database: Services
) -> None:
    world: World = await make_world(own_database)
    admin = await world.token(world.admin, "ADMIN")
    provider = await world.token(world.provider, "PROVIDER")

    async def send() -> str:
        # A new connection each time: the kernel hands it to either worker.
        invoice = await two_workers.change(
            SEND, provider, clientId=client_gid(world.c1), description="Session", amount=10_000
        )
        invoice_id: str = invoice["id"]
        return invoice_id

    # A cursor before anything this test waits for: what commits after it is replayed or
    # rung, whenever the subscription's starting point is fixed.
    await send()
    inbox = await two_workers.data("{ alerts { edges { node { id } } } }", None, admin)
    ((start,),) = [inbox["alerts"]["edges"]]
    socket = await GraphQLSocket.authenticated(two_workers, admin)
    try:
        await socket.subscribe({"after": start["node"]["id"]})
        first = await send()
        # Replayed or rung: once it arrives the subscription follows the broker.
        assert (await socket.next_alert(within=30))["invoice"]["id"] == first
        for _ in range(6):
            sent = await send()
            # Well before the minute of the idle re-check, whichever worker committed it.
            assert (await socket.next_alert(within=20))["invoice"]["id"] == sent
        await socket.silence(0.5)
    finally:
        await socket.close()
