"""Benchmark of the reports on PostgreSQL: billingReport, agingReport, a client statement and the
invoice CSV export over 10,000 and then 100,000 invoices, through the real app (httpx's ASGI
transport, as the tests do).

    .venv/bin/python -m bench.reports [--runs 20] [--dsn postgresql://postgres@127.0.0.1:5432/postgres]

It creates a fresh database, migrates it, fills one practice (New York time, 3 providers and 3
clients, invoices in every status over 2025, with and without tax) with the tests' bulk factory,
runs ANALYZE, times each operation (`--runs` timed runs after 2 warm-ups: median and p95,
nearest rank), counts its SQL statements, and drops the database at the end. See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from sqlalchemy import text

from adapters.database import Database
from app import create_app
from bench.common import SECRET, StatementCounter, nearest_rank
from schema.node import encode_id
from schema.services import Services
from settings import Settings
from tests.asgi import running
from tests.databases import migrate
from tests.factories import World, bulk_invoices, make_world, random_invoice_specs

BILLING = """
query($from: Date!, $to: Date!) {
  billingReport(from: $from, to: $to) {
    ...F byProvider { provider { id name } ...F } byMonth { month from to ...F }
  }
}
fragment F on BillingFigures {
  invoicedCount invoiced { amount } tax { amount } collected { amount } refunded { amount }
  netCollected { amount } forgiven { amount } outstanding { amount } voidedCount voided { amount }
}
"""
AGING = """
query($asOf: Date) {
  agingReport(asOf: $asOf) {
    asOf total { amount } count buckets { label amount { amount } count }
    byClient { client { id name } total { amount } count buckets { label amount { amount } count } }
  }
}
"""
STATEMENT = """
query($id: ID!, $from: Date!, $to: Date!) {
  client(id: $id) {
    statement(from: $from, to: $to) {
      balance { amount } invoiced { amount } paid { amount } refunded { amount }
      invoices { number status total { amount } amountDue { amount } }
      payments { payment { amount { amount } } invoice { number } }
      refunds { refund { amount { amount } } invoice { number } }
    }
  }
}
"""
YEAR = {"from": "2025-01-01", "to": "2025-12-31"}


async def timed(
    name: str, call: Callable[[], Awaitable[Any]], counter: StatementCounter, runs: int
) -> dict[str, Any]:
    for _ in range(2):
        await call()
    with counter.counting() as tally:
        await call()
    statements = len(tally.queries())
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - start)
    return {
        "name": name,
        "median_ms": statistics.median(seconds) * 1000,
        "p95_ms": nearest_rank(seconds, 0.95) * 1000,
        "statements": statements,
    }


async def export_peak_memory(app: Any, token: str) -> tuple[int, int, float]:
    """(rows, peak bytes traced, seconds) of the invoice export read through the ASGI
    interface, each body message dropped once counted: the server side's own memory."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/exports/invoices.csv",
        "raw_path": b"/exports/invoices.csv",
        "root_path": "",
        "query_string": b"from=2025-01-01&to=2025-12-31",
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
    }
    done = asyncio.Event()
    sent = False
    lines = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal lines
        if message["type"] == "http.response.body":
            lines += message.get("body", b"").count(b"\r\n")
            if not message.get("more_body", False):
                done.set()

    tracemalloc.start()
    start = time.perf_counter()
    await app(scope, receive, send)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return lines - 1, peak, seconds


async def fill(world: World, count: int, seed: int) -> float:
    start = time.perf_counter()
    begin, end = datetime(2025, 1, 1, 5, tzinfo=UTC), datetime(2026, 1, 1, 5, tzinfo=UTC)
    for offset in range(0, count, 10_000):
        size = min(10_000, count - offset)
        await bulk_invoices(world, random_invoice_specs(world, size, begin, end, seed + offset))
    async with world.db.writer() as session, session.begin():
        await session.execute(text("ANALYZE"))
    return time.perf_counter() - start


async def measure(
    app: Any, http: httpx.AsyncClient, world: World, counter: StatementCounter, runs: int
) -> list[dict[str, Any]]:
    admin = await world.token(world.admin, "ADMIN")
    provider = await world.token(world.provider, "PROVIDER")
    client = await world.token(world.c1, "CLIENT")

    def post(query: str, variables: dict[str, Any], token: str) -> Callable[[], Awaitable[Any]]:
        async def call() -> Any:
            response = await http.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
            body = response.json()
            if response.status_code != 200 or body.get("errors"):
                raise RuntimeError(f"{response.status_code}: {body}")
            return body

        return call

    async def export() -> Any:
        response = await http.get(
            "/exports/invoices.csv", params=YEAR, headers={"Authorization": f"Bearer {admin}"}
        )
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text}")
        return response

    march = {"id": encode_id("Client", world.c1.id), "from": "2025-03-01", "to": "2025-03-31"}
    results = [
        await timed("billingReport, ADMIN, 2025", post(BILLING, YEAR, admin), counter, runs),
        await timed("billingReport, PROVIDER, 2025", post(BILLING, YEAR, provider), counter, runs),
        await timed(
            "agingReport, asOf 2025-12-31",
            post(AGING, {"asOf": "2025-12-31"}, admin),
            counter,
            runs,
        ),
        await timed("Client.statement, March", post(STATEMENT, march, client), counter, runs),
        await timed("invoices.csv, 2025", export, counter, max(3, runs // 4)),
    ]
    rows, peak, seconds = await export_peak_memory(app, admin)
    results.append(
        {"name": "invoices.csv under tracemalloc", "rows": rows, "peak": peak, "seconds": seconds}
    )
    return results


def print_table(count: int, filled: float, results: list[dict[str, Any]]) -> None:
    print(f"\n### {count:,} invoices (generated and analysed in {filled:.1f} s)\n")
    print("| operation | median | p95 | SQL statements |")
    print("|---|---:|---:|---:|")
    for r in results:
        if "peak" in r:
            continue
        print(
            f"| {r['name']} | {r['median_ms']:.1f} ms | {r['p95_ms']:.1f} ms | {r['statements']} |"
        )
    for r in results:
        if "peak" in r:
            print(
                f"\nCSV export of {r['rows']:,} rows: peak Python memory traced while streaming "
                f"{r['peak'] / 1e6:.1f} MB ({r['seconds']:.1f} s under tracemalloc)"
            )


async def main(dsn: str, runs: int, sizes: list[int]) -> None:
    name = f"carebill_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name
    try:
        await migrate(url)
        settings = Settings(database_url=url, secret_key=SECRET)
        db = Database(url)
        services = Services.build(settings, db)
        app = create_app(settings)
        async with running(app) as served:
            counter = StatementCounter(served.services.db.engine)
            transport = httpx.ASGITransport(app=served.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                world = await make_world(services)
                have = 0
                for size in sizes:
                    filled = await fill(world, size - have, seed=have + 1)
                    have = size
                    print_table(size, filled, await measure(app, http, world, counter, runs))
        await db.dispose()
    finally:
        admin = await asyncpg.connect(dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--sizes", default="10000,100000", help="invoice counts, ascending")
    args = parser.parse_args()
    asyncio.run(main(args.dsn, args.runs, [int(s) for s in args.sizes.split(",")]))
