"""A real browser is the user: headless Chromium (Debian's `chromium`, driven by playwright-core
from tests/js/browser/) opens a front end served from another localhost port that logs in,
queries, downloads a CSV export and subscribes; a page of an origin CareBill does not admit
can read nothing; GraphiQL renders and runs a query and a subscription without internet (every
request leaving the loopback is refused and recorded). The tests fail, never skip, when
chromium or the npm packages are missing (`make test` installs them: scripts/ensure-js.sh)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from settings import Settings
from tests.factories import PASSWORD, World
from tests.js_packages import JS, node
from tests.lifecycle import client_gid
from tests.live_server import SEND, LiveServer, running_server

PAGES = Path(__file__).resolve().parent / "browser"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the test's output."""


@contextlib.contextmanager
def static_server() -> Iterator[str]:
    """The front end's dev server: tests/browser/ on a free localhost port (another origin)."""
    handler = functools.partial(_Quiet, directory=str(PAGES))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def browse(script: str, *args: str) -> dict[str, Any]:
    """What tests/js/browser/<script> reports after driving chromium."""
    if shutil.which("chromium") is None:
        raise RuntimeError("chromium is required: apt-get install chromium (scripts/ensure-js.sh)")
    process = await asyncio.create_subprocess_exec(
        node(),
        str(JS / "browser" / script),
        *args,
        cwd=JS,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    assert result["outside"] == [], result["outside"]
    return result


def page_url(site: str, server: LiveServer, world: World) -> str:
    query = {
        "api": server.http_url,
        "email": world.provider.email,
        "password": PASSWORD,
        "client": client_gid(world.c1),
    }
    return f"{site}/frontend.html?{urlencode(query)}"


async def test_a_front_end_on_another_origin_logs_in_queries_and_subscribes(
    live_server: LiveServer, world: World
) -> None:
    with static_server() as site:
        page = (await browse("frontend.mjs", page_url(site, live_server, world)))["page"]
    assert "error" not in page, page
    assert page["role"] == "PROVIDER"
    assert page["get"] == {"status": 200, "body": {"data": {"viewer": {"role": "PROVIDER"}}}}
    assert page["csv"]["status"] == 200
    assert page["csv"]["header"].startswith("number,sent_at")
    assert page["csv"]["disposition"].startswith("attachment")
    assert page["sent"]["errors"] == []
    alert = page["alert"]["data"]["invoiceAlerts"]
    assert alert["kind"] == "INVOICE_SENT"
    assert alert["invoice"]["id"] == page["sent"]["invoice"]["id"]
    assert page["socket"] == "open"


async def test_a_page_of_an_origin_not_admitted_reads_nothing(
    settings: Settings, world: World
) -> None:
    env = {"CAREBILL_ALLOWED_ORIGINS": "https://app.example.test"}
    with running_server(settings, env=env) as server, static_server() as site:
        page = (await browse("frontend.mjs", page_url(site, server, world)))["page"]
    assert page["error"] == "TypeError: Failed to fetch"
    assert "role" not in page
    assert page["socket"] == "refused"


async def test_graphiql_works_offline(
    live_server: LiveServer, world: World, tmp_path: Path
) -> None:
    token = await world.token(world.provider, "PROVIDER")
    send = {
        "query": SEND,
        "variables": {
            "input": {"clientId": client_gid(world.c2), "description": "GraphiQL", "amount": 900}
        },
    }
    screenshot = tmp_path / "graphiql.png"
    result = await browse(
        "graphiql.mjs", f"{live_server.http_url}/graphql", token, json.dumps(send), str(screenshot)
    )
    assert json.loads(result["query"]) == {
        "data": {"viewer": {"role": "PROVIDER", "user": {"email": world.provider.email}}}
    }
    invoice = result["sent"]["data"]["sendInvoice"]["invoice"]
    assert json.loads(result["subscription"]) == {
        "data": {
            "invoiceAlerts": {"kind": "INVOICE_SENT", "invoice": {"number": invoice["number"]}}
        }
    }
    assert screenshot.stat().st_size > 10_000
    assert not [line for line in result["console"] if line.startswith("pageerror")]
