"""The `carebill` command: migrate, seed-demo, serve, create-practice, reconcile."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from settings import Settings, SettingsError


def _migrate(settings: Settings) -> None:
    # Alembic narrates at INFO from its import on ("setup plugin …", "Running upgrade …");
    # the one line below says what matters.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from migrations.runner import upgrade

    upgrade(settings.database_url)
    print("database is up to date")


def _seed(settings: Settings) -> None:
    from adapters.database import Database
    from demo_data import seed_demo

    async def run() -> bool:
        db = Database(settings.database_url)
        try:
            return await seed_demo(db)
        finally:
            await db.dispose()

    created = asyncio.run(run())
    print("demo data created" if created else "demo data already present")


def _serve(settings: Settings, host: str, port: int, workers: int) -> None:
    if workers < 1:
        raise SettingsError("--workers must be at least 1")
    if workers > 1 and settings.redis_url is None:
        # Without a broker each process rings only its own subscribers: an alert committed
        # through another worker would wait for the idle re-check (docs/ARCHITECTURE.md).
        raise SettingsError(
            f"--workers {workers} needs CAREBILL_REDIS_URL: without a broker an alert committed "
            "in one worker process reaches the subscribers of the others only at their next "
            "re-check; set CAREBILL_REDIS_URL or serve with one worker"
        )
    import uvicorn

    from adapters.http_server import websocket_options

    uvicorn.run(
        "app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        proxy_headers=False,
        # A deadline on request headers (see adapters/http_server.py).
        http="adapters.http_server:HeaderDeadlineProtocol",
        **websocket_options(),
    )


def _create_practice(settings: Settings, args: argparse.Namespace) -> None:
    from adapters.database import Database
    from provisioning import create_practice

    password = args.password
    if not password:
        if not sys.stdin.isatty():
            raise ValueError("--password is required when there is no terminal to ask for it")
        try:
            password = getpass.getpass("Password for the first admin: ")
        except EOFError:
            raise ValueError("no password given (use --password)") from None

    async def run() -> int:
        db = Database(settings.database_url)
        try:
            return await create_practice(
                db,
                name=args.name,
                currency=args.currency,
                time_zone=args.time_zone,
                admin_email=args.admin_email,
                admin_name=args.admin_name,
                admin_password=password,
            )
        finally:
            await db.dispose()

    practice_id = asyncio.run(run())
    print(f"practice {practice_id} created; {args.admin_email.strip().lower()} is its ADMIN")


def _reconcile(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.database import Database
    from resolvers.payments.reconciliation import reconcile
    from schema.services import Services

    since = datetime.fromisoformat(args.since) if args.since else None
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)

    async def run() -> list[str]:
        db = Database(settings.database_url)
        services = Services.build(settings, db)
        try:
            report = await reconcile(services, practice_id=args.practice, since=since)
        finally:
            await services.processors.aclose()
            await db.dispose()
        return report.lines() if report.lines() else ["nothing to reconcile"]

    for line in asyncio.run(run()):
        print(line)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="carebill", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the database migrations")
    commands.add_parser("seed-demo", help="load the demo data (idempotent)")
    serve = commands.add_parser("serve", help="run the API server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="the TCP port (default 8000)")
    serve.add_argument("--workers", type=int, default=1)
    create = commands.add_parser("create-practice", help="a new practice and its first admin")
    create.add_argument("--name", required=True)
    create.add_argument("--currency", default="USD")
    create.add_argument("--time-zone", default="UTC")
    create.add_argument("--admin-email", required=True)
    create.add_argument("--admin-name", required=True)
    create.add_argument("--password", help="the admin's password (prompted when omitted)")
    commands.add_parser("export-schema", help="print the GraphQL schema (SDL) to stdout")
    reconcile = commands.add_parser(
        "reconcile", help="look up unresolved payments and refunds at the processor"
    )
    reconcile.add_argument("--practice", type=int, help="only this practice (its number)")
    reconcile.add_argument("--since", help="only attempts created since (ISO date or time)")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings.from_env()
        if args.command == "migrate":
            _migrate(settings)
        elif args.command == "seed-demo":
            if settings.production:
                # The demo's people share a published password.
                raise SettingsError(
                    "seed-demo loads demo users with a published password;"
                    " it does not run in production"
                )
            _seed(settings)
        elif args.command == "serve":
            _serve(settings, args.host, args.port, args.workers)
        elif args.command == "export-schema":
            from resolvers.root import main as export_schema

            export_schema()
        elif args.command == "reconcile":
            return _reconcile(settings, args)
        else:
            _create_practice(settings, args)
    except SettingsError as exc:
        print(f"carebill: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"carebill: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
