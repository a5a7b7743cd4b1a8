"""The load of bench/compare.py: one slice of requests against one server, and what the slices
of a server add up to over the rounds."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from bench.baselines.documents import WARM
from bench.common import cpu_seconds, nearest_rank, pg_sessions
from bench.compare_servers import Contender


@dataclass(frozen=True)
class Request:
    """What every client of a slice sends, again and again."""

    body: bytes  # the JSON body, encoded once
    token: str | None = None

    def headers(self) -> dict[str, str]:
        found = {"content-type": "application/json"}
        if self.token:
            found["authorization"] = f"Bearer {self.token}"
        return found


@dataclass
class Slice:
    requests: int
    seconds: float
    server_cpu: float
    client_cpu: float
    latencies: list[float]
    sessions: int | None  # new PostgreSQL sessions to the database meanwhile
    failures: int = 0  # answers that were not 200 with data (not in `requests`)
    failure: str | None = None  # the first one


async def run_slice(
    contender: Contender,
    request: Request,
    concurrency: int,
    seconds: float,
    database_url: str,
    admin: asyncpg.Connection | None,
) -> Slice:
    """`concurrency` clients (kept-alive connections, opened first by one warm-up request each)
    sending their next request once the previous one is answered, until `seconds` have passed;
    the slice ends when the last answer is in, so every request counted was served whole."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = request.headers()
    async with httpx.AsyncClient(
        base_url=contender.url, trust_env=False, limits=limits, timeout=300, headers=headers
    ) as http:
        warm = {"query": WARM}
        await asyncio.gather(*(http.post("/graphql", json=warm) for _ in range(concurrency)))
        latencies: list[float] = []
        failures: list[str] = []
        deadline = 0.0

        async def client() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await http.post("/graphql", content=request.body)
                body = response.content
                if response.status_code != 200 or b'"errors"' in body:
                    # e.g. a 503 when PostgreSQL has no connection left for the server (other
                    # work on the machine uses them too): counted apart, the run goes on.
                    failures.append(f"{response.status_code} {body[:300].decode(errors='replace')}")
                    continue
                latencies.append(time.perf_counter() - started)

        pids = contender.pids()
        sessions = await pg_sessions(database_url, admin)
        server_cpu, client_cpu = cpu_seconds(pids), time.process_time()
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        client_used = time.process_time() - client_cpu
        server_used = sum(
            used - server_cpu.get(pid, 0.0) for pid, used in cpu_seconds(pids).items()
        )
        after = await pg_sessions(database_url, admin)
    return Slice(
        requests=len(latencies),
        seconds=elapsed,
        server_cpu=server_used,
        client_cpu=client_used,
        latencies=latencies,
        sessions=None if sessions is None or after is None else after - sessions,
        failures=len(failures),
        failure=failures[0] if failures else None,
    )


@dataclass
class Tally:
    """One server's slices of one case, over the rounds."""

    slices: list[Slice] = field(default_factory=list)
    # Rounds left out: the seconds one answer to each client was expected to take.
    skipped: list[float] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return sum(s.failures for s in self.slices)

    def median_latency(self) -> float | None:
        ms = [latency for s in self.slices for latency in s.latencies]
        return statistics.median(ms) if ms else None

    def summary(self) -> dict[str, Any]:
        if not self.slices:
            return {"rounds": 0, "skipped": len(self.skipped), "expected_s": max(self.skipped)}
        rates = [s.requests / s.seconds for s in self.slices]
        cpu = [s.server_cpu / max(1, s.requests + s.failures) * 1000 for s in self.slices]
        client = [s.client_cpu / max(1, s.requests + s.failures) * 1000 for s in self.slices]
        failures = [s.failure for s in self.slices if s.failure]
        ms = [latency * 1000 for s in self.slices for latency in s.latencies]
        sessions = [s.sessions for s in self.slices if s.sessions is not None]
        return {
            "rounds": len(self.slices),
            "skipped": len(self.skipped),
            "requests": sum(s.requests for s in self.slices),
            "seconds": round(sum(s.seconds for s in self.slices), 1),
            "rps": round(statistics.median(rates), 1),
            "rps_min": round(min(rates), 1),
            "rps_max": round(max(rates), 1),
            "cpu_ms": round(statistics.median(cpu), 2),
            "cpu_ms_min": round(min(cpu), 2),
            "cpu_ms_max": round(max(cpu), 2),
            "client_cpu_ms": round(statistics.median(client), 2),
            "p50_ms": round(nearest_rank(ms, 0.50), 1) if ms else None,
            "p99_ms": round(nearest_rank(ms, 0.99), 1) if ms else None,
            "failures": sum(s.failures for s in self.slices),
            "first_failure": failures[0] if failures else None,
            "new_pg_connections": (
                None
                if not sessions
                else {"median": statistics.median(sessions), "max": max(sessions)}
            ),
        }
