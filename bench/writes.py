"""Benchmark of the two busiest mutations (not a test): `sendInvoice` and `recordPayment` at a
fixed concurrency against one uvicorn worker on 127.0.0.1, in rounds.

    .venv/bin/python bench/writes.py                        # PostgreSQL, 5 rounds, c=8
    .venv/bin/python bench/writes.py --database sqlite
    .venv/bin/python bench/writes.py --baseline /tmp/base   # interleaved with another checkout
    .venv/bin/python bench/writes.py --statements --rounds 0  # list each mutation's SQL

It creates a fresh database (PostgreSQL, dropped at the end; or a SQLite file), migrates it and
fills one practice with the tests' factories (`--invoices` paid invoices of the past year, and
one UNPAID invoice for each `recordPayment`). Each mutation is first run `--runs` times in this
process (httpx's ASGI transport, one at a time): its SQL statements, counted as the tests'
`count_statements` counts them (bench/common.py), and the CPU time of the event loop's thread.
Then one worker is started as the tests start it (tests/live_server.py's command) on a port of
`--port` onwards, and each round sends `--requests` of each mutation from `--concurrency`
clients (each sends its next request when the previous one is answered, over a kept-alive
connection). With `--baseline DIR`, a second worker runs the code checked out in DIR (the same
database; its migrations must be the same) and the rounds alternate A, B, A, B … so both see
the same load from the rest of the machine. See README.md, *Mutations at c=8*.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.database import Database
from app import create_app
from bench.common import (
    SECRET,
    StatementCounter,
    Tally,
    cpu_seconds,
    database,
    descendants,
    machine_ticks,
    stop,
)
from models.base import utcnow
from schema.node import encode_id
from schema.services import Services
from settings import Settings
from tests.asgi import running
from tests.factories import InvoiceSpec, World, bulk_invoices, make_world
from tests.live_server import ROOT, LiveServer

AMOUNT = 10_000  # each recordPayment pays one UNPAID invoice of this amount in full

SEND = """
mutation($input: SendInvoiceInput!) {
  sendInvoice(input: $input) {
    invoice { id number status total { amount } amountDue { amount } canRecordPayment }
    errors { code message }
  }
}
"""
RECORD = """
mutation($input: RecordPaymentInput!) {
  recordPayment(input: $input) {
    invoice { id status amountPaid { amount } amountDue { amount } canRecordPayment }
    errors { code message }
  }
}
"""


@dataclass
class Mutation:
    key: str
    query: str
    token: str
    next_variables: Callable[[], dict[str, Any]]
    check: Callable[[dict[str, Any]], bool]


def mutations(world: World, tokens: dict[str, str], targets: list[int]) -> list[Mutation]:
    unpaid: Iterator[int] = iter(targets)
    clients = [encode_id("User", world.c1.id), encode_id("User", world.c2.id)]
    sent = 0

    def send_variables() -> dict[str, Any]:
        nonlocal sent
        sent += 1
        return {
            "input": {
                "clientId": clients[sent % 2],
                "description": f"Session {sent}",
                "amount": AMOUNT,
                "idempotencyKey": uuid.uuid4().hex,
            }
        }

    def record_variables() -> dict[str, Any]:
        invoice_id = next(unpaid, None)
        if invoice_id is None:
            raise RuntimeError("no UNPAID invoice left for recordPayment")
        return {
            "input": {
                "invoiceId": encode_id("Invoice", invoice_id),
                "amount": AMOUNT,
                "method": "CHECK",
                "reference": f"cheque {invoice_id}",
                "idempotencyKey": uuid.uuid4().hex,
            }
        }

    def sent_ok(data: dict[str, Any]) -> bool:
        payload = data["sendInvoice"]
        return bool(payload["errors"] == [] and payload["invoice"]["amountDue"]["amount"] == AMOUNT)

    def paid_ok(data: dict[str, Any]) -> bool:
        payload = data["recordPayment"]
        return bool(payload["errors"] == [] and payload["invoice"]["status"] == "PAID")

    return [
        Mutation("sendInvoice", SEND, tokens["PROVIDER"], send_variables, sent_ok),
        Mutation("recordPayment", RECORD, tokens["PROVIDER"], record_variables, paid_ok),
    ]


async def request(http: httpx.AsyncClient, mutation: Mutation) -> None:
    headers = {"Authorization": f"Bearer {mutation.token}"}
    body = {"query": mutation.query, "variables": mutation.next_variables()}
    response = await http.post("/graphql", json=body, headers=headers)
    answer = response.json() if response.status_code == 200 else None
    if answer is None or answer.get("errors") or not mutation.check(answer["data"]):
        raise RuntimeError(f"{mutation.key}: {response.status_code} {response.text[:500]}")


# --- in process --------------------------------------------------------------------------------


@dataclass
class Profile:
    statements: list[int] = field(default_factory=list)
    round_trips: list[int] = field(default_factory=list)  # besides them: BEGIN, COMMIT, pings
    cpu_ms: list[float] = field(default_factory=list)
    sample: list[str] = field(default_factory=list)  # the statements of the last run


async def profile(
    settings: Settings, plan: list[Mutation], runs: int, cprofile: str | None = None
) -> dict[str, Profile]:
    """Each mutation `runs` times in this process after 5 warm-ups: its statements (brackets
    excluded) and the CPU time of this thread (the app and the ASGI client). With `cprofile`,
    the runs of each mutation are also profiled (`<cprofile>.<mutation>.pstats`)."""
    profiles: dict[str, Profile] = {}
    async with running(create_app(settings)) as served:
        counter = StatementCounter(served.services.db.engine, round_trips=True)
        transport = httpx.ASGITransport(app=served.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for mutation in plan:
                for _ in range(5):
                    await request(http, mutation)
                result = profiles[mutation.key] = Profile()
                profiler = cProfile.Profile(time.thread_time) if cprofile else None
                if profiler is not None:
                    profiler.enable()
                for _ in range(runs):
                    tally: Tally
                    with counter.counting() as tally:
                        cpu = time.thread_time()
                        await request(http, mutation)
                        result.cpu_ms.append((time.thread_time() - cpu) * 1000)
                        await asyncio.sleep(0)  # asyncpg's last query reports
                    result.statements.append(len(tally.queries()))
                    result.round_trips.append(tally.other_round_trips())
                    result.sample = tally.queries()
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(f"{cprofile}.{mutation.key}.pstats")
    return profiles


# --- over HTTP ---------------------------------------------------------------------------------


def start_worker(settings: Settings, port: int, code: Path) -> LiveServer:
    """One uvicorn worker on `port` running the code in `code`, as tests/live_server.py starts
    it, once it answers /healthz."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CAREBILL_")}
    environ.update(
        CAREBILL_DATABASE_URL=settings.database_url,
        CAREBILL_SECRET_KEY=settings.secret_key,
        CAREBILL_ALERT_RECHECK_MS="10000",
        PYTHONUNBUFFERED="1",
    )
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
        prefix=f"carebill-writes-{port}-", suffix=".log", delete=False
    )
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app:create_app",
        "--factory",
        "--host=127.0.0.1",
        f"--port={port}",
        "--ws=websockets-sansio",
        "--http=adapters.http_server:HeaderDeadlineProtocol",
        "--log-level=warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(
        command, cwd=code, env=environ, stdout=log_file, stderr=subprocess.STDOUT
    )
    server = LiveServer(port=port, process=process, log_path=Path(log_file.name))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{server.http_url}/healthz", trust_env=False).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    log = server.log()
    server.stop()
    raise RuntimeError(f"the worker in {code} did not start:\n{log}")


@dataclass
class Round:
    server: str
    mutation: str
    requests: int
    seconds: float
    server_cpu_s: float
    machine_busy_pct: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.server_cpu_s / self.requests * 1000


async def drive(
    server: LiveServer, label: str, mutation: Mutation, requests: int, concurrency: int
) -> Round:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=server.http_url, trust_env=False, limits=limits, timeout=120
    ) as http:
        await asyncio.gather(*(request(http, mutation) for _ in range(concurrency)))
        remaining = requests

        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await request(http, mutation)

        processes = [server.process.pid, *descendants(server.process.pid)]
        cpu_before, machine_before = cpu_seconds(processes), machine_ticks()
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        cpu_after, machine_after = cpu_seconds(processes), machine_ticks()
    total = machine_after[0] - machine_before[0]
    idle = machine_after[1] - machine_before[1]
    return Round(
        server=label,
        mutation=mutation.key,
        requests=requests,
        seconds=seconds,
        server_cpu_s=sum(cpu_after[p] - cpu_before.get(p, 0.0) for p in cpu_after),
        machine_busy_pct=round(100 * (1 - idle / (total or 1))),
    )


# --- the whole benchmark -----------------------------------------------------------------------


async def bench(args: argparse.Namespace, tmp: Path, codes: dict[str, Path]) -> dict[str, Any]:
    async with database(args.database, tmp) as url:
        settings = Settings(database_url=url, secret_key=SECRET)
        db = Database(url)
        services = Services.build(settings, db)
        world = await make_world(services)
        now = utcnow()
        history = [
            InvoiceSpec(
                client=(world.c1, world.c2)[i % 2],
                provider=world.provider,
                amount=AMOUNT,
                sent_at=now - timedelta(days=365 - i % 300, seconds=i),
                payments=((None, now - timedelta(days=300 - i % 300)),),
            )
            for i in range(args.invoices)
        ]
        await bulk_invoices(world, history)
        # One per recordPayment: the in-process ones, then each round's with its warm-ups.
        wanted = 5 + args.runs + args.rounds * len(codes) * (args.requests + args.concurrency)
        targets = await bulk_invoices(
            world,
            [
                InvoiceSpec(
                    client=(world.c1, world.c2)[i % 2],
                    provider=world.provider,
                    amount=AMOUNT,
                    sent_at=now - timedelta(days=20, seconds=i),
                )
                for i in range(wanted)
            ],
        )
        tokens = {"PROVIDER": await world.token(world.provider, "PROVIDER")}
        await db.dispose()
        plan = [m for m in mutations(world, tokens, targets) if m.key in args.mutations]
        profiles = await profile(settings, plan, args.runs, args.cprofile)
        for key, p in profiles.items():
            print(
                json.dumps(
                    {
                        "in_process": key,
                        "statements": statistics.median(p.statements),
                        "other_round_trips": statistics.median(p.round_trips),
                        "cpu_ms": round(statistics.median(p.cpu_ms), 2),
                    }
                ),
                flush=True,
            )
            if args.statements:
                for statement in p.sample:
                    print(f"  {' '.join(statement.split())[:300]}")
        rounds: list[Round] = []
        servers = {
            label: start_worker(settings, args.port + i, code)
            for i, (label, code) in enumerate(codes.items())
        }
        try:
            for _ in range(args.rounds):
                for label, server in servers.items():
                    for mutation in plan:
                        done = await drive(server, label, mutation, args.requests, args.concurrency)
                        rounds.append(done)
                        print(
                            json.dumps(
                                {
                                    "server": label,
                                    "mutation": done.mutation,
                                    "rps": round(done.rps, 1),
                                    "server_cpu_ms": round(done.cpu_ms, 2),
                                    "machine_busy_pct": done.machine_busy_pct,
                                }
                            ),
                            flush=True,
                        )
        finally:
            failed = sys.exc_info()[0] is not None
            for label, server in servers.items():
                if failed:
                    print(f"{label}:", file=sys.stderr)
                stop(server, keep_log=failed)  # its log kept when the run failed
    return {"profiles": profiles, "rounds": rounds, "servers": list(codes)}


def print_table(args: argparse.Namespace, result: dict[str, Any]) -> None:
    profiles: dict[str, Profile] = result["profiles"]
    rounds: list[Round] = result["rounds"]
    print(f"\n{args.database}, concurrency {args.concurrency}, 1 worker, {args.rounds} rounds")
    print(
        "\n| code | mutation | req/s (median) | req/s (min–max) | server CPU ms/req"
        " | in-process CPU ms/req | SQL statements | other round trips |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for label in result["servers"]:
        for key, p in profiles.items():
            mine = [r for r in rounds if r.server == label and r.mutation == key]
            if label == "this":
                statements = f"{statistics.median(p.statements):g}"
                trips = f"{statistics.median(p.round_trips):g}"
                in_process = f"{statistics.median(p.cpu_ms):.1f}"
            else:
                statements = trips = in_process = "–"
            if not mine:
                print(f"| {label} | `{key}` | – | – | – | {in_process} | {statements} | {trips} |")
                continue
            rps = [r.rps for r in mine]
            cpu = statistics.median(r.cpu_ms for r in mine)
            print(
                f"| {label} | `{key}` | {statistics.median(rps):.1f}"
                f" | {min(rps):.1f}–{max(rps):.1f} | {cpu:.1f} | {in_process}"
                f" | {statements} | {trips} |"
            )
    if len(result["servers"]) == 2:
        # Round i of one server against round i of the other: they ran back to back.
        print("\n| mutation | req/s this ÷ baseline, per round | CPU this ÷ baseline, per round |")
        print("|---|---:|---:|")
        for key in profiles:
            pairs = list(
                zip(
                    [r for r in rounds if r.server == "baseline" and r.mutation == key],
                    [r for r in rounds if r.server == "this" and r.mutation == key],
                    strict=True,
                )
            )
            if not pairs:
                continue
            faster = [this.rps / base.rps for base, this in pairs]
            leaner = [this.cpu_ms / base.cpu_ms for base, this in pairs]
            print(
                f"| `{key}` | {statistics.median(faster):.2f}"
                f" ({min(faster):.2f}–{max(faster):.2f})"
                f" | {statistics.median(leaner):.2f} ({min(leaner):.2f}–{max(leaner):.2f}) |"
            )
    busy = [r.machine_busy_pct for r in rounds]
    if busy:
        print(f"\nmachine busy during the rounds: {min(busy)}–{max(busy)} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=400, help="per mutation and round")
    parser.add_argument("--runs", type=int, default=100, help="in-process runs per mutation")
    parser.add_argument("--invoices", type=int, default=2_000, help="paid invoices beforehand")
    parser.add_argument("--port", type=int, default=18500, help="the first worker's port")
    parser.add_argument("--baseline", help="a checkout whose worker alternates with this one")
    parser.add_argument("--statements", action="store_true", help="print each one's SQL")
    parser.add_argument("--cprofile", help="profile the in-process runs into <this>.<op>.pstats")
    parser.add_argument(
        "--mutations",
        nargs="+",
        default=["sendInvoice", "recordPayment"],
        choices=["sendInvoice", "recordPayment"],
    )
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="carebill-writes-") as tmp:
        codes = {"this": ROOT}
        if args.baseline:
            codes = {"baseline": Path(args.baseline).resolve(), "this": ROOT}
        result = asyncio.run(bench(args, Path(tmp), codes))
    print_table(args, result)
    print(f"\ntotal {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
