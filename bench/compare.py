"""Comparison benchmark (not a test): CareBill against three baselines on the same database, the
same data and the same nested page, measured side by side in one interleaved run.

    .venv/bin/python bench/compare.py                       # PostgreSQL, ≈ 7 minutes
    .venv/bin/python bench/compare.py --database sqlite     # ≈ 4 minutes, no PostGraphile
    .venv/bin/python bench/compare.py --quick               # 2 rounds, 2 page sizes
    .venv/bin/python bench/compare.py --json compare.json   # everything, for the README table

The servers, each its own process with 1 worker: CareBill as the tests start it, the naive
strawberry server (bench/baselines/naive.py: one query per row and nested field), the
hand-written Starlette endpoint (bench/baselines/handwritten.py: CareBill's scoped SQL in 7
statements, the JSON by hand) and PostGraphile 4 (bench/postgraphile, PostgreSQL only). At the
start the first three must answer the same `data` for every document, and PostGraphile the
same invoices; then in each round, for each page size and concurrency, each server in turn
(the order rotating from round to round) serves its clients for `--slice` seconds. See
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.database import Database
from app import create_app
from bench import compare_report
from bench.api import seed
from bench.baselines import handwritten, naive
from bench.baselines.documents import ONE, PAGE, POSTGRAPHILE_PAGE
from bench.common import SECRET, StatementCounter, database, machine_ticks
from bench.compare_load import Request, Tally, run_slice
from bench.compare_servers import (
    CAREBILL,
    HANDWRITTEN,
    NAIVE,
    POSTGRAPHILE,
    Contender,
    Lineup,
    started,
)
from models.invoice import format_invoice_number
from schema.node import encode_id
from schema.services import Services
from settings import Settings
from tests.asgi import running
from tests.databases import PG_ADMIN_DSN

SIZES = [5, 20, 50, 100]
CONCURRENCY = [1, 16]
PYTHON_SERVERS = (CAREBILL, NAIVE, HANDWRITTEN)


@dataclass(frozen=True)
class Case:
    """One kind of load: the page of `size` invoices as ADMIN, or one invoice as CLIENT."""

    section: str  # "page" or "one"
    size: int
    concurrency: int

    @property
    def key(self) -> str:
        return f"{self.section}:{self.size}:c{self.concurrency}"


@dataclass
class World:
    """What the requests need from the seeded practice."""

    practice_id: int
    admin_token: str
    client_token: str
    client_invoice: str  # global id
    invoices: int

    def request(self, server: str, case: Case) -> Request:
        if case.section == "one":
            body = {"query": ONE, "variables": {"id": self.client_invoice}}
            return Request(json.dumps(body).encode(), self.client_token)
        if server == POSTGRAPHILE:
            variables = {"first": case.size, "practice": self.practice_id}
            return Request(
                json.dumps({"query": POSTGRAPHILE_PAGE, "variables": variables}).encode()
            )
        body = {"query": PAGE, "variables": {"first": case.size}}
        return Request(json.dumps(body).encode(), self.admin_token)


# --- the same answers --------------------------------------------------------------------------


def first_difference(a: Any, b: Any, path: str = "data") -> str | None:
    """Where two parsed JSON documents first differ, or None when they are equal."""
    if type(a) is not type(b):
        return f"{path}: {a!r:.200} != {b!r:.200}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}: only on one side"
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r:.200} != {b!r:.200}"


async def answer(contender: Contender, request: Request) -> Any:
    async with httpx.AsyncClient(base_url=contender.url, trust_env=False, timeout=300) as http:
        response = await http.post("/graphql", content=request.body, headers=request.headers())
    document = response.json() if response.status_code == 200 else None
    if not document or document.get("errors") or document.get("data") is None:
        raise SystemExit(f"{contender.name}: {response.status_code} {response.text[:1000]}")
    return document["data"]


def same_page(carebill: Any, postgraphile: Any) -> str | None:
    """Whether PostGraphile's page lists the same invoices, with as many payments, refunds and
    events each, as CareBill's."""
    ours, theirs = carebill["invoices"], postgraphile["allInvoices"]
    if ours["totalCount"] != theirs["totalCount"]:
        return f"totalCount {ours['totalCount']} != {theirs['totalCount']}"
    for mine, other in zip(ours["edges"], theirs["edges"], strict=False):
        a, b = mine["node"], other["node"]
        shape = [len(a[k]) for k in ("payments", "refunds", "history")]
        other_shape = [len(b[k]["nodes"]) for k in ("payments", "refunds", "history")]
        if a["number"] != format_invoice_number(b["number"]) or shape != other_shape:
            return f"{a['number']} {shape} != {b['number']} {other_shape}"
    if len(ours["edges"]) != len(theirs["edges"]):
        return f"{len(ours['edges'])} invoices != {len(theirs['edges'])}"
    return None


async def check_answers(lineup: Lineup, world: World, cases: list[Case]) -> None:
    """The naive and the hand-written servers answer CareBill's `data` for every document;
    PostGraphile lists the same invoices. Stops the run otherwise."""
    by_name = {c.name: c for c in lineup.contenders}
    for case in {Case(c.section, c.size, 1) for c in cases}:
        reference = await answer(by_name[CAREBILL], world.request(CAREBILL, case))
        for name in (NAIVE, HANDWRITTEN):
            found = first_difference(
                reference, await answer(by_name[name], world.request(name, case))
            )
            if found:
                raise SystemExit(f"{name} answers {case.key} differently from CareBill: {found}")
        if case.section == "page" and POSTGRAPHILE in by_name:
            theirs = await answer(by_name[POSTGRAPHILE], world.request(POSTGRAPHILE, case))
            found = same_page(reference, theirs)
            if found:
                raise SystemExit(f"PostGraphile's page of {case.size} is another page: {found}")
    print(f"same data from {', '.join(by_name)} for every document", file=sys.stderr)


# --- SQL statements, counted in this process ---------------------------------------------------


async def count_statements(settings: Settings, world: World, cases: list[Case]) -> dict[str, int]:
    """The statements one request of each case runs (transaction brackets excluded), each
    Python server's app run in this process with a counter on its engine; keyed
    `server|case key without concurrency`."""
    found: dict[str, int] = {}
    kinds = sorted({Case(c.section, c.size, 1) for c in cases}, key=lambda c: c.key)

    async def measure(name: str, app: Any, counter: StatementCounter) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for case in kinds:
                request = world.request(name, case)
                await http.post("/graphql", content=request.body, headers=request.headers())
                with counter.counting() as tally:
                    response = await http.post(
                        "/graphql", content=request.body, headers=request.headers()
                    )
                assert response.status_code == 200, response.text
                found[f"{name}|{case.section}:{case.size}"] = len(tally.queries())

    async with running(create_app(settings)) as served:
        await measure(CAREBILL, served.app, StatementCounter(served.services.db.engine))
    for name, module in ((NAIVE, naive), (HANDWRITTEN, handwritten)):
        app = module.build(settings.database_url, SECRET)
        await measure(name, app, StatementCounter(app.state.db.engine))
        await app.state.db.dispose()
    return found


# --- the run -----------------------------------------------------------------------------------


def plan(sizes: list[int], concurrency: list[int]) -> list[Case]:
    cases = [Case("page", size, c) for size in sizes for c in concurrency]
    return [*cases, Case("one", 1, 1)]


def servers_of(case: Case, lineup: Lineup) -> list[Contender]:
    if case.section == "one":
        return [c for c in lineup.contenders if c.name in PYTHON_SERVERS]
    return lineup.contenders


async def seeded(services: Services, invoices: int) -> World:
    found = await seed(services, invoices, 0)
    return World(
        practice_id=found.world.practice_id,
        admin_token=found.tokens["ADMIN"],
        client_token=found.tokens["CLIENT"],
        client_invoice=encode_id("Invoice", found.client_invoice_id),
        invoices=found.invoices,
    )


async def measure(
    lineup: Lineup, world: World, cases: list[Case], args: argparse.Namespace, url: str
) -> dict[str, dict[str, Tally]]:
    """Every round: each case, each server in turn (the order rotating from round to round).
    A slice of N clients lasts at least until each has one answer; the naive server, whose
    answer grows with every row and field, is left out of a slice when its answer to one client
    (the median so far) times N passes `--max-wait`."""
    tallies: dict[str, dict[str, Tally]] = {c.key: {} for c in cases}
    # One connection of our own to read PostgreSQL's session counts (the machine's
    # `max_connections` is shared with other work).
    admin = (
        await asyncpg.connect(PG_ADMIN_DSN, timeout=10) if url.startswith("postgresql") else None
    )
    try:
        await rounds(lineup, world, cases, args, url, admin, tallies)
    finally:
        if admin is not None:
            await admin.close()
    return tallies


async def rounds(
    lineup: Lineup,
    world: World,
    cases: list[Case],
    args: argparse.Namespace,
    url: str,
    admin: asyncpg.Connection | None,
    tallies: dict[str, dict[str, Tally]],
) -> None:
    for round_ in range(args.rounds):
        began = time.perf_counter()
        for case in cases:
            contenders = servers_of(case, lineup)
            shift = round_ % len(contenders)
            alone = tallies.get(Case(case.section, case.size, 1).key, {})
            for contender in contenders[shift:] + contenders[:shift]:
                tally = tallies[case.key].setdefault(contender.name, Tally())
                single = alone.get(contender.name) if contender.name == NAIVE else None
                latency = single.median_latency() if single else None
                if latency is not None and latency * case.concurrency > args.max_wait:
                    tally.skipped.append(round(latency * case.concurrency, 1))
                    continue
                request = world.request(contender.name, case)
                piece = await run_slice(
                    contender, request, case.concurrency, args.slice, url, admin
                )
                tally.slices.append(piece)
        print(
            f"round {round_ + 1}/{args.rounds}: {time.perf_counter() - began:.0f} s",
            file=sys.stderr,
        )


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": model,
        "cpus": len(
            [
                1
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("processor")
            ]
        ),
        "python": platform.python_version(),
        "load_average": load_average(),
    }


def load_average() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    cases = plan(args.sizes, args.concurrency)
    with tempfile.TemporaryDirectory(prefix="carebill-compare-") as tmp:
        async with database(args.database, Path(tmp), prefix="bench_cmp_") as url:
            settings = Settings(database_url=url, secret_key=SECRET)
            db = Database(url)
            began = time.perf_counter()
            world = await seeded(Services.build(settings, db), args.invoices)
            await db.dispose()
            print(
                f"seeded {world.invoices:,} invoices in {time.perf_counter() - began:.0f} s",
                file=sys.stderr,
            )
            statements = await count_statements(settings, world, cases)
            before = machine()
            with started(settings, postgraphile=args.database == "postgresql") as lineup:
                await check_answers(lineup, world, cases)
                ticks = machine_ticks()
                tallies = await measure(lineup, world, cases, args, url)
                (total, idle, steal), (total0, idle0, steal0) = machine_ticks(), ticks
                for contender in lineup.contenders:  # keep the logs of servers that failed
                    contender.keep_log = any(
                        t[contender.name].failures for t in tallies.values() if contender.name in t
                    )
            summaries = {
                key: {name: t.summary() for name, t in by_server.items()}
                for key, by_server in tallies.items()
            }
    span = total - total0 or 1
    return {
        "database": args.database,
        "invoices": world.invoices,
        "rounds": args.rounds,
        "slice_seconds": args.slice,
        "max_wait_seconds": args.max_wait,
        "servers": [c.name for c in lineup.contenders],
        "postgraphile": lineup.postgraphile_note,
        "machine": before
        | {
            "busy_pct": round(100 * (1 - (idle - idle0) / span)),
            "steal_pct": round(100 * (steal - steal0) / span, 1),
            "load_average_after": load_average(),
        },
        "cases": [
            {"section": c.section, "size": c.size, "concurrency": c.concurrency, "key": c.key}
            for c in cases
        ],
        "statements": statements,
        "results": summaries,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slice", type=float, default=1.2, help="seconds per server per slice")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=8,
        help="leave the naive server out of a slice of N clients when N times its answer to one"
        " client takes longer (seconds)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="`first:` of the page")
    parser.add_argument("--concurrency", type=int, nargs="+", default=CONCURRENCY)
    parser.add_argument("--invoices", type=int, default=3_000, help="bulk invoices (+ 60 newest)")
    parser.add_argument("--quick", action="store_true", help="2 rounds, page sizes 5 and 50")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.sizes = 2, [5, 50]
    began = time.perf_counter()
    result = asyncio.run(bench(args))
    result["seconds"] = round(time.perf_counter() - began)
    print(compare_report.markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"total {result['seconds']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
