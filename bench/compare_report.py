"""The markdown tables of bench/compare.py's results (what bench/README.md shows)."""

from __future__ import annotations

from typing import Any

from bench.compare_servers import CAREBILL, HANDWRITTEN, POSTGRAPHILE


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if not a or not b else f"{a / b:.2f}"


def _connections(summary: dict[str, Any]) -> str:
    found = summary["new_pg_connections"]
    return "–" if found is None else f"{found['median']:g} (max {found['max']})"


def _row(result: dict[str, Any], case: dict[str, Any], name: str, summary: dict[str, Any]) -> str:
    statements = result["statements"].get(f"{name}|{case['section']}:{case['size']}", "–")
    if not summary["rounds"]:
        return (
            f"| not run: one answer to each client ≈ {summary['expected_s']} s"
            f" > {result['max_wait_seconds']:g} s | | | | {statements} | | |"
        )
    skipped = f" ({summary['skipped']} rounds not run)" if summary["skipped"] else ""
    if summary["failures"]:
        skipped += f" ({summary['failures']} failed: {summary['first_failure'][:60]})"
    return (
        f"| {summary['rps']} ({summary['rps_min']}–{summary['rps_max']}){skipped}"
        f" | {summary['cpu_ms']} | {summary['p50_ms']} | {summary['p99_ms']} | {statements}"
        f" | {_connections(summary)} | {summary['client_cpu_ms']} |"
    )


def markdown(result: dict[str, Any]) -> str:
    machine = result["machine"]
    lines = [
        f"{result['database']}, {result['invoices']:,} invoices, {result['rounds']} rounds of"
        f" {result['slice_seconds']} s slices per server; {machine['cpus']} × {machine['cpu']},"
        f" Python {machine['python']}; machine busy {machine['busy_pct']} %, stolen"
        f" {machine['steal_pct']} %, load average {' '.join(machine['load_average'])} →"
        f" {' '.join(machine['load_average_after'])}; PostGraphile: {result['postgraphile']}",
        "",
        "`invoices(first: N)` as ADMIN (client, provider, payments, refunds, history):",
        "",
        "| N | clients | server | req/s median (min–max) | server CPU ms/req | p50 ms | p99 ms"
        " | SQL statements | new PG connections per slice | client CPU ms/req |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    results = result["results"]
    pages = [c for c in result["cases"] if c["section"] == "page"]
    for case in pages:
        for name, summary in results[case["key"]].items():
            lines.append(
                f"| {case['size']} | {case['concurrency']} | {name} "
                + _row(result, case, name, summary)
            )
    lines += [
        "",
        "Ratios (of the medians):",
        "",
        "| N | CareBill CPU / hand-written CPU, 1 client | 16 clients"
        " | CareBill req/s / PostGraphile req/s, 1 client | 16 clients"
        " | CareBill req/s 16 clients / 1 client |",
        "|---:|---:|---:|---:|---:|---:|",
    ]

    def median(size: int, concurrency: int, name: str, key: str) -> float | None:
        found = results.get(f"page:{size}:c{concurrency}", {}).get(name)
        return None if found is None or not found["rounds"] else float(found[key])

    for size in sorted({c["size"] for c in pages}):
        cpu = [
            _ratio(median(size, n, CAREBILL, "cpu_ms"), median(size, n, HANDWRITTEN, "cpu_ms"))
            for n in (1, 16)
        ]
        rps = [
            _ratio(median(size, n, CAREBILL, "rps"), median(size, n, POSTGRAPHILE, "rps"))
            for n in (1, 16)
        ]
        scaling = _ratio(median(size, 16, CAREBILL, "rps"), median(size, 1, CAREBILL, "rps"))
        lines.append(f"| {size} | {cpu[0]} | {cpu[1]} | {rps[0]} | {rps[1]} | {scaling} |")
    for case in (c for c in result["cases"] if c["section"] == "one"):
        lines += [
            "",
            f"`invoice(id:)` as CLIENT (the same fields), {case['concurrency']} client(s):",
            "",
            "| server | req/s median (min–max) | server CPU ms/req | p50 ms | p99 ms"
            " | SQL statements | new PG connections per slice | client CPU ms/req |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, summary in results[case["key"]].items():
            lines.append(f"| {name} " + _row(result, case, name, summary))
    return "\n".join(lines)
