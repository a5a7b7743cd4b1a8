"""The `carebill` command, run as a subprocess against fresh databases of each backend:
migrate, seed-demo (exactly the contract's demo data, idempotent), create-practice,
export-schema."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, inspect, select

from adapters.database import Database
from adapters.passwords import verify_password
from app import create_app
from models import (
    Base,
    ClientBillingProvider,
    Invoice,
    InvoiceEvent,
    Membership,
    Practice,
    ProviderClient,
    User,
)
from models.enums import InvoiceStatus, Role, SalesTaxMode
from resolvers.root import sdl
from settings import DEV_SECRET_KEY, Settings, SettingsError
from tests.api import Api
from tests.asgi import running
from tests.databases import create_pg_database, drop_pg_database, sqlite_url

CAREBILL = str(Path(sys.executable).with_name("carebill"))
DEMO_PASSWORD = "carebill-demo"
DEMO = "Demo Telehealth"
OTHER = "Other Clinic"

# The contract's table: email -> (practice, roles).
DEMO_PEOPLE = {
    "admin@demo.test": (DEMO, {Role.ADMIN, Role.PROVIDER}),
    "provider@demo.test": (DEMO, {Role.PROVIDER}),
    "provider2@demo.test": (DEMO, {Role.PROVIDER}),
    "client1@demo.test": (DEMO, {Role.CLIENT}),
    "client2@demo.test": (DEMO, {Role.CLIENT}),
    "client3@demo.test": (DEMO, {Role.CLIENT}),
    "other-admin@demo.test": (OTHER, {Role.ADMIN}),
    "other-client@demo.test": (OTHER, {Role.CLIENT}),
}
ASSIGNED = {
    ("provider@demo.test", "client1@demo.test"),
    ("provider@demo.test", "client2@demo.test"),
    ("provider2@demo.test", "client3@demo.test"),
}


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A new, empty database of each backend."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    url, name = await create_pg_database()
    yield url
    await drop_pg_database(name)


async def carebill(url: str, *args: str, cwd: Path, **env: str) -> Run:
    """`carebill *args` in a subprocess, with CAREBILL_DATABASE_URL=url."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CAREBILL_")}
    environment.update(CAREBILL_DATABASE_URL=url, **env)
    process = await asyncio.create_subprocess_exec(
        CAREBILL,
        *args,
        cwd=cwd,
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


async def counts(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        async with db.reader() as session:
            return {
                table.name: int(
                    (await session.execute(select(func.count()).select_from(table))).scalar_one()
                )
                for table in Base.metadata.sorted_tables
            }
    finally:
        await db.dispose()


async def rows(url: str, statement: Any) -> list[Any]:
    db = Database(url)
    try:
        async with db.reader() as session:
            return list((await session.execute(statement)).all())
    finally:
        await db.dispose()


# --- migrate -------------------------------------------------------------------------------


async def test_migrate_creates_every_table_and_is_repeatable(
    fresh_url: str, tmp_path: Path
) -> None:
    first = await carebill(fresh_url, "migrate", cwd=tmp_path)
    assert (first.code, first.out) == (0, "database is up to date\n"), first.err
    second = await carebill(fresh_url, "migrate", cwd=tmp_path)
    assert (second.code, second.out) == (0, "database is up to date\n"), second.err

    db = Database(fresh_url)
    try:
        async with db.engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await db.dispose()
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert set((await counts(fresh_url)).values()) == {0}


# --- seed-demo -----------------------------------------------------------------------------


async def test_seed_demo_is_the_contracts_demo_data_and_idempotent(
    fresh_url: str, tmp_path: Path
) -> None:
    assert (await carebill(fresh_url, "migrate", cwd=tmp_path)).code == 0
    seeded = await carebill(fresh_url, "seed-demo", cwd=tmp_path)
    assert (seeded.code, seeded.out) == (0, "demo data created\n"), seeded.err
    after_first = await counts(fresh_url)

    again = await carebill(fresh_url, "seed-demo", cwd=tmp_path)
    assert (again.code, again.out) == (0, "demo data already present\n"), again.err
    assert await counts(fresh_url) == after_first

    # People, practices and roles: exactly the table, nobody else.
    memberships = await rows(
        fresh_url,
        select(User.email, Practice.name, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .join(Practice, Practice.id == Membership.practice_id),
    )
    found: dict[str, tuple[str, set[Role]]] = {}
    for email, practice, role in memberships:
        found.setdefault(email, (practice, set()))[1].add(role)
        assert found[email][0] == practice, f"{email} is in two practices"
    assert found == DEMO_PEOPLE
    assert after_first["users"] == len(DEMO_PEOPLE)
    assert after_first["practices"] == 2
    hashes = await rows(fresh_url, select(User.email, User.password_hash))
    for email, password_hash in hashes:
        assert verify_password(password_hash, DEMO_PASSWORD), email

    # The practices' set-up.
    practices = {
        name: (currency, mode, rate, enabled)
        for name, currency, mode, rate, enabled in await rows(
            fresh_url,
            select(
                Practice.name,
                Practice.currency,
                Practice.sales_tax_mode,
                Practice.sales_tax_rate_bp,
                Practice.client_billing_enabled,
            ),
        )
    }
    assert practices[DEMO] == ("USD", SalesTaxMode.NONE, 0, True)
    provider = User.__table__.alias("provider")
    client = User.__table__.alias("client")
    assignments = await rows(
        fresh_url,
        select(provider.c.email, client.c.email, Practice.name)
        .select_from(ProviderClient)
        .join(provider, provider.c.id == ProviderClient.provider_id)
        .join(client, client.c.id == ProviderClient.client_id)
        .join(Practice, Practice.id == ProviderClient.practice_id),
    )
    assert {(p, c) for p, c, _ in assignments} == ASSIGNED
    assert {name for _, _, name in assignments} == {DEMO}
    billing = await rows(
        fresh_url,
        select(User.email, Practice.name)
        .join(ClientBillingProvider, ClientBillingProvider.user_id == User.id)
        .join(Practice, Practice.id == ClientBillingProvider.practice_id),
    )
    assert billing == [("provider@demo.test", DEMO)]

    # Invoices: several per demo client, every status, and some for the other clinic.
    invoices = await rows(
        fresh_url,
        select(Practice.name, client.c.email, provider.c.email, Invoice.status, Invoice.currency)
        .select_from(Invoice)
        .join(Practice, Practice.id == Invoice.practice_id)
        .join(client, client.c.id == Invoice.client_id)
        .join(provider, provider.c.id == Invoice.provider_id),
    )
    demo = [i for i in invoices if i[0] == DEMO]
    for email in ("client1@demo.test", "client2@demo.test", "client3@demo.test"):
        assert sum(1 for i in demo if i[1] == email) >= 2, email
    assert {i[3] for i in demo} == set(InvoiceStatus)
    assert {i[4] for i in demo} == {"USD"}
    # Each demo invoice is by a provider the client is assigned to.
    assert {(i[2], i[1]) for i in demo} <= ASSIGNED
    other = [i for i in invoices if i[0] == OTHER]
    assert other
    assert {i[1] for i in other} == {"other-client@demo.test"}
    # Every invoice has its history, starting with SENT.
    events = await rows(fresh_url, select(InvoiceEvent.invoice_id, InvoiceEvent.action))
    all_ids = {i for (i,) in await rows(fresh_url, select(Invoice.id))}
    assert {invoice for invoice, action in events if action == "SENT"} == all_ids

    await _tour(fresh_url)


async def _tour(url: str) -> None:
    """The README's tour: the demo admin logs in (as PROVIDER, their least privileged role),
    switches to ADMIN and sees the whole practice; the client sees only their own."""
    application = create_app(Settings(database_url=url))
    async with running(application) as served:
        transport = httpx.ASGITransport(app=served.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo.test") as http:
            api = Api(http)
            token = await api.login("admin@demo.test", DEMO_PASSWORD)
            who = await api.data(
                "{ viewer { role roles practice { name currency } } }", token=token
            )
            assert who == {
                "viewer": {
                    "role": "PROVIDER",
                    "roles": ["ADMIN", "PROVIDER"],
                    "practice": {"name": DEMO, "currency": "USD"},
                }
            }
            admin = await api.login("admin@demo.test", DEMO_PASSWORD, "ADMIN")
            everything = await api.data(
                "{ invoices(first: 100) { totalCount } clients { totalCount } }", token=admin
            )
            assert everything["clients"]["totalCount"] == 3
            assert everything["invoices"]["totalCount"] >= 6
            client = await api.login("client3@demo.test", DEMO_PASSWORD)
            own = await api.data(
                "{ invoices { edges { node { client { email } } } } }", token=client
            )
            assert {e["node"]["client"]["email"] for e in own["invoices"]["edges"]} == {
                "client3@demo.test"
            }


# --- create-practice ---------------------------------------------------------------------------


async def test_create_practice(fresh_url: str, tmp_path: Path) -> None:
    assert (await carebill(fresh_url, "migrate", cwd=tmp_path)).code == 0
    created = await carebill(
        fresh_url,
        "create-practice",
        "--name",
        "  Sunrise Therapy ",
        "--currency",
        "eur",
        "--time-zone",
        "Europe/Paris",
        "--admin-email",
        " Owner@Sunrise.Example ",
        "--admin-name",
        "Olive Owner",
        "--password",
        "owner-password",
        cwd=tmp_path,
    )
    assert created.code == 0, created.err
    assert created.out.endswith("owner@sunrise.example is its ADMIN\n")
    (practice,) = await rows(
        fresh_url, select(Practice.id, Practice.name, Practice.currency, Practice.time_zone)
    )
    assert practice[1:] == ("Sunrise Therapy", "EUR", "Europe/Paris")
    assert created.out == f"practice {practice[0]} created; owner@sunrise.example is its ADMIN\n"
    members = await rows(
        fresh_url,
        select(User.email, User.name, User.password_hash, Membership.role).join(
            Membership, Membership.user_id == User.id
        ),
    )
    ((email, name, password_hash, role),) = members
    assert (email, name, role) == ("owner@sunrise.example", "Olive Owner", Role.ADMIN)
    assert verify_password(password_hash, "owner-password")

    # A second practice for the same person keeps their password.
    second = await carebill(
        fresh_url,
        "create-practice",
        "--name",
        "Sunset Therapy",
        "--admin-email",
        "owner@sunrise.example",
        "--admin-name",
        "ignored",
        "--password",
        "another-password",
        cwd=tmp_path,
    )
    assert second.code == 0, second.err
    hashes = await rows(fresh_url, select(User.password_hash))
    assert len(hashes) == 1
    assert verify_password(hashes[0][0], "owner-password")
    practices = await rows(fresh_url, select(Practice.name, Practice.currency, Practice.time_zone))
    assert sorted(practices) == [
        ("Sunrise Therapy", "EUR", "Europe/Paris"),
        ("Sunset Therapy", "USD", "UTC"),
    ]


GOOD = {
    "--name": "Good Name",
    "--currency": "USD",
    "--time-zone": "UTC",
    "--admin-email": "a@b.example",
    "--admin-name": "Ann",
    "--password": "long-enough",
}


REFUSALS = [
    ({"--name": "   "}, "the practice needs a name"),
    ({"--name": "n" * 201}, "the practice's name must be at most 200 characters"),
    ({"--currency": "dollars"}, "'DOLLARS' is not an active ISO 4217 currency code"),
    # Three letters are not enough: an unknown code, and gold (a code without a minor unit).
    ({"--currency": "XYZ"}, "'XYZ' is not an active ISO 4217 currency code"),
    ({"--currency": "xau"}, "'XAU' is not an active ISO 4217 currency code"),
    ({"--time-zone": "../../etc/passwd"}, "'../../etc/passwd' is not an IANA time zone"),
    ({"--admin-email": "nobody"}, "'nobody' is not an email address"),
    ({"--admin-email": "x" * 250 + "@b.example"}, "is not an email address"),
    ({"--admin-name": "  "}, "the admin needs a name of at most 200 characters"),
    ({"--password": "short"}, "the password must have at least 8 characters"),
]


async def test_create_practice_refuses_bad_input(fresh_url: str, tmp_path: Path) -> None:
    """Each refusal exits with 2 and a one-line reason, and writes nothing."""
    assert (await carebill(fresh_url, "migrate", cwd=tmp_path)).code == 0

    async def attempt(changes: dict[str, str]) -> Run:
        options = {**GOOD, **changes}
        args = [part for option in options.items() for part in option]
        return await carebill(fresh_url, "create-practice", *args, cwd=tmp_path)

    runs = await asyncio.gather(*(attempt(changes) for changes, _ in REFUSALS))
    for (changes, message), run in zip(REFUSALS, runs, strict=True):
        assert run.code == 2, (changes, run)
        assert run.err.startswith("carebill: ")
        assert message in run.err, (changes, run.err)
        assert "Traceback" not in run.err
        assert run.out == ""
    assert set((await counts(fresh_url)).values()) == {0}


async def test_create_practice_requires_its_options(tmp_path: Path) -> None:
    missing = await carebill(sqlite_url(tmp_path), "create-practice", "--name", "X", cwd=tmp_path)
    assert missing.code == 2
    assert "required" in missing.err


# --- configuration and schema --------------------------------------------------------------------


async def test_production_without_a_secret_key_refuses_to_start(tmp_path: Path) -> None:
    run = await carebill(sqlite_url(tmp_path), "migrate", cwd=tmp_path, CAREBILL_ENV="production")
    assert run.code == 2
    assert run.err == "carebill: CAREBILL_SECRET_KEY is required in production\n"


async def test_export_schema_prints_the_committed_schema(tmp_path: Path) -> None:
    run = await carebill(sqlite_url(tmp_path), "export-schema", cwd=tmp_path)
    assert run.code == 0, run.err
    assert run.out == sdl()


async def test_seed_demo_refuses_to_run_in_production(fresh_url: str, tmp_path: Path) -> None:
    production = {"CAREBILL_ENV": "production", "CAREBILL_SECRET_KEY": secrets.token_urlsafe(32)}
    assert (await carebill(fresh_url, "migrate", cwd=tmp_path, **production)).code == 0
    run = await carebill(fresh_url, "seed-demo", cwd=tmp_path, **production)
    assert run.code == 2
    assert run.err == (
        "carebill: seed-demo loads demo users with a published password;"
        " it does not run in production\n"
    )
    assert set((await counts(fresh_url)).values()) == {0}


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (DEV_SECRET_KEY, "the published development key"),
        ("short-but-random-Zq8", "at least 32 random characters"),
        ("a" * 64, "at least 32 random characters"),
        ("abababababababababababababababababab", "at least 32 random characters"),
    ],
)
async def test_production_refuses_a_weak_secret_key(tmp_path: Path, key: str, why: str) -> None:
    run = await carebill(
        sqlite_url(tmp_path),
        "migrate",
        cwd=tmp_path,
        CAREBILL_ENV="production",
        CAREBILL_SECRET_KEY=key,
    )
    assert run.code == 2
    assert why in run.err
    assert "Traceback" not in run.err
    with pytest.raises(SettingsError, match=why):
        Settings(env="production", secret_key=key)
