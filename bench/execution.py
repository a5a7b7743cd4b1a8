"""What the GraphQL execution machinery costs per request (not a test): the CPU time of the event
loop's thread for the operations of bench/api.py, run in-process (httpx's ASGI transport, the
app's lifespan started) one request at a time against a fresh, seeded database; optionally
against another checkout too, interleaved, and with a profile.

    .venv/bin/python bench/execution.py                                  # PostgreSQL
    .venv/bin/python bench/execution.py --compare /path/to/step1 /path/to/main --rounds 6
    .venv/bin/python bench/execution.py --profile invoices               # pyinstrument

The database is seeded once (bench/api.py's practice); each round then runs every checkout in a
fresh process of its own (A, B, A, B …, so that the machine's load falls on both alike), which
imports that checkout's app and times `--runs` requests of each operation after 3 warm-ups, on
uvloop as uvicorn runs it (`--loop asyncio` for the standard loop). The
CPU is `time.thread_time()` around each request: the app, strawberry, graphql-core, SQLAlchemy
and the ASGI client (httpx), not PostgreSQL's. Reported: the median over the rounds of each
round's median, and each checkout's as a fraction of the last one's (the baseline). See README.md,
"Execution: what each change bought".
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
OPERATIONS = ("invoices", "invoice", "recordPayment")


# --- the parent: seed, then run each checkout in turn ------------------------------------------


async def seed_database(args: argparse.Namespace, tmp: Path, targets: int) -> None:
    sys.path.insert(0, str(HERE))
    from adapters.database import Database
    from bench.api import seed
    from bench.common import SECRET, database
    from schema.services import Services
    from settings import Settings

    async with database(args.database, tmp) as url:
        settings = Settings(database_url=url, secret_key=SECRET)
        db = Database(url)
        seeded = await seed(Services.build(settings, db), args.invoices, targets)
        await db.dispose()
        state = {
            "url": url,
            "secret": SECRET,
            "tokens": seeded.tokens,
            "client_invoice_id": seeded.client_invoice_id,
            "targets": seeded.targets,
        }
        (tmp / "state.json").write_text(json.dumps(state))
        print(f"seeded {seeded.invoices:,} invoices ({args.database})", file=sys.stderr)
        await compare(args, tmp)


async def compare(args: argparse.Namespace, tmp: Path) -> None:
    checkouts: list[Path] = [HERE, *args.compare]
    figures: dict[str, dict[str, list[float]]] = {str(c): {} for c in checkouts}
    per_run = args.runs + 3
    offset = 0
    for _ in range(args.rounds):
        for checkout in checkouts:
            command = [
                sys.executable,
                os.environ.get("BENCH_CHILD", __file__),
                "--measure",
                str(tmp / "state.json"),
            ]
            command += ["--checkout", str(checkout), "--runs", str(args.runs)]
            command += ["--targets-from", str(offset), "--scenarios", *args.scenarios]
            command += ["--loop", args.loop, "--profile", *(args.profile or [])]
            offset += per_run
            done = await asyncio.to_thread(
                subprocess.run, command, cwd=checkout, capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                raise RuntimeError(f"{checkout}: {done.stderr[-3000:]}")
            if args.profile:
                print(done.stderr)
            for line in done.stdout.splitlines():
                row = json.loads(line)
                figures[str(checkout)].setdefault(row["operation"], []).append(row["cpu_ms"])
                figures[str(checkout)].setdefault(row["operation"] + " gc", []).append(
                    row["gc_per_request"]
                )
    summary: dict[str, Any] = {}
    for label, rows in figures.items():
        summary[label] = {k: round(statistics.median(v), 2) for k, v in rows.items()}
    # Each checkout's CPU as a fraction of the last one's (the baseline).
    baseline = summary[str(checkouts[-1])]
    for checkout in checkouts[:-1]:
        this = summary[str(checkout)]
        summary[f"{checkout} / {checkouts[-1]}"] = {
            k: round(v / baseline[k], 3) for k, v in this.items() if not k.endswith(" gc")
        }
    print(json.dumps(summary, indent=2))


# --- the child: one checkout's app, in this process --------------------------------------------


async def measure(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(args.checkout))
    import httpx

    from app import create_app
    from bench.api import INVOICE, INVOICES, PAGE, RECORD, TARGET_AMOUNT
    from schema.node import encode_id
    from settings import Settings
    from tests.asgi import running

    state = args.measure
    targets = iter(state["targets"][args.targets_from :])

    def record() -> dict[str, Any]:
        invoice_id = next(targets)
        return {
            "input": {
                "invoiceId": encode_id("Invoice", invoice_id),
                "amount": TARGET_AMOUNT,
                "method": "CHECK",
                "reference": f"cheque {invoice_id}",
                "idempotencyKey": f"bench-{invoice_id}",
            }
        }

    invoice_gid = encode_id("Invoice", state["client_invoice_id"])
    operations: dict[str, tuple[str, str, Callable[[], dict[str, Any]]]] = {
        "invoices": (INVOICES, "ADMIN", lambda: {"first": PAGE}),
        "invoice": (INVOICE, "CLIENT", lambda: {"id": invoice_gid}),
        "recordPayment": (RECORD, "PROVIDER", record),
    }
    settings = Settings(database_url=state["url"], secret_key=state["secret"])
    async with running(create_app(settings)) as served:
        transport = httpx.ASGITransport(app=served.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:

            async def send(key: str) -> None:
                query, role, variables = operations[key]
                headers = {"Authorization": f"Bearer {state['tokens'][role]}"}
                body = {"query": query, "variables": variables()}
                response = await http.post("/graphql", json=body, headers=headers)
                answer = response.json()
                if response.status_code != 200 or answer.get("errors"):
                    raise RuntimeError(f"{key}: {response.status_code} {response.text[:500]}")

            for key in args.scenarios:
                for _ in range(3):
                    await send(key)
                if key in (args.profile or []):
                    await profiled(send, key, args.runs)
                    continue
                cpu: list[float] = []
                collections = sum(s["collections"] for s in gc.get_stats())
                for _ in range(args.runs):
                    started = time.thread_time()
                    await send(key)
                    cpu.append((time.thread_time() - started) * 1000)
                collections = sum(s["collections"] for s in gc.get_stats()) - collections
                row = {
                    "operation": key,
                    "cpu_ms": statistics.median(cpu),
                    "gc_per_request": collections / args.runs,
                }
                print(json.dumps(row), flush=True)


async def profiled(send: Any, key: str, runs: int) -> None:
    from pyinstrument import Profiler  # a developer's tool, not a dependency

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    for _ in range(runs):
        await send(key)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--invoices", type=int, default=1000, help="bulk invoices seeded")
    parser.add_argument("--runs", type=int, default=50, help="timed requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenarios", nargs="+", default=list(OPERATIONS), choices=OPERATIONS)
    parser.add_argument(
        "--compare",
        nargs="+",
        type=lambda path: Path(path).resolve(),
        default=[],
        help="other checkouts of CareBill, run in turn with this one (the last: the baseline)",
    )
    parser.add_argument("--profile", nargs="*", help="operations to profile (pyinstrument)")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--checkout", help=argparse.SUPPRESS)
    parser.add_argument("--targets-from", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        args.measure = json.loads(Path(args.measure).read_text())
        args.checkout = Path(args.checkout).resolve()
        if args.loop == "uvloop":
            import uvloop  # as uvicorn runs the app (its `--loop auto` with uvloop installed)

            uvloop.run(measure(args))
        else:
            asyncio.run(measure(args))
        return
    checkouts = 1 + len(args.compare)
    targets = args.rounds * checkouts * (args.runs + 3)
    with tempfile.TemporaryDirectory(prefix="carebill-bench-") as tmp:
        asyncio.run(seed_database(args, Path(tmp), targets))


if __name__ == "__main__":
    main()
