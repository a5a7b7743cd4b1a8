"""The four servers of bench/compare.py, each its own process on one port of 18100-18199:
CareBill as the tests start it, the naive strawberry server, the hand-written endpoint, and
PostGraphile 4 (installed from bench/postgraphile's lock with `npm ci` when missing)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.baselines.documents import WARM
from bench.common import SECRET, descendants, port_is_free, stop
from settings import Settings
from tests.live_server import ROOT, LiveServer, start_server

PORTS = range(18100, 18200)
POSTGRAPHILE_DIR = ROOT / "bench" / "postgraphile"

CAREBILL = "CareBill"
NAIVE = "naive strawberry"
HANDWRITTEN = "hand-written Starlette"
POSTGRAPHILE = "PostGraphile 4"


@dataclass
class Contender:
    """One running server."""

    name: str
    live: LiveServer
    version: str = ""
    keep_log: bool = False  # kept when it gave answers that were not data

    @property
    def url(self) -> str:
        return self.live.http_url

    def pids(self) -> list[int]:
        """The server's process and its children (Node's, uvicorn's), alive now."""
        return [self.live.process.pid, *descendants(self.live.process.pid)]


@dataclass
class Ports:
    taken: set[int] = field(default_factory=set)

    def next(self) -> int:
        for port in PORTS:
            if port not in self.taken and port_is_free(port):
                self.taken.add(port)
                return port
        raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def _answers(url: str, process: subprocess.Popen[bytes], within: float) -> bool:
    """Whether `url`/graphql answers the warm-up document before `within` seconds pass."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and process.poll() is None:
        with suppress(httpx.HTTPError):
            response = httpx.post(f"{url}/graphql", json={"query": WARM}, trust_env=False)
            if response.status_code == 200:
                return True
        time.sleep(0.1)
    return False


def _spawn(command: list[str], port: int, env: dict[str, str], within: float) -> LiveServer:
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
        prefix=f"carebill-compare-{port}-", suffix=".log", delete=False
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CAREBILL_")}
    environ.update(env, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        command, cwd=ROOT, env=environ, stdout=log_file, stderr=subprocess.STDOUT
    )
    live = LiveServer(port=port, process=process, log_path=Path(log_file.name))
    if not _answers(live.http_url, process, within):
        log = live.log()
        stop(live)
        raise RuntimeError(f"{' '.join(command[:4])} did not start:\n{log[-3000:]}")
    return live


def start_carebill(settings: Settings, port: int) -> Contender:
    # As the tests start it (tests/live_server.py), with the default recheck of idle
    # subscriptions (there are none).
    live = start_server(settings, env={"CAREBILL_ALERT_RECHECK_MS": "10000"}, port=port)
    return Contender(CAREBILL, live)


def start_python(name: str, module: str, settings: Settings, port: int) -> Contender:
    """`uvicorn bench.baselines.<module>:create_app --factory`, 1 worker, no access log."""
    command = [sys.executable, "-m", "uvicorn", f"bench.baselines.{module}:create_app"]
    command += ["--factory", "--host=127.0.0.1", f"--port={port}"]
    command += ["--log-level=warning", "--no-access-log"]
    env = {"CAREBILL_DATABASE_URL": settings.database_url, "CAREBILL_SECRET_KEY": SECRET}
    return Contender(name, _spawn(command, port, env, within=60))


def install_postgraphile() -> str:
    """`npm ci` in bench/postgraphile when its node_modules is missing or older than the lock;
    the installed version."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed")
    marker = POSTGRAPHILE_DIR / "node_modules" / ".package-lock.json"
    lock = POSTGRAPHILE_DIR / "package-lock.json"
    if not marker.exists() or lock.stat().st_mtime > marker.stat().st_mtime:
        print("npm ci in bench/postgraphile …", file=sys.stderr)
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=POSTGRAPHILE_DIR,
            check=True,
            timeout=600,
        )
    package = POSTGRAPHILE_DIR / "node_modules" / "postgraphile" / "package.json"
    version: str = json.loads(package.read_text())["version"]
    return version


def start_postgraphile(database_url: str, port: int) -> Contender:
    """PostGraphile 4's CLI on the database's public schema: queries only, no GraphiQL, no
    query log, its default pool (10 connections)."""
    version = install_postgraphile()
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed")
    connection = database_url.replace("postgresql+asyncpg://", "postgres://", 1)
    cli = POSTGRAPHILE_DIR / "node_modules" / "postgraphile" / "cli.js"
    command = [node, str(cli), "--connection", connection, "--schema", "public"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--disable-graphiql"]
    command += ["--disable-query-log", "--disable-default-mutations"]
    live = _spawn(command, port, {"NODE_ENV": "production"}, within=120)
    return Contender(POSTGRAPHILE, live, version=version)


@dataclass
class Lineup:
    contenders: list[Contender]
    postgraphile_note: str  # why PostGraphile is not there, or its version


@contextmanager
def started(settings: Settings, *, postgraphile: bool) -> Iterator[Lineup]:
    """The servers, running; stopped at exit (their logs kept if something failed)."""
    ports = Ports()
    contenders: list[Contender] = []
    note = "not run on SQLite (PostGraphile is PostgreSQL-only)"
    try:
        contenders.append(start_carebill(settings, ports.next()))
        contenders.append(start_python(NAIVE, "naive", settings, ports.next()))
        contenders.append(start_python(HANDWRITTEN, "handwritten", settings, ports.next()))
        if postgraphile:
            try:
                contenders.append(start_postgraphile(settings.database_url, ports.next()))
                note = f"postgraphile {contenders[-1].version}"
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                note = f"PostGraphile could not be installed or run: {exc}"[:2000]
                print(note, file=sys.stderr)
        yield Lineup(contenders, note)
    finally:
        failed = sys.exc_info()[0] is not None
        for contender in contenders:
            stop(contender.live, keep_log=failed or contender.keep_log)
