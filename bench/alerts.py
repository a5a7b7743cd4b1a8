"""Benchmark of real-time invoice alerts (not a test): many websocket subscribers, one alert at a
time, latency from the mutation's HTTP response to each subscriber's receipt of its alert.

    .venv/bin/python bench/alerts.py          # 100 and 1000 subscribers, 1 and 2 processes
    .venv/bin/python bench/alerts.py --subscribers 100 --processes 1 --mutations 10

Each run gets a fresh PostgreSQL database (or SQLite with --database sqlite), starts uvicorn
(one process, or two sharing the database and a throw-away redis-server), opens N websocket
subscriptions as the practice's ADMIN (everyone receives every alert: the worst fan-out),
spread evenly over the processes, then sends invoices one by one through process 1 and waits
until every subscriber has the alert before the next. Memory per idle connection is the growth
of each server's RSS while the N subscriptions were opened, divided by N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.database import Database
from bench.common import SECRET, database
from schema.node import encode_id
from schema.services import Services
from settings import Settings
from tests.factories import World, make_world
from tests.live_server import SEND, LiveServer, RedisServer, start_server

SUBSCRIPTION = "subscription { invoiceAlerts { id kind invoice { id } } }"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@dataclass
class Receipts:
    """When each subscriber received the alert of each invoice."""

    expected: int
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    complete: dict[str, asyncio.Event] = field(default_factory=dict)

    def event(self, invoice_id: str) -> asyncio.Event:
        return self.complete.setdefault(invoice_id, asyncio.Event())

    def record(self, invoice_id: str) -> None:
        stamps = self.times[invoice_id]
        stamps.append(time.perf_counter())
        if len(stamps) == self.expected:
            self.event(invoice_id).set()


async def subscriber(url: str, token: str, receipts: Receipts, ready: asyncio.Event) -> None:
    ws: ClientConnection
    async with connect(
        url, subprotocols=[Subprotocol("graphql-transport-ws")], proxy=None, open_timeout=60
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        ack = json.loads(await ws.recv())
        assert ack["type"] == "connection_ack", ack
        subscribe = {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}
        await ws.send(json.dumps(subscribe))
        ready.set()
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "next":
                alert = message["payload"]["data"]["invoiceAlerts"]
                receipts.record(alert["invoice"]["id"])
            elif message["type"] == "ping":
                await ws.send(json.dumps({"type": "pong"}))


async def live_count(servers: list[LiveServer]) -> int:
    return sum([int((await s.health())["alertSubscribers"]) for s in servers])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def run(kind: str, processes: int, subscribers: int, mutations: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="carebill-bench-"))
    async with database(kind, tmp) as url:
        settings = Settings(database_url=url, secret_key=SECRET)
        db = Database(url)
        world: World = await make_world(Services.build(settings, db))
        admin = await world.token(world.admin, "ADMIN")
        provider = await world.token(world.provider, "PROVIDER")
        await db.dispose()
        redis = RedisServer() if processes > 1 else None
        if redis:
            redis.start()
        servers = [
            start_server(
                settings,
                redis_url=redis.url if redis else None,
                env={"CAREBILL_ALERT_RECHECK_MS": "10000"},
            )
            for _ in range(processes)
        ]
        tasks: list[asyncio.Task[None]] = []
        try:
            gid_client = encode_id("Client", world.c1.id)

            async def send() -> tuple[str, float, float]:
                started = time.perf_counter()
                data = await servers[0].data(
                    SEND,
                    {"input": {"clientId": gid_client, "description": "Bench", "amount": 5_000}},
                    provider,
                )
                answered = time.perf_counter()
                return data["sendInvoice"]["invoice"]["id"], started, answered

            await send()  # warm up: first request, first queries, first alert
            await asyncio.sleep(1.5)
            rss_before = [rss_kib(s.process.pid) for s in servers]

            receipts = Receipts(expected=subscribers)
            opened = time.perf_counter()
            for start in range(0, subscribers, 50):
                batch = []
                for i in range(start, min(start + 50, subscribers)):
                    ready = asyncio.Event()
                    target = servers[i % processes]
                    tasks.append(
                        asyncio.create_task(subscriber(target.ws_url, admin, receipts, ready))
                    )
                    batch.append(ready.wait())
                await asyncio.gather(*batch)
            for _ in range(1200):  # every subscription past its starting point
                if await live_count(servers) >= subscribers:
                    break
                await asyncio.sleep(0.05)
            open_seconds = time.perf_counter() - opened
            await asyncio.sleep(2)
            rss_after = [rss_kib(s.process.pid) for s in servers]
            per_connection_kib = [
                (after - before) / (subscribers / processes)
                for before, after in zip(rss_before, rss_after, strict=True)
            ]

            from_response: list[float] = []
            from_request: list[float] = []
            for _ in range(mutations):
                invoice_id, started, answered = await send()
                await asyncio.wait_for(receipts.event(invoice_id).wait(), 120)
                stamps = receipts.times[invoice_id]
                from_response += [(t - answered) * 1000 for t in stamps]
                from_request += [(t - started) * 1000 for t in stamps]
                await asyncio.sleep(0.2)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for server in servers:
                server.stop()
            if redis:
                redis.stop()
    return {
        "database": kind,
        "processes": processes,
        "subscribers": subscribers,
        "mutations": mutations,
        "samples": len(from_response),
        "open_seconds": round(open_seconds, 1),
        "p50_ms": round(statistics.median(from_response), 1),
        "p99_ms": round(percentile(from_response, 0.99), 1),
        "max_ms": round(max(from_response), 1),
        "p50_from_request_ms": round(statistics.median(from_request), 1),
        "p99_from_request_ms": round(percentile(from_request, 0.99), 1),
        "rss_kib_per_idle_connection": [round(x, 1) for x in per_connection_kib],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--subscribers", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--mutations", type=int, default=20)
    args = parser.parse_args()
    results = []
    for processes in args.processes:
        for subscribers in args.subscribers:
            result = asyncio.run(run(args.database, processes, subscribers, args.mutations))
            print(json.dumps(result), flush=True)
            results.append(result)
    print()
    print(
        "| processes | subscribers | p50 ms | p99 ms | max ms | p50 / p99 from request ms"
        " | RSS KiB per idle connection | open N s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        rss = " / ".join(f"{x:.0f}" for x in r["rss_kib_per_idle_connection"])
        print(
            f"| {r['processes']} | {r['subscribers']} | {r['p50_ms']} | {r['p99_ms']}"
            f" | {r['max_ms']} | {r['p50_from_request_ms']} / {r['p99_from_request_ms']}"
            f" | {rss} | {r['open_seconds']} |"
        )


if __name__ == "__main__":
    main()
