"""The client examples of docs/clients.md work as printed: the Python `gql` client and the
TypeScript client (fetch + graphql-ws) log in, read and follow the alerts of a live server;
the TypeScript types generated from schema.graphql are up to date and type-check; the docs
quote each example file exactly."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.factories import PASSWORD, World
from tests.js_packages import ROOT, TYPESCRIPT_EXAMPLE, node
from tests.lifecycle import client_gid
from tests.live_server import SEND, LiveServer

PYTHON_EXAMPLE = ROOT / "docs" / "examples" / "python" / "carebill_client.py"
TS_BIN = TYPESCRIPT_EXAMPLE / "node_modules" / ".bin"
EXAMPLES = [
    PYTHON_EXAMPLE,
    TYPESCRIPT_EXAMPLE / "carebill-client.ts",
    TYPESCRIPT_EXAMPLE / "codegen.yml",
]


def command(language: str, server: LiveServer, world: World) -> list[str]:
    credentials = [server.http_url, world.provider.email, PASSWORD]
    if language == "python":
        return [sys.executable, str(PYTHON_EXAMPLE), *credentials, "--alerts", "1"]
    node(TYPESCRIPT_EXAMPLE)
    return [str(TS_BIN / "tsx"), str(TYPESCRIPT_EXAMPLE / "carebill-client.ts"), *credentials, "1"]


async def lines_until(stream: asyncio.StreamReader, key: str, within: float = 60) -> list[Any]:
    """The JSON lines the example prints, up to the one holding `key`."""
    deadline = time.monotonic() + within
    seen: list[Any] = []
    while time.monotonic() < deadline:
        raw = await asyncio.wait_for(stream.readline(), deadline - time.monotonic())
        if not raw:
            raise AssertionError(f"the example ended after {seen}")
        seen.append(json.loads(raw))
        if key in seen[-1]:
            return seen
    raise AssertionError(f"no {key} within {within}s: {seen}")


@pytest.mark.parametrize("language", ["python", "typescript"])
async def test_the_example_logs_in_reads_and_follows_alerts(
    live_server: LiveServer, world: World, language: str
) -> None:
    environment = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    before = int((await live_server.health())["alertSubscribers"])
    process = await asyncio.create_subprocess_exec(
        *command(language, live_server, world),
        cwd=TYPESCRIPT_EXAMPLE if language == "typescript" else ROOT,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        assert await lines_until(process.stdout, "subscribed") == [
            {"role": "PROVIDER"},
            {"unpaid": 0},
            {"subscribed": True},
        ]
        deadline = time.monotonic() + 60
        while int((await live_server.health())["alertSubscribers"]) <= before:
            assert time.monotonic() < deadline, "the example never subscribed"
            await asyncio.sleep(0.05)
        token = await world.token(world.provider, "PROVIDER")
        invoice = await live_server.change(
            SEND, token, clientId=client_gid(world.c1), description="Example", amount=5_000
        )
        (line,) = await lines_until(process.stdout, "alert")
        assert line["alert"]["kind"] == "INVOICE_SENT"
        assert line["alert"]["invoice"] == {"number": invoice["number"], "status": "UNPAID"}
        assert await asyncio.wait_for(process.wait(), 60) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        if process.returncode:
            assert process.stderr is not None
            print((await process.stderr.read()).decode())


def test_the_generated_types_match_schema_graphql() -> None:
    node(TYPESCRIPT_EXAMPLE)
    check = subprocess.run(
        [str(TS_BIN / "graphql-codegen"), "--config", "codegen.yml", "--check"],
        cwd=TYPESCRIPT_EXAMPLE,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert check.returncode == 0, "run `npm run codegen` in docs/examples/typescript\n" + (
        check.stdout + check.stderr
    )


def test_the_typescript_example_type_checks() -> None:
    node(TYPESCRIPT_EXAMPLE)
    run = subprocess.run(
        [str(TS_BIN / "tsc"), "--noEmit", "-p", "."],
        cwd=TYPESCRIPT_EXAMPLE,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def code_blocks(markdown: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"```[a-z]*\n(.*?)```", markdown, re.DOTALL)]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_the_docs_quote_the_example_exactly(example: Path) -> None:
    blocks = code_blocks((ROOT / "docs" / "clients.md").read_text())
    assert example.read_text() in blocks
