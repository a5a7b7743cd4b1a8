"""The read path in process (not a test): CPU, SQL statements, round trips and connections of one
`invoices(first: 50)` as ADMIN and one `invoice(id:)` as CLIENT, and the exact answers of a set
of read queries, against a database seeded once and kept between runs so that two versions of
the code can be compared on the same rows (answers byte for byte).

    .venv/bin/python bench/read_path.py seed state.json        # a PostgreSQL database, seeded
    .venv/bin/python bench/read_path.py measure state.json --dump answers.json
    .venv/bin/python bench/read_path.py measure state.json --profile invoices   # pyinstrument
    .venv/bin/python bench/read_path.py measure state.json --shares invoices    # by component
    .venv/bin/python bench/read_path.py drop state.json

`measure` prints, per operation (medians over --runs, one request at a time after warm-ups):
the CPU ms of this thread per request (the app and the ASGI client), the Python function calls
of one request (steady whatever else the machine runs, unlike CPU time), the SQL statements, the
pool checkouts and the other round trips (BEGIN/ROLLBACK/pings), the new connections the pool
opened, then the same operation at --concurrency clients at once in this process: requests/s
(in process, so only a ratio between versions) and the connections the pool opened meanwhile.
See README.md, "Read path: what each change bought".
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.database import Database
from app import create_app
from bench.api import INVOICE, INVOICES, seed
from bench.common import SECRET, StatementCounter
from schema.node import encode_id
from schema.services import Services
from settings import Settings
from tests.asgi import running
from tests.databases import create_pg_database, drop_pg_database, migrate

# More shapes than the two measured operations, for the answers' comparison.
CORPUS = {
    "page": """{ invoices(first: 20) { totalCount edges { cursor node { id number status sentAt
      client { id name email providers { id name roles } balance { amount currency formatted } }
      provider { id name email roles }
      subtotal { amount } tax { amount } total { amount formatted }
      amountPaid { amount } amountRefunded { amount } amountDue { amount }
      refundableAmount { amount } overdue dueDate paidAt currency taxRateBasisPoints
      payments { id amount { amount } method reference receivedAt recordedBy { id name } }
      refunds { id amount { amount } reason createdAt createdBy { id } }
      history { id action actor { id name } at amount { amount } note }
      canPay canRecordPayment canForgive canVoid canRefund } }
      pageInfo { hasNextPage endCursor } } }""",
    "counts": "{ invoices(first: 3) { totalCount } clients(first: 2) { totalCount } }",
    "no_count": "{ invoices(first: 5) { edges { node { id } } pageInfo { endCursor } } }",
    "overdue": """{ a: invoices(first: 30, filter: {overdue: true}) { totalCount
      edges { node { id overdue } } }
      b: invoices(first: 30, filter: {overdue: false, status: [UNPAID]}) { totalCount
      edges { node { id overdue } } } }""",
    "clients": """{ clients(first: 10) { totalCount pageInfo { hasNextPage endCursor }
      edges { cursor node { id name email balance { amount formatted } providers { id name }
      invoices(first: 2) { totalCount pageInfo { hasNextPage } edges { node { id total { amount }
      payments { id } history { action actor { name } } } } } } } } }""",
    "everything": """{ viewer { role roles user { id name email roles } practice { id name } }
      practice { id name currency timeZone salesTax { mode rateBasisPoints label }
      clientBilling { enabled providers { id name } } cardPayments { processorType } }
      again: invoices(first: 1) { totalCount edges { node { id client { name } } } } }""",
}


def corpus(state: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], str]]:
    """(name, query, variables, role) of every answer compared."""
    found: list[tuple[str, str, dict[str, Any], str]] = [
        (f"{name}-{role}", query, {}, role)
        for name, query in CORPUS.items()
        for role in ("ADMIN", "PROVIDER", "CLIENT")
    ]
    invoice = encode_id("Invoice", state["client_invoice_id"])
    for role in ("ADMIN", "PROVIDER", "CLIENT"):
        found.append((f"invoice-{role}", INVOICE, {"id": invoice}, role))
        found.append((f"invoices-{role}", INVOICES, {"first": 50}, role))
        found.append(
            (
                f"node-{role}",
                "query($id: ID!) { node(id: $id) { __typename id ... on Invoice { number } } }",
                {"id": invoice},
                role,
            )
        )
    return found


async def seed_state(invoices: int) -> dict[str, Any]:
    url, _name = await create_pg_database()  # kept between runs: `drop` drops it
    await migrate(url)
    settings = Settings(database_url=url, secret_key=SECRET)
    db = Database(url)
    seeded = await seed(Services.build(settings, db), invoices, 0)
    await db.dispose()
    state = {
        "url": url,
        "tokens": seeded.tokens,
        "client_invoice_id": seeded.client_invoice_id,
        "invoices": seeded.invoices,
    }
    print(f"seeded {seeded.invoices} invoices at {url}")
    return state


async def drop_state(state: dict[str, Any]) -> None:
    await drop_pg_database(state["url"].rsplit("/", 1)[1])


async def post(http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str) -> str:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code != 200 or '"errors"' in response.text[:20]:
        raise RuntimeError(response.text[:500])
    return response.text


async def measure(state: dict[str, Any], args: argparse.Namespace) -> dict[str, str]:
    """Prints the figures of each operation; the corpus' answers with --dump."""
    answers: dict[str, str] = {}
    settings = Settings(database_url=state["url"], secret_key=SECRET)
    operations: dict[str, tuple[str, dict[str, Any], str]] = {
        "invoices": (INVOICES, {"first": 50}, state["tokens"]["ADMIN"]),
        "invoice": (
            INVOICE,
            {"id": encode_id("Invoice", state["client_invoice_id"])},
            state["tokens"]["CLIENT"],
        ),
    }
    async with running(create_app(settings)) as served:
        engine = served.services.db.engine
        counter = StatementCounter(engine, round_trips=True)
        opened = [0]

        def on_connect(*_: Any) -> None:
            opened[0] += 1

        event.listen(engine.sync_engine, "connect", on_connect)
        transport = httpx.ASGITransport(app=served.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            if args.dump:
                for name, text, values, role in corpus(state):
                    answers[name] = await post(http, text, values, state["tokens"][role])
            for key, (query, variables, token) in operations.items():
                if args.only and key not in args.only:
                    continue
                for _ in range(5):
                    await post(http, query, variables, token)
                if args.shares == key:
                    await print_shares(http, query, variables, token, args.runs)
                    continue
                if args.profile == key:
                    from pyinstrument import Profiler

                    profiler = Profiler(async_mode="disabled", interval=0.0005)
                    profiler.start()
                    for _ in range(args.runs):
                        await post(http, query, variables, token)
                    profiler.stop()
                    print(profiler.output_text(unicode=False, color=False, show_all=False))
                    continue
                calls = await _calls(http, query, variables, token)
                cpu, statements, checkouts, trips = [], [], [], []
                opened[0] = 0
                for _ in range(args.runs):
                    with counter.counting() as tally:
                        started = time.thread_time()
                        await post(http, query, variables, token)
                        cpu.append((time.thread_time() - started) * 1000)
                        await asyncio.sleep(0)
                    statements.append(len(tally.queries()))
                    checkouts.append(tally.checkouts)
                    trips.append(tally.other_round_trips())
                serial_opened = opened[0]
                opened[0] = 0
                n = args.concurrency
                per_client = args.per_client

                async def client(
                    query: str = query,
                    variables: dict[str, Any] = variables,
                    token: str = token,
                    per_client: int = per_client,
                ) -> None:
                    for _ in range(per_client):
                        await post(http, query, variables, token)

                await asyncio.gather(*(client() for _ in range(n)))  # warm-up: the pool fills
                opened[0] = 0
                wall = time.perf_counter()
                await asyncio.gather(*(client() for _ in range(n)))
                wall = time.perf_counter() - wall
                print(
                    json.dumps(
                        {
                            "operation": key,
                            "cpu_ms": round(statistics.median(cpu), 2),
                            "python_calls": calls,
                            "statements": statistics.median(statements),
                            "checkouts": statistics.median(checkouts),
                            "other_round_trips": statistics.median(trips),
                            "new_connections_c1": serial_opened,
                            f"rps_c{n}_in_process": round(n * per_client / wall, 1),
                            f"new_connections_c{n}": opened[0],
                        }
                    ),
                    flush=True,
                )
    return answers


async def _calls(http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str) -> int:
    """Python function calls of one request (app and client, cProfile): a measure of the work
    that the other processes on a shared machine do not move, unlike its CPU time."""
    profiler = cProfile.Profile()
    profiler.enable()
    await post(http, query, variables, token)
    profiler.disable()
    return sum(entry.callcount for entry in profiler.getstats())


# Where a function's code lives, by the first fragment of its file's path that matches.
COMPONENTS = (
    ("/graphql/", "graphql-core: execution and completion"),
    ("/strawberry/", "strawberry: Info, types, HTTP view"),
    ("/schema/execution.py", "CareBill's execution of planned fields (schema/execution.py)"),
    ("/schema/answer_size.py", "CareBill's execution of planned fields (schema/execution.py)"),
    ("/schema/", "CareBill schema/: types, loaders, ids, money"),
    ("/aiodataloader/", "CareBill schema/: types, loaders, ids, money"),
    ("/base64.py", "CareBill schema/: types, loaders, ids, money"),
    ("/resolvers/", "CareBill resolvers/ and models/"),
    ("/models/", "CareBill resolvers/ and models/"),
    ("/sqlalchemy/", "SQLAlchemy and asyncpg"),
    ("/asyncpg/", "SQLAlchemy and asyncpg"),
    ("/asyncio/", "event loop (asyncio, uvloop)"),
    ("uvloop", "event loop (asyncio, uvloop)"),
    ("/starlette/", "HTTP (Starlette, middleware, the bench's httpx client), JSON"),
    ("/httpx/", "HTTP (Starlette, middleware, the bench's httpx client), JSON"),
    ("/httpcore/", "HTTP (Starlette, middleware, the bench's httpx client), JSON"),
    ("/json/", "HTTP (Starlette, middleware, the bench's httpx client), JSON"),
    ("/adapters/", "HTTP (Starlette, middleware, the bench's httpx client), JSON"),
    ("/app.py", "HTTP (Starlette, middleware, the bench's httpx client), JSON"),
    ("/web/", "HTTP (Starlette, middleware, the bench's httpx client), JSON"),
)


def component_of(filename: str) -> str:
    for fragment, name in COMPONENTS:
        if fragment in filename:
            return name
    return OTHER


OTHER = "other: generated __init__s, enum, contextlib, the rest of the standard library"


async def print_shares(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str, runs: int
) -> None:
    """cProfile's own time of `runs` requests by component; a built-in function's (`len`,
    `isinstance`, a dict's `get`) is charged to its callers, each the time of its own calls."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        await post(http, query, variables, token)
    profiler.disable()
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    shares: dict[str, float] = {}
    calls: dict[str, int] = {}
    for (filename, _line, _name), (_cc, count, own, _cum, callers) in stats.items():
        if filename != "~":
            component = component_of(filename)
            shares[component] = shares.get(component, 0.0) + own
            calls[component] = calls.get(component, 0) + count
            continue
        for (caller_file, _l, _n), (caller_count, _c, own_there, _t) in callers.items():
            component = component_of(caller_file)
            shares[component] = shares.get(component, 0.0) + own_there
            calls[component] = calls.get(component, 0) + caller_count
    total = sum(shares.values())
    print("| component | share of the time | Python calls per request |")
    print("|---|---:|---:|")
    for component, seconds in sorted(shares.items(), key=lambda item: -item[1]):
        print(f"| {component} | {100 * seconds / total:.0f} % | {calls[component] // runs:,} |")
    print(
        f"| all ({runs} requests, {1000 * total / runs:.1f} ms each under cProfile) | 100 % "
        f"| {sum(calls.values()) // runs:,} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["seed", "measure", "drop"])
    parser.add_argument("state", type=Path)
    parser.add_argument("--invoices", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--per-client", type=int, default=3, help="requests of each client")
    parser.add_argument("--dump", help="write the corpus' answers to this JSON file")
    parser.add_argument("--profile", choices=["invoices", "invoice"])
    parser.add_argument("--shares", choices=["invoices", "invoice"], help="time by component")
    parser.add_argument("--only", nargs="+", choices=["invoices", "invoice"])
    args = parser.parse_args()
    if args.command == "seed":
        args.state.write_text(json.dumps(asyncio.run(seed_state(args.invoices)), indent=1))
        return
    state = json.loads(args.state.read_text())
    if args.command == "drop":
        asyncio.run(drop_state(state))
        return
    answers = asyncio.run(measure(state, args))
    if args.dump:
        Path(args.dump).write_text(json.dumps(answers, indent=1, sort_keys=True))
        print(f"{len(answers)} answers written to {args.dump}")


if __name__ == "__main__":
    main()
