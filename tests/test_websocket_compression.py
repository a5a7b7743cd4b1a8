"""Websockets are served uncompressed: permessage-deflate would keep a compressor and a
decompressor per socket, held by every idle subscriber, and compress each alert once per
subscriber. A client that offers it (browsers and `websockets` do) is answered without it, by
`carebill serve` and by the tests' live servers alike (adapters/http_server.py)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from schema.services import Services
from tests.live_server import ROOT, TRANSPORT_WS, LiveServer, free_port

CAREBILL = str(Path(sys.executable).with_name("carebill"))


def _negotiated_extensions(ws_url: str) -> str | None:
    with connect(
        ws_url,
        subprotocols=[Subprotocol(TRANSPORT_WS)],
        compression="deflate",  # offered, as browsers do
        proxy=None,
        open_timeout=10,
    ) as ws:
        assert ws.response is not None
        assert ws.subprotocol == TRANSPORT_WS
        return ws.response.headers.get("Sec-WebSocket-Extensions")


def test_the_tests_servers_do_not_compress_sockets(live_server: LiveServer) -> None:
    assert _negotiated_extensions(live_server.ws_url) is None


def test_carebill_serve_does_not_compress_sockets(own_database: Services) -> None:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CAREBILL_")}
    environment.update(
        CAREBILL_DATABASE_URL=own_database.settings.database_url,
        CAREBILL_SECRET_KEY=own_database.settings.secret_key,
    )
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [CAREBILL, "serve", f"--port={port}"],
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert process.poll() is None, "carebill serve exited"
                with contextlib.suppress(httpx.HTTPError):
                    url = f"http://127.0.0.1:{port}/healthz"
                    if httpx.get(url, trust_env=False).status_code == 200:
                        break
                time.sleep(0.1)
            assert _negotiated_extensions(f"ws://127.0.0.1:{port}/graphql") is None
        finally:
            process.terminate()
            process.wait(30)
