"""Benchmark of real-time invoice alerts (not a test): many websocket subscribers of one view,
one alert at a time, latency from the mutation's HTTP answer to each subscriber's receipt.

    .venv/bin/python bench/alerts.py                          # 1000 subscribers, 1 and 2 processes
    .venv/bin/python bench/alerts.py --subscribers 100 --processes 1 --mutations 10
    .venv/bin/python bench/alerts.py --database sqlite --processes 1
    .venv/bin/python bench/alerts.py --idle 200               # tracemalloc of idle sockets only
    .venv/bin/python bench/alerts.py --idle 200 --by traceback --top 40   # ... with callers

Each run gets a fresh PostgreSQL database (or SQLite with --database sqlite), starts uvicorn as
`carebill serve` runs it (one process, or two sharing the database and a throw-away
redis-server), and opens N websocket subscriptions (graphql-transport-ws) as ADMINs of the
practice, one admin user each by default (`--users` fewer): everyone sees every alert, one
view. Subscriptions are spread evenly over the processes. Invoices are then sent one by one
through process 1; the next goes once every subscriber has the previous alert.

Reported per run: over the alerts, the latency of the LAST subscriber to receive each one
("last": what the slowest subscriber waits), and over every receipt ("all"), p50/p95/p99
(nearest rank) and the maximum; the server CPU per alert (user + system time of every server
process during the timed alerts, divided by their number) and the client's; RSS growth of each
server process per idle subscribed socket, over all of them and over all but the first tenth
(whose handshakes also open the pool's connections). The database is ANALYZEd once seeded, as
a running one is. The client is lean on purpose (websockets' sans-I/O
protocol on plain asyncio protocols, a receipt's time taken when its bytes arrive) and offers
permessage-deflate as browsers do, so what it measures is the server.

`--idle N` instead runs the app in this process under tracemalloc, opens N idle subscribed
sockets from a child process, and reports the Python memory the server holds per socket
(snapshot difference), by where it was allocated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import text
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.database import Database
from bench.common import SECRET, database, nearest_rank
from models import Membership, User
from models.enums import Role
from resolvers import sessions
from schema.node import encode_id
from schema.services import Services
from settings import Settings
from tests.factories import World, make_world
from tests.live_server import SEND, LiveServer, RedisServer, start_server

SUBSCRIPTION = (
    "subscription { invoiceAlerts { id kind occurredAt readAt invoice { id number status } } }"
)
INVOICE_ID = re.compile(rb'"invoice":\s*\{"id":\s*"([^"]+)"')
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# How long every subscriber may take to receive one alert before the run fails.
ALERT_TIMEOUT = float(os.environ.get("BENCH_ALERT_TIMEOUT", "300"))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Receipts:
    """When each subscriber received the alert of each invoice."""

    expected: int
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    complete: dict[str, asyncio.Event] = field(default_factory=dict)

    def event(self, invoice_id: str) -> asyncio.Event:
        return self.complete.setdefault(invoice_id, asyncio.Event())

    def record(self, invoice_id: str, at: float) -> None:
        stamps = self.times[invoice_id]
        stamps.append(at)
        if len(stamps) == self.expected:
            self.event(invoice_id).set()


class Subscriber(asyncio.Protocol):
    """One graphql-transport-ws subscription on websockets' sans-I/O client protocol: no task
    and no queue per socket, each frame handled as its bytes arrive."""

    def __init__(self, url: str, token: str, receipts: Receipts | None) -> None:
        self.protocol = ClientProtocol(
            parse_uri(url),
            subprotocols=[Subprotocol("graphql-transport-ws")],
            extensions=[ClientPerMessageDeflateFactory()],
            max_size=2**20,
        )
        self.token = token
        self.receipts = receipts
        self.transport: asyncio.Transport | None = None
        self.subscribed = asyncio.get_running_loop().create_future()
        self.deflate = False
        self.closing = False

    def itself(self) -> Subscriber:
        """The protocol factory of this one connection."""
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)

    def _send(self, message: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        self._flush()

    def data_received(self, data: bytes) -> None:
        at = time.perf_counter()
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if event.status_code != 101:
                    self._fail(f"handshake refused: {event.status_code}")
                    return
                self.deflate = "permessage-deflate" in event.headers.get(
                    "Sec-WebSocket-Extensions", ""
                )
                self._send({"type": "connection_init", "payload": {"token": self.token}})
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self._message(bytes(event.data), at)
        self._flush()

    def _message(self, raw: bytes, at: float) -> None:
        if self.receipts is not None and b'"next"' in raw:
            found = INVOICE_ID.search(raw)
            if found is None:
                self._fail(f"unexpected: {raw[:300]!r}")
                return
            self.receipts.record(found.group(1).decode(), at)
            return
        message = json.loads(raw)
        if message["type"] == "connection_ack":
            subscribe = {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}
            self._send(subscribe)
            if not self.subscribed.done():
                self.subscribed.set_result(None)
        elif message["type"] == "ping":
            self._send({"type": "pong"})
        elif message["type"] not in ("pong", "next"):
            self._fail(f"unexpected: {message}")

    def _fail(self, reason: str) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(RuntimeError(reason))
        else:
            print(f"subscriber failed: {reason}", file=sys.stderr)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self._fail(f"connection lost: {exc}")

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


async def open_subscribers(
    urls: list[str],
    tokens: list[str],
    receipts: Receipts | None,
    within: float = 60,
    at_once: int = 50,
) -> list[Subscriber]:
    """Subscriptions for every token, round robin over `urls`, `at_once` handshakes at a time."""
    loop = asyncio.get_running_loop()
    opened: list[Subscriber] = []
    for start in range(0, len(tokens), at_once):
        batch = []
        for i in range(start, min(start + at_once, len(tokens))):
            url = urls[i % len(urls)]
            address = urlparse(url)
            assert address.hostname is not None
            assert address.port is not None
            subscriber = Subscriber(url, tokens[i], receipts)
            await loop.create_connection(subscriber.itself, address.hostname, address.port)
            opened.append(subscriber)
            batch.append(subscriber.subscribed)
        await asyncio.wait_for(asyncio.gather(*batch), within)
    return opened


async def admins(services: Services, world: World, count: int) -> list[str]:
    """Tokens of `count` new ADMIN users of the world's practice (issued directly)."""
    tokens = []
    async with services.db.writer() as session, session.begin():
        users = [
            User(email=f"bench-admin-{world.practice_id}-{i}@example.com", name=f"Admin {i}")
            for i in range(count)
        ]
        session.add_all(users)
        await session.flush()
        session.add_all(
            Membership(user_id=u.id, practice_id=world.practice_id, role=Role.ADMIN) for u in users
        )
        await session.flush()
        for user in users:
            token, _ = await sessions.issue(
                session, services, user.id, world.practice_id, Role.ADMIN
            )
            tokens.append(token)
    return tokens


async def analyze(services: Services) -> None:
    """The planner's statistics, as a running database has them (autovacuum analyzes a table
    within a minute of this many new rows). Without them PostgreSQL plans the feed's check of
    a thousand sessions as a nested loop over the practice's memberships: 35 ms of its CPU per
    alert, where the plan it picks with them takes 1 ms."""
    async with services.db.writer() as session, session.begin():
        await session.execute(text("ANALYZE"))


async def live_count(servers: list[LiveServer]) -> int:
    return sum([int((await s.health())["alertSubscribers"]) for s in servers])


async def started(servers: list[LiveServer], count: int) -> None:
    """Until `count` subscriptions are past their starting point."""
    for _ in range(1200):
        if await live_count(servers) >= count:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"only {await live_count(servers)} of {count} subscriptions started")


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(nearest_rank(values, 0.50), 1),
        "p95": round(nearest_rank(values, 0.95), 1),
        "p99": round(nearest_rank(values, 0.99), 1),
        "max": round(max(values), 1),
    }


def profile_process(pid: int, path: str | None) -> subprocess.Popen[bytes] | None:
    """py-spy (when installed) sampling server `pid` into `path`, folded stacks."""
    if path is None:
        return None
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "-p", str(pid), "-o", path, "-f", "raw", "-r", "200"]
    spy_process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    return spy_process


async def run(
    kind: str,
    processes: int,
    subscribers: int,
    mutations: int,
    users: int,
    profile: str | None = None,
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="carebill-bench-"))
    async with database(kind, tmp) as url:
        settings = Settings(database_url=url, secret_key=SECRET)
        db = Database(url)
        services = Services.build(settings, db)
        world: World = await make_world(services)
        provider = await world.token(world.provider, "PROVIDER")
        admin_tokens = await admins(services, world, min(users, subscribers))
        tokens = [admin_tokens[i % len(admin_tokens)] for i in range(subscribers)]
        await analyze(services)
        await db.dispose()
        redis = RedisServer() if processes > 1 else None
        if redis:
            redis.start()
        env = {
            "CAREBILL_ALERT_RECHECK_MS": "10000",
            "CAREBILL_MAX_SUBSCRIPTIONS_PER_USER": str(subscribers),
        }
        servers = [
            start_server(settings, redis_url=redis.url if redis else None, env=env)
            for _ in range(processes)
        ]
        opened: list[Subscriber] = []
        try:
            gid_client = encode_id("Client", world.c1.id)

            async def send() -> tuple[str, float]:
                data = await servers[0].data(
                    SEND,
                    {"input": {"clientId": gid_client, "description": "Bench", "amount": 5_000}},
                    provider,
                )
                return data["sendInvoice"]["invoice"]["id"], time.perf_counter()

            await send()  # warm up: first request, first queries, first alert
            await asyncio.sleep(1.5)
            rss_before = [rss_kib(s.process.pid) for s in servers]

            receipts = Receipts(expected=subscribers)
            urls = [s.ws_url for s in servers]
            # A tenth first: its handshakes also open the pool's connections (and, on SQLite,
            # fill their page caches), once per process, not per socket.
            first = max(processes, subscribers // 10 // processes * processes)
            opened_at = time.perf_counter()
            opened = await open_subscribers(urls, tokens[:first], receipts)
            await started(servers, first)
            open_seconds = time.perf_counter() - opened_at
            await asyncio.sleep(2)
            rss_first = [rss_kib(s.process.pid) for s in servers]
            opened_at = time.perf_counter()
            opened += await open_subscribers(urls, tokens[first:], receipts)
            await started(servers, subscribers)
            open_seconds += time.perf_counter() - opened_at
            await asyncio.sleep(2)
            rss_after = [rss_kib(s.process.pid) for s in servers]
            per_connection_kib = [
                (after - before) / (subscribers / processes)
                for before, after in zip(rss_before, rss_after, strict=True)
            ]
            per_later_connection_kib = [
                (after - before) / ((subscribers - first) / processes)
                for before, after in zip(rss_first, rss_after, strict=True)
            ]
            # Two alerts more to warm up what 1000 subscribers first touch.
            for _ in range(2):
                invoice_id, _answered = await send()
                await asyncio.wait_for(receipts.event(invoice_id).wait(), ALERT_TIMEOUT)
                await asyncio.sleep(0.2)

            last: list[float] = []
            every: list[float] = []
            profiler = profile_process(servers[0].process.pid, profile)
            cpu_before = [cpu_seconds(s.process.pid) for s in servers]
            client_before = time.process_time()
            for _ in range(mutations):
                invoice_id, answered = await send()
                await asyncio.wait_for(receipts.event(invoice_id).wait(), ALERT_TIMEOUT)
                stamps = [(t - answered) * 1000 for t in receipts.times[invoice_id]]
                every += stamps
                last.append(max(stamps))
                await asyncio.sleep(0.2)
            client_cpu = time.process_time() - client_before
            server_cpu = [
                cpu_seconds(s.process.pid) - before
                for s, before in zip(servers, cpu_before, strict=True)
            ]
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(60)
            deflate = any(s.deflate for s in opened)
        finally:
            for subscriber in opened:
                subscriber.close()
            for server in servers:
                server.stop()
            if redis:
                redis.stop()
    return {
        "database": kind,
        "processes": processes,
        "subscribers": subscribers,
        "users": min(users, subscribers),
        "mutations": mutations,
        "permessage_deflate": deflate,
        "open_seconds": round(open_seconds, 1),
        "last_ms": summary(last),
        "all_ms": summary(every),
        "server_cpu_ms_per_alert": [round(c * 1000 / mutations, 1) for c in server_cpu],
        "client_cpu_ms_per_alert": round(client_cpu * 1000 / mutations, 1),
        "rss_kib_per_idle_connection": [round(x, 1) for x in per_connection_kib],
        "rss_kib_per_idle_connection_after_first_tenth": [
            round(x, 1) for x in per_later_connection_kib
        ],
    }


async def hold(url: str, tokens: list[str]) -> None:
    """The child of `--idle`: open the subscriptions, say so, keep them until stdin closes."""
    # Under tracemalloc the server is slow: a few handshakes at a time, or they queue for the pool.
    opened = await open_subscribers([url], tokens, None, within=900, at_once=5)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for subscriber in opened:
        subscriber.close()


async def idle(kind: str, count: int, by: str = "filename", top_n: int = 12) -> dict[str, Any]:
    """Python memory the server holds per idle subscribed socket (tracemalloc, in-process)."""
    import uvicorn

    from adapters.http_server import websocket_options
    from app import create_app
    from tests.live_server import free_port

    tmp = Path(tempfile.mkdtemp(prefix="carebill-bench-"))
    async with database(kind, tmp) as url:
        settings = Settings(
            database_url=url, secret_key=SECRET, max_subscriptions_per_user=count + 1
        )
        services = Services.build(settings)
        world = await make_world(services)
        tokens = await admins(services, world, count)
        await services.db.dispose()
        port = free_port()
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            http="adapters.http_server:HeaderDeadlineProtocol",
            **websocket_options(),
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn has no event for it
            await asyncio.sleep(0.05)
        child = None
        try:
            # One socket first: what the first one allocates once (caches) is not per socket.
            tracemalloc.start(25)
            token_file = tmp / "tokens"
            token_file.write_text("\n".join(tokens))
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--hold",
                f"ws://127.0.0.1:{port}/graphql",
                str(token_file),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert child.stdout is not None
            assert child.stdin is not None
            await asyncio.sleep(1)
            before = tracemalloc.take_snapshot()
            line = await asyncio.wait_for(child.stdout.readline(), 900)
            assert line.strip() == b"ready", line
            await asyncio.sleep(2)
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            child.stdin.close()
            await child.wait()
            child = None
        finally:
            if child is not None:
                child.kill()
            server.should_exit = True
            await serving
    by_place = after.compare_to(before, by)
    total = sum(stat.size_diff for stat in by_place)

    def place(frame: tracemalloc.Frame) -> str:
        where = frame.filename if by == "filename" else f"{frame.filename}:{frame.lineno}"
        return where.split("site-packages/")[-1]

    top = [
        {
            # By traceback: the allocation, then its callers (at most 8).
            "where": " < ".join(place(frame) for frame in list(stat.traceback)[::-1][:8]),
            "kib_per_socket": round(stat.size_diff / count / 1024, 2),
        }
        for stat in by_place[:top_n]
    ]
    return {
        "database": kind,
        "idle_sockets": count,
        "python_kib_per_socket": round(total / count / 1024, 1),
        "top": top,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1000])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--mutations", type=int, default=20)
    parser.add_argument("--users", type=int, default=10**9, help="distinct admins (default: N)")
    parser.add_argument("--idle", type=int, help="only tracemalloc N idle sockets in-process")
    parser.add_argument(
        "--by", choices=["filename", "lineno", "traceback"], default="filename", help="--idle"
    )
    parser.add_argument("--top", type=int, default=12, help="--idle: how many places")
    parser.add_argument("--profile", help="py-spy's folded stacks of process 1 into this file")
    parser.add_argument("--hold", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold:
        url, token_file = args.hold
        asyncio.run(hold(url, Path(token_file).read_text().split()))
        return
    if args.idle:
        print(json.dumps(asyncio.run(idle(args.database, args.idle, args.by, args.top)), indent=1))
        return
    results = []
    for processes in args.processes:
        for subscribers in args.subscribers:
            result = asyncio.run(
                run(
                    args.database,
                    processes,
                    subscribers,
                    args.mutations,
                    args.users,
                    args.profile,
                )
            )
            print(json.dumps(result), flush=True)
            results.append(result)
    print()
    print(
        "| database | processes | subscribers | last p50 / p95 / p99 / max ms"
        " | all p50 / p95 / p99 ms | server CPU ms per alert | RSS KiB per idle socket"
        " (all / after the first tenth) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        last, every = r["last_ms"], r["all_ms"]
        rss = " / ".join(f"{x:.0f}" for x in r["rss_kib_per_idle_connection"])
        later = " / ".join(f"{x:.0f}" for x in r["rss_kib_per_idle_connection_after_first_tenth"])
        rss = f"{rss} ({later})"
        cpu = " + ".join(f"{x:.0f}" for x in r["server_cpu_ms_per_alert"])
        print(
            f"| {r['database']} | {r['processes']} | {r['subscribers']}"
            f" | {last['p50']} / {last['p95']} / {last['p99']} / {last['max']}"
            f" | {every['p50']} / {every['p95']} / {every['p99']} | {cpu} | {rss} |"
        )


if __name__ == "__main__":
    main()
