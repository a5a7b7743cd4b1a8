"""Benchmark of the GraphQL HTTP API (not a test): requests/s, latency percentiles and SQL
statements per request of four operations, against a real uvicorn server on 127.0.0.1.

    .venv/bin/python bench/api.py                                  # PostgreSQL, 1 and 2 workers
    .venv/bin/python bench/api.py --database sqlite --workers 1
    .venv/bin/python bench/api.py --scale 0.2 --concurrency 1 10   # a quick look

It creates a fresh database (PostgreSQL, dropped at the end; or a SQLite file), migrates it and
fills one practice with the tests' factories: `--invoices` invoices in every status over the past
year (bulk), the 60 newest sent one at a time through the domain model (so they carry their
history), and one UNPAID invoice for each recordPayment request. Each operation is first run in
this process (httpx's ASGI transport) to count its SQL statements and time them; then against
uvicorn — 1 worker started as the tests start it (tests/live_server.py), 2 workers through
`carebill serve --workers 2`, and with --gc-freeze 1 more worker whose app factory ends with
`gc.freeze()` (bench/gc_frozen.py) — for a fixed number of requests at each concurrency (each
"client" sends its next request when the previous one is answered, over a kept-alive
connection). See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import strawberry.schema.schema as strawberry_steps
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.database import Database
from adapters.passwords import hash_password, verify_password
from app import create_app
from bench.common import (
    SECRET,
    StatementCounter,
    Tally,
    cpu_seconds,
    database,
    descendants,
    machine_ticks,
    nearest_rank,
    pg_sessions,
    stop,
)
from models.base import utcnow
from schema.node import encode_id
from schema.services import Services
from settings import Settings
from tests.asgi import running
from tests.factories import (
    PASSWORD,
    InvoiceSpec,
    World,
    bulk_invoices,
    make_world,
    random_invoice_specs,
)
from tests.live_server import ROOT, LiveServer, free_port, start_server

PAGE = 50
NEWEST = 60  # invoices sent one at a time (with their history), the newest of the practice
TARGET_AMOUNT = 10_000  # each recordPayment pays one of these UNPAID invoices in full
# Timed requests of each operation at each concurrency (times --scale).
REQUESTS = {"invoices": 150, "invoice": 600, "recordPayment": 300, "login": 60}

FULL = """
fragment Full on Invoice {
  id number description status sentAt dueDate paidAt currency taxRateBasisPoints
  subtotal { amount currency } tax { amount } total { amount currency formatted }
  amountPaid { amount } amountRefunded { amount } amountDue { amount } refundableAmount { amount }
  client { id name email } provider { id name email }
  payments { id amount { amount } method reference receivedAt recordedBy { id name } }
  refunds { id amount { amount } reason createdAt createdBy { id name } }
  history { id action at amount { amount } note actor { id name } }
  canPay canRecordPayment canForgive canVoid canRefund
}
"""
INVOICES = (
    "query($first: Int!) { invoices(first: $first) {"
    " totalCount pageInfo { hasNextPage endCursor } edges { cursor node { ...Full } } } }" + FULL
)
INVOICE = "query($id: ID!) { invoice(id: $id) { ...Full } }" + FULL
RECORD = """
mutation($input: RecordPaymentInput!) {
  recordPayment(input: $input) {
    invoice { id status amountPaid { amount } amountDue { amount } canRecordPayment }
    errors { code message }
  }
}
"""
LOGIN = """
mutation($email: String!, $password: String!) {
  login(email: $email, password: $password, role: ADMIN) {
    token viewer { role user { id name } practice { id name } } errors { code message }
  }
}
"""


# --- the practice ------------------------------------------------------------------------------


@dataclass
class Seeded:
    world: World
    invoices: int  # in the database
    client_invoice_id: int  # one of the client's newest, paid then partly refunded
    targets: list[int]  # UNPAID invoices of the provider, one per recordPayment
    tokens: dict[str, str]
    seconds: float


async def seed(services: Services, invoices: int, targets: int) -> Seeded:
    started = time.perf_counter()
    world = await make_world(services)
    now = utcnow()
    specs = random_invoice_specs(
        world, invoices, now - timedelta(days=400), now - timedelta(days=50), seed=1
    )
    for offset in range(0, len(specs), 10_000):
        await bulk_invoices(world, specs[offset : offset + 10_000])
    target_ids = await bulk_invoices(
        world,
        [
            InvoiceSpec(
                client=(world.c1, world.c2)[i % 2],
                provider=world.provider,
                amount=TARGET_AMOUNT,
                sent_at=now - timedelta(days=45, seconds=i),
            )
            for i in range(targets)
        ],
    )
    client_invoice_id = 0
    for i in range(NEWEST):
        client = (world.c1, world.c2, world.c3)[i % 3]
        provider = world.provider2 if client is world.c3 else world.provider
        amount = 10_000 + 100 * i
        paid, refunded, forgive = {
            0: (0, 0, False),  # unpaid
            1: (4_000, 0, False),  # partly paid
            2: (amount, 0, False),  # paid
            3: (amount, 3_000, False),  # paid, partly refunded
            4: (amount, amount, False),  # refunded
            5: (2_000, 0, True),  # forgiven after a part payment
        }[i % 6]
        invoice_id = await world.invoice(
            client,
            provider,
            amount,
            days_ago=i // 3,
            paid=paid,
            refunded=refunded,
            forgive=forgive,
        )
        if client is world.c1 and i % 6 == 3 and not client_invoice_id:
            client_invoice_id = invoice_id
    async with services.db.writer() as session, session.begin():
        await session.execute(text("ANALYZE"))
    tokens = {
        "ADMIN": await world.token(world.admin, "ADMIN"),
        "PROVIDER": await world.token(world.provider, "PROVIDER"),
        "CLIENT": await world.token(world.c1, "CLIENT"),
    }
    return Seeded(
        world=world,
        invoices=invoices + targets + NEWEST,
        client_invoice_id=client_invoice_id,
        targets=target_ids,
        tokens=tokens,
        seconds=time.perf_counter() - started,
    )


# --- the operations ----------------------------------------------------------------------------


@dataclass
class Scenario:
    key: str
    label: str
    query: str
    token: str | None
    requests: int  # timed requests at each concurrency
    next_variables: Callable[[], dict[str, Any]]
    check: Callable[[dict[str, Any]], bool]  # the response's data is the expected one


def request_count(key: str, scale: float) -> int:
    return max(1, round(REQUESTS[key] * scale))


def scenarios(seeded: Seeded, scale: float) -> list[Scenario]:
    targets: Iterator[int] = iter(seeded.targets)

    def record_variables() -> dict[str, Any]:
        invoice_id = next(targets, None)
        if invoice_id is None:
            raise RuntimeError("no UNPAID invoice left for recordPayment")
        return {
            "input": {
                "invoiceId": encode_id("Invoice", invoice_id),
                "amount": TARGET_AMOUNT,
                "method": "CHECK",
                "reference": f"cheque {invoice_id}",
                "idempotencyKey": uuid.uuid4().hex,
            }
        }

    invoice_gid = encode_id("Invoice", seeded.client_invoice_id)
    login = {"email": seeded.world.admin.email, "password": PASSWORD}
    return [
        Scenario(
            "invoices",
            f"`invoices(first: {PAGE})`, ADMIN",
            INVOICES,
            seeded.tokens["ADMIN"],
            request_count("invoices", scale),
            lambda: {"first": PAGE},
            lambda data: len(data["invoices"]["edges"]) == PAGE,
        ),
        Scenario(
            "invoice",
            "`invoice(id:)`, CLIENT",
            INVOICE,
            seeded.tokens["CLIENT"],
            request_count("invoice", scale),
            lambda: {"id": invoice_gid},
            lambda data: data["invoice"] is not None and len(data["invoice"]["history"]) == 3,
        ),
        Scenario(
            "recordPayment",
            "`recordPayment` (pays in full), PROVIDER",
            RECORD,
            seeded.tokens["PROVIDER"],
            request_count("recordPayment", scale),
            record_variables,
            lambda data: (
                data["recordPayment"]["errors"] == []
                and data["recordPayment"]["invoice"]["status"] == "PAID"
            ),
        ),
        Scenario(
            "login",
            "`login` (argon2id), ADMIN",
            LOGIN,
            None,
            request_count("login", scale),
            lambda: login,
            lambda data: data["login"]["errors"] == [] and bool(data["login"]["token"]),
        ),
    ]


async def request(http: httpx.AsyncClient, scenario: Scenario) -> float:
    """Sends the scenario's next request; the seconds until its whole response was read."""
    headers = {"Authorization": f"Bearer {scenario.token}"} if scenario.token else {}
    body = {"query": scenario.query, "variables": scenario.next_variables()}
    started = time.perf_counter()
    response = await http.post("/graphql", json=body, headers=headers)
    seconds = time.perf_counter() - started
    answer = response.json() if response.status_code == 200 else None
    if answer is None or answer.get("errors") or not scenario.check(answer["data"]):
        raise RuntimeError(f"{scenario.key}: {response.status_code} {response.text[:500]}")
    return seconds


# --- in process: statements and where the time goes -------------------------------------------


@dataclass
class Profile:
    statements: list[int] = field(default_factory=list)
    checkouts: list[int] = field(default_factory=list)
    round_trips: list[int] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    parse_validate_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        def spread(values: list[int]) -> str:
            low, high = min(values), max(values)
            return str(low) if low == high else f"{low}–{high}"

        def median(values: list[float]) -> float:
            return round(statistics.median(values), 2)

        return {
            "statements": spread(self.statements),
            "checkouts": spread(self.checkouts),
            "other_round_trips": spread(self.round_trips),
            "in_process_ms": median(self.wall_ms),
            "cpu_ms": median(self.cpu_ms),
            "parse_validate_ms": median(self.parse_validate_ms),
            "waiting_ms": median([w - c for w, c in zip(self.wall_ms, self.cpu_ms, strict=True)]),
            "sql_in_flight_ms": median(self.sql_ms),
        }


@contextmanager
def graphql_steps() -> Iterator[list[float]]:
    """The seconds of each parse and validation strawberry runs in this process: its two module
    functions for these steps, wrapped during the in-process runs (the server is untouched)."""
    names = ("_parse_operation_document", "_run_validation")
    originals: dict[str, Callable[[Any], None]] = {n: getattr(strawberry_steps, n) for n in names}
    spent: list[float] = []

    def timed(step: Callable[[Any], None]) -> Callable[[Any], None]:
        def run(context: Any) -> None:
            started = time.perf_counter()
            try:
                step(context)
            finally:
                spent.append(time.perf_counter() - started)

        return run

    for name, step in originals.items():
        setattr(strawberry_steps, name, timed(step))
    try:
        yield spent
    finally:
        for name, step in originals.items():
            setattr(strawberry_steps, name, step)


async def profile(settings: Settings, plan: list[Scenario], runs: int) -> dict[str, Profile]:
    """Each operation run `runs` times in this process, one at a time, after 3 warm-ups: its SQL
    statements (transaction brackets excluded), the connections it took from the pool and the
    other round trips to the database; its wall time and the CPU time of this thread (the event
    loop: the app and the ASGI client, not asyncpg's server nor SQLite's and argon2's threads),
    the part of that CPU spent parsing and validating the document, and the wall time with a
    statement in flight."""
    app = create_app(settings)
    profiles: dict[str, Profile] = {}
    async with running(app) as served:
        counter = StatementCounter(served.services.db.engine, round_trips=True)
        transport = httpx.ASGITransport(app=served.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for scenario in plan:
                for _ in range(3):
                    await request(http, scenario)
                result = profiles[scenario.key] = Profile()
                for _ in range(runs if scenario.key != "login" else max(3, runs // 4)):
                    tally: Tally
                    with graphql_steps() as steps, counter.counting() as tally:
                        cpu = time.thread_time()
                        seconds = await request(http, scenario)
                        cpu = time.thread_time() - cpu
                        await asyncio.sleep(0)  # asyncpg's last query reports
                    result.statements.append(len(tally.queries()))
                    result.checkouts.append(tally.checkouts)
                    result.round_trips.append(tally.other_round_trips())
                    result.wall_ms.append(seconds * 1000)
                    result.cpu_ms.append(cpu * 1000)
                    result.parse_validate_ms.append(sum(steps) * 1000)
                    result.sql_ms.append(tally.sql_seconds() * 1000)
    return profiles


def argon2_cost(runs: int = 5) -> dict[str, float]:
    """One password verification as `login` does it: wall and CPU ms (its lanes run in threads,
    so CPU can exceed wall)."""
    hashed = hash_password(PASSWORD)
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        assert verify_password(hashed, PASSWORD)
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return {"wall_ms": round(statistics.median(walls), 1), "cpu_ms": round(statistics.median(cpus))}


# --- over HTTP ---------------------------------------------------------------------------------


def start_process(settings: Settings, arguments: list[str], workers: int) -> LiveServer:
    """`python -m <arguments> --port=<a free port>` serving `settings`' database, once its
    `workers` processes have each logged that the application started."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CAREBILL_")}
    environ.update(
        CAREBILL_DATABASE_URL=settings.database_url,
        CAREBILL_SECRET_KEY=settings.secret_key,
        PYTHONUNBUFFERED="1",
    )
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
        prefix=f"carebill-bench-{port}-", suffix=".log", delete=False
    )
    command = [sys.executable, "-m", *arguments, f"--port={port}"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=environ, stdout=log_file, stderr=subprocess.STDOUT
    )
    server = LiveServer(port=port, process=process, log_path=Path(log_file.name))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if server.log().count("Application startup complete") >= workers:
            return server
        time.sleep(0.1)
    log = server.log()
    stop(server)
    raise RuntimeError(f"{' '.join(arguments)} did not start:\n{log}")


@dataclass
class Server:
    label: str
    workers: int
    arguments: list[str] | None = None  # `python -m <arguments>`; None: as the tests start it

    def start(self, settings: Settings) -> LiveServer:
        if self.arguments is None:
            # The default recheck of idle subscriptions (the tests' is shorter); there are none.
            return start_server(settings, env={"CAREBILL_ALERT_RECHECK_MS": "10000"})
        return start_process(settings, self.arguments, self.workers)


def servers(workers: list[int], gc_freeze: bool) -> list[Server]:
    """1 worker as the tests start it (`uvicorn app:create_app --factory`, no access log);
    N workers through `carebill serve --workers N` (uvicorn's process manager, each worker
    calling the app factory; the command logs at INFO, so its access log is on); with
    `gc_freeze`, 1 worker again, whose app factory ends with `gc.freeze()`."""
    found = [
        Server("1", 1)
        if count == 1
        else Server(str(count), count, ["cli", "serve", f"--workers={count}"])
        for count in workers
    ]
    if gc_freeze:
        frozen = ["uvicorn", "bench.gc_frozen:create_app", "--factory", "--host=127.0.0.1"]
        frozen += ["--ws=websockets-sansio", "--log-level=info", "--no-access-log"]
        found.append(Server("1, gc.freeze()", 1, frozen))
    return found


@dataclass
class Run:
    scenario: str
    concurrency: int
    workers: int
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu: dict[int, float] = field(default_factory=dict)  # by process
    client_cpu: float = 0.0
    connections: int | None = None  # PostgreSQL sessions opened meanwhile
    machine: tuple[int, int, int] = (0, 0, 0)  # ticks: all, idle, stolen by the hypervisor
    capped: bool = False

    def summary(self) -> dict[str, Any]:
        ms = [s * 1000 for s in self.latencies]
        n = len(ms)
        return {
            "scenario": self.scenario,
            "concurrency": self.concurrency,
            "requests": n,
            "capped": self.capped,
            "rps": round(n / self.seconds, 1),
            "p50_ms": round(nearest_rank(ms, 0.50), 1),
            "p95_ms": round(nearest_rank(ms, 0.95), 1),
            "p99_ms": round(nearest_rank(ms, 0.99), 1),
            "server_cpu_ms": round(sum(self.server_cpu.values()) / n * 1000, 1),
            "client_cpu_ms": round(self.client_cpu / n * 1000, 1),
            "new_db_connections": self.connections,
            # The whole machine: busy (server, client, database and anything else) and stolen.
            "machine_busy_pct": round(100 * (1 - self.machine[1] / (self.machine[0] or 1))),
            "steal_pct": round(100 * self.machine[2] / (self.machine[0] or 1), 1),
            # The busiest processes' shares of the server's CPU (with 2 workers: how the kept-
            # alive connections were spread over them when they were accepted).
            "cpu_split": [
                round(100 * c / (sum(self.server_cpu.values()) or 1))
                for c in sorted(self.server_cpu.values(), reverse=True)[: self.workers]
            ],
        }


async def drive(
    server: LiveServer,
    workers: int,
    url: str,
    scenario: Scenario,
    concurrency: int,
    max_seconds: float,
) -> Run:
    """`scenario.requests` requests from `concurrency` clients, each sending its next request
    once the previous one is answered; no more are started after `max_seconds`."""
    run = Run(scenario.key, concurrency, workers)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=server.http_url, trust_env=False, limits=limits, timeout=120
    ) as http:
        # Warm-up: one request per connection, all at once, so every connection is open.
        await asyncio.gather(*(request(http, scenario) for _ in range(concurrency)))
        remaining = scenario.requests
        deadline = time.perf_counter() + max_seconds

        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                if time.perf_counter() > deadline:
                    run.capped = True
                    return
                remaining -= 1
                run.latencies.append(await request(http, scenario))

        processes = [server.process.pid, *descendants(server.process.pid)]
        sessions = await pg_sessions(url)
        server_cpu, client_cpu = cpu_seconds(processes), time.process_time()
        machine = machine_ticks()
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        run.seconds = time.perf_counter() - started
        (total, idle, steal), (total0, idle0, steal0) = machine_ticks(), machine
        run.machine = (total - total0, idle - idle0, steal - steal0)
        run.client_cpu = time.process_time() - client_cpu
        run.server_cpu = {
            pid: seconds - server_cpu.get(pid, 0.0)
            for pid, seconds in cpu_seconds(processes).items()
        }
        if sessions is not None:
            run.connections = (await pg_sessions(url) or 0) - sessions
    return run


# --- the whole benchmark -----------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    concurrencies: list[int] = args.concurrency
    with tempfile.TemporaryDirectory(prefix="carebill-bench-") as tmp:
        return await bench_in(args, concurrencies, Path(tmp))


async def bench_in(args: argparse.Namespace, concurrencies: list[int], tmp: Path) -> dict[str, Any]:
    async with database(args.database, tmp) as url:
        settings = Settings(database_url=url, secret_key=SECRET)
        db = Database(url)
        services = Services.build(settings, db)
        # One UNPAID invoice per recordPayment: the timed ones and one warm-up per connection at
        # each concurrency on each server, and the in-process ones (3 warm-ups and --runs).
        plan_servers = servers(args.workers, args.gc_freeze)
        writes = request_count("recordPayment", args.scale)
        targets = len(plan_servers) * sum(writes + c for c in concurrencies) + args.runs + 3
        seeded = await seed(services, args.invoices, targets)
        await db.dispose()
        print(
            f"seeded {seeded.invoices:,} invoices in {seeded.seconds:.1f} s ({args.database})",
            file=sys.stderr,
        )
        plan = [s for s in scenarios(seeded, args.scale) if s.key in args.scenarios]
        profiles = {k: p.summary() for k, p in (await profile(settings, plan, args.runs)).items()}
        for key, summary in profiles.items():
            print(json.dumps({"in_process": key} | summary), flush=True)
        runs: list[dict[str, Any]] = []
        for config in plan_servers:
            server = config.start(settings)
            try:
                for scenario in plan:
                    for concurrency in concurrencies:
                        run = await drive(
                            server, config.workers, url, scenario, concurrency, args.max_seconds
                        )
                        summary = {"server": config.label, "workers": config.workers}
                        summary |= run.summary()
                        print(json.dumps(summary), flush=True)
                        runs.append(summary)
            finally:
                stop(server, keep_log=sys.exc_info()[0] is not None)
    return {
        "database": args.database,
        "invoices": seeded.invoices,
        "labels": {s.key: s.label for s in plan},
        "profiles": profiles,
        "runs": runs,
    }


def print_tables(result: dict[str, Any], argon2: dict[str, float]) -> None:
    labels, profiles = result["labels"], result["profiles"]
    print(f"\n{result['database']}, {result['invoices']:,} invoices")
    for login in (False, True):
        rows = [r for r in result["runs"] if (r["scenario"] == "login") == login]
        if not rows:
            continue
        print("\nlogin (argon2id: slow on purpose)\n" if login else "")
        print(
            "| workers | operation | concurrency | requests | req/s | p50 ms | p95 ms | p99 ms"
            " | SQL statements | server CPU ms/req | CPU split % | new DB connections"
            " | client CPU ms/req |"
        )
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
        for r in rows:
            capped = " (time cap)" if r["capped"] else ""
            split = "/".join(str(share) for share in r["cpu_split"]) if r["workers"] > 1 else "–"
            connections = "–" if r["new_db_connections"] is None else r["new_db_connections"]
            print(
                f"| {r['server']} | {labels[r['scenario']]} | {r['concurrency']}"
                f" | {r['requests']}{capped} | {r['rps']} | {r['p50_ms']} | {r['p95_ms']}"
                f" | {r['p99_ms']} | {profiles[r['scenario']]['statements']}"
                f" | {r['server_cpu_ms']} | {split} | {connections} | {r['client_cpu_ms']} |"
            )
    steal = [r["steal_pct"] for r in result["runs"]]
    if steal:
        print(f"\nCPU stolen by the hypervisor during the runs: {min(steal)}–{max(steal)} %")
    print("\nIn process, one request at a time (medians):\n")
    print(
        "| operation | ms | CPU ms | of which parse + validate | waiting ms"
        " | SQL statements | statements in flight ms | pool checkouts | other round trips |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, p in profiles.items():
        print(
            f"| {labels[key]} | {p['in_process_ms']} | {p['cpu_ms']} | {p['parse_validate_ms']}"
            f" | {p['waiting_ms']} | {p['statements']} | {p['sql_in_flight_ms']}"
            f" | {p['checkouts']} | {p['other_round_trips']} |"
        )
    print(
        f"\nargon2id verify in this process: {argon2['wall_ms']} ms wall, {argon2['cpu_ms']} ms CPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="also 1 worker whose app factory ends with gc.freeze() (bench/gc_frozen.py)",
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument(
        "--invoices",
        type=int,
        default=5_000,
        help="invoices in every status (the 60 newest and recordPayment's come on top)",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies the requests of each run"
    )
    parser.add_argument("--runs", type=int, default=20, help="in-process runs per operation")
    parser.add_argument("--max-seconds", type=float, default=60, help="cap of each timed run")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        default=["invoices", "invoice", "recordPayment", "login"],
        choices=["invoices", "invoice", "recordPayment", "login"],
    )
    args = parser.parse_args()
    started = time.perf_counter()
    result = asyncio.run(bench(args))
    print_tables(result, argon2_cost())
    print(f"\ntotal {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
