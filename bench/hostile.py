"""Hostile requests against a real uvicorn server on 127.0.0.1: how long the query bombs of
issue 11 take to be refused, and what the login throttle does to a password-guessing loop.

Each bomb is sent `--repeat` times as a CLIENT of a fresh practice; the table gives the
refusal's code and limit and the wall time per request (p50 and max), and /healthz's latency
measured while the bombs run. The login part sends wrong passwords to one account in a row:
the first `CAREBILL_LOGIN_MAX_FAILURES` are answered after argon2's check, the rest refused
before it; a correct password afterwards is refused too (until the window passes), another
account logs in as usual.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from graphql import GraphQLError, parse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.database import Database
from bench.common import SECRET, database, nearest_rank
from models.base import utcnow
from models.enums import Role
from schema.services import Services
from settings import Settings
from tests.factories import PASSWORD, InvoiceSpec, World, bulk_invoices, make_world
from tests.live_server import start_server
from tests.test_query_limits import FULL_PAGE, NESTED_PAGES, fan_out

LOGIN = """mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { token retryAfterSeconds errors { code } } }"""


def admitted() -> dict[str, str]:
    """The heaviest kinds of documents the default limits let through."""
    node = FULL_PAGE.split("node { ", 1)[1].rsplit(" } } } }", 1)[0]
    copies = 20
    while True:  # as many copies of the full selection as 2,000 tokens hold
        repeated = "{ invoices(first: 5) { edges { node { " + " ".join([node] * copies) + " } } } }"
        try:
            parse(repeated, max_tokens=2000)
            break
        except GraphQLError:
            copies -= 1
    return {
        "a full invoices(first: 100) page, every nested field (cost 48,601)": FULL_PAGE,
        "invoices(first: 100) { … client { invoices(first: 100) { id } } } (cost 30,501)": (
            "{ invoices(first:100){edges{node{id client{invoices(first:100){edges{node{id}}}}}}}}"
        ),
        f"{copies} copies of the full selection on invoices(first: 5), 2,000 tokens": repeated,
    }


async def fill(world: World, clients: int, per_client: int) -> int:
    """`clients` more clients of the world's provider with `per_client` invoices each, half
    of them paid: lists as long as a page."""
    now = utcnow()
    people = [await world.add_client(f"Client {n:03}") for n in range(clients)]
    specs = [
        InvoiceSpec(
            client=person,
            provider=world.provider,
            amount=10_000 + i,
            sent_at=now - timedelta(days=i, minutes=n),
            payments=((None, now),) if i % 2 else (),
        )
        for i in range(per_client)
        for n, person in enumerate(people)
    ]
    await bulk_invoices(world, specs)
    return len(specs)


def bombs() -> dict[str, str]:
    nested = NESTED_PAGES[2:-2]
    return {
        "fragments 2^20 (issue: 3-10 s)": fan_out(20),
        "fragments 2^24, 900 bytes (issue: 60 s)": fan_out(24),
        "fragments 2^39 (issue: hung until kill -9)": fan_out(39),
        "280 copies of viewer{user{id}} (issue: 1-2 s)": "{ "
        + " ".join(["viewer { user { id } }"] * 280)
        + " }",
        "3 nested invoices(first:100) (issue: 10-31 s, 70 MB)": NESTED_PAGES,
        "4 aliases of it (issue: 119 s, 1 GB)": "{ "
        + " ".join(f"a{n}: {nested}" for n in range(4))
        + " }",
    }


async def timed_post(http: httpx.AsyncClient, body: dict[str, Any], token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.perf_counter()
    response = await http.post("/graphql", json=body, headers=headers)
    return time.perf_counter() - started, response


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with database(args.database, Path(tmp)) as url:
            settings = Settings(database_url=url, secret_key=SECRET)
            db = Database(url)
            world = await make_world(Services.build(settings, db))
            token = await world.token(world.c1, Role.CLIENT)
            invoices = await fill(world, args.clients, args.per_client)
            admin = await world.token(world.admin, Role.ADMIN)
            server = start_server(settings)
            try:
                async with httpx.AsyncClient(
                    base_url=server.http_url, trust_env=False, timeout=120
                ) as http:
                    await report_bombs(http, token, args.repeat)
                    await report_admitted(http, admin, args.repeat, invoices)
                    await report_login(http, world.c2.email, world.c3.email, args.guesses)
            finally:
                server.stop()
                await db.dispose()


async def report_bombs(http: httpx.AsyncClient, token: str, repeat: int) -> None:
    print("| bomb | request bytes | answer | p50 ms | max ms | /healthz meanwhile, max ms |")
    print("|---|---:|---|---:|---:|---:|")
    for name, query in bombs().items():
        times: list[float] = []
        health: list[float] = []
        answer = ""
        for _ in range(repeat):
            probe = asyncio.create_task(health_latency(http))
            seconds, response = await timed_post(http, {"query": query}, token)
            health.append(await probe)
            times.append(seconds)
            error = (response.json().get("errors") or [{}])[0]
            extensions = error.get("extensions", {})
            answer = f"{response.status_code} {extensions.get('code')} ({extensions.get('limit')})"
        print(
            f"| {name} | {len(query.encode()):,} | {answer} | {nearest_rank(times, 0.5) * 1000:.1f}"
            f" | {max(times) * 1000:.1f} | {max(health) * 1000:.1f} |"
        )


async def report_admitted(http: httpx.AsyncClient, token: str, repeat: int, invoices: int) -> None:
    print()
    print(f"Admitted, as ADMIN of a practice with {invoices:,} invoices:")
    print()
    print("| document | answer | answer KB | p50 ms | max ms | /healthz meanwhile, max ms |")
    print("|---|---|---:|---:|---:|---:|")
    for name, query in admitted().items():
        times: list[float] = []
        health: list[float] = []
        answer, size = "", 0
        for _ in range(repeat):
            probe = asyncio.create_task(health_latency(http))
            seconds, response = await timed_post(http, {"query": query}, token)
            health.append(await probe)
            times.append(seconds)
            size = len(response.content)
            errors = response.json().get("errors") or []
            codes = {e.get("extensions", {}).get("limit") or e.get("message") for e in errors}
            answer = "data" if not errors else f"refused ({', '.join(sorted(map(str, codes)))})"
        print(
            f"| {name} | {answer} | {size / 1024:,.0f} | {nearest_rank(times, 0.5) * 1000:.0f}"
            f" | {max(times) * 1000:.0f} | {max(health) * 1000:.0f} |"
        )


async def health_latency(http: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    await http.get("/healthz")
    return time.perf_counter() - started


async def report_login(http: httpx.AsyncClient, victim: str, other: str, guesses: int) -> None:
    print()
    print("| login attempts | answers | mean ms | max ms |")
    print("|---|---|---:|---:|")
    rows: list[tuple[str, list[float], set[str]]] = []
    checked: list[float] = []
    refused: list[float] = []
    answers_checked: set[str] = set()
    answers_refused: set[str] = set()
    for n in range(guesses):
        body = {"query": LOGIN, "variables": {"email": victim, "password": f"guess-{n}"}}
        seconds, response = await timed_post(http, body, None)
        codes = [e["code"] for e in response.json()["data"]["login"]["errors"]]
        if codes == ["TOO_MANY_ATTEMPTS"]:
            refused.append(seconds)
            answers_refused.add("TOO_MANY_ATTEMPTS")
        else:
            checked.append(seconds)
            answers_checked.update(codes)
    rows.append((f"wrong passwords, checked by argon2 ({len(checked)})", checked, answers_checked))
    rows.append(
        (f"wrong passwords, refused before argon2 ({len(refused)})", refused, answers_refused)
    )
    right = {"query": LOGIN, "variables": {"email": victim, "password": PASSWORD}}
    seconds, response = await timed_post(http, right, None)
    login = response.json()["data"]["login"]
    rows.append(
        (
            "the right password, inside the window",
            [seconds],
            {str(login["retryAfterSeconds"]) + " s to wait"},
        )
    )
    seconds, response = await timed_post(
        http, {"query": LOGIN, "variables": {"email": other, "password": PASSWORD}}, None
    )
    ok = "token" if response.json()["data"]["login"]["token"] else "refused"
    rows.append(("another account, right password", [seconds], {ok}))
    for label, times, answers in rows:
        if times:
            mean = sum(times) / len(times) * 1000
            print(
                f"| {label} | {', '.join(sorted(answers))} | {mean:.1f} | {max(times) * 1000:.1f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--guesses", type=int, default=100)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--per-client", type=int, default=100)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
