"""The demo data (`carebill seed-demo`, the README's tour): two practices, their people and
invoices covering every status, every person's password `carebill-demo`. Seeding is idempotent:
a database with the demo practice is left as is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.database import Database
from adapters.passwords import hash_password
from models import ClientBillingProvider, Membership, Practice, ProviderClient, User
from models.base import utcnow
from models.enums import PaymentMethodKind, Role
from models.sending import send_invoice

DEMO_PASSWORD = "carebill-demo"
DEMO_PRACTICE = "Demo Telehealth"
OTHER_PRACTICE = "Other Clinic"


@dataclass(frozen=True)
class DemoInvoice:
    client: str
    provider: str
    description: str
    amount: int
    days_ago: int
    # Steps after sending: ("pay", amount, method), ("forgive",), ("void",), ("refund", amount)
    steps: tuple[tuple[object, ...], ...] = ()


DEMO_INVOICES = (
    DemoInvoice("client1", "provider", "Initial consultation", 12_000, 3),
    DemoInvoice("client1", "provider", "Follow-up session", 8_000, 20, (("pay", 8_000, "CASH"),)),
    DemoInvoice("client1", "provider", "Care plan review", 20_000, 45, (("pay", 5_000, "CHECK"),)),
    DemoInvoice(
        "client1",
        "provider",
        "Cancelled group session",
        4_500,
        70,
        (("pay", 4_500, "BANK_TRANSFER"), ("refund", 4_500)),
    ),
    DemoInvoice("client2", "provider", "Therapy session", 9_500, 10),
    DemoInvoice("client2", "provider", "Nutrition coaching", 6_000, 35, (("forgive",),)),
    DemoInvoice("client2", "provider", "Duplicate booking", 4_000, 5, (("void",),)),
    DemoInvoice(
        "client2",
        "provider",
        "Assessment package",
        15_000,
        100,
        (("pay", 15_000, "OTHER"), ("refund", 3_000)),
    ),
    DemoInvoice("client3", "provider2", "Sleep consultation", 11_000, 95),
    DemoInvoice("client3", "provider2", "Medication review", 7_500, 15, (("pay", 7_500, "CASH"),)),
)
OTHER_INVOICES = (
    DemoInvoice("other-client", "other-admin", "Physiotherapy session", 9_000, 12),
    DemoInvoice(
        "other-client",
        "other-admin",
        "Home exercise plan",
        4_500,
        40,
        (("pay", 4_500, "CASH"),),
    ),
)


async def _user(session: AsyncSession, handle: str, name: str, password_hash: str) -> User:
    user = User(email=f"{handle}@demo.test", name=name, password_hash=password_hash)
    session.add(user)
    await session.flush()
    return user


async def _invoices(
    session: AsyncSession,
    practice: Practice,
    people: dict[str, User],
    specs: tuple[DemoInvoice, ...],
) -> None:
    now = utcnow()
    for spec in specs:
        sent = now - timedelta(days=spec.days_ago)
        provider = people[spec.provider].id
        invoice = await send_invoice(
            session,
            practice,
            provider_id=provider,
            client_id=people[spec.client].id,
            description=spec.description,
            amount=spec.amount,
            due_date=(sent + timedelta(days=30)).date(),
            today=sent.date(),
            now=sent,
        )
        for offset, step in enumerate(spec.steps, start=1):
            at = sent + timedelta(hours=offset)
            match step:
                case ("pay", int(amount), str(method)):
                    invoice.record_payment(
                        amount=amount,
                        method=PaymentMethodKind(method),
                        actor_id=provider,
                        reference=f"demo-{method.lower()}",
                        now=at,
                    )
                case ("forgive",):
                    invoice.forgive(actor_id=provider, reason="hardship", now=at)
                case ("void",):
                    invoice.void(actor_id=provider, reason="sent twice", now=at)
                case ("refund", int(amount)):
                    invoice.refund(
                        amount=amount, reason="session cancelled", actor_id=provider, now=at
                    )
            await session.flush()


async def seed_demo(db: Database) -> bool:
    """Create the demo data; False when it was already there."""
    async with db.writer() as session, session.begin():
        existing = await session.execute(select(Practice.id).where(Practice.name == DEMO_PRACTICE))
        if existing.first() is not None:
            return False
        password = hash_password(DEMO_PASSWORD)
        demo = Practice(name=DEMO_PRACTICE, currency="USD", time_zone="America/New_York")
        other = Practice(name=OTHER_PRACTICE, currency="EUR", time_zone="Europe/Berlin")
        demo.client_billing_enabled = True
        other.client_billing_enabled = True
        session.add_all([demo, other])
        await session.flush()
        people = {
            "admin": await _user(session, "admin", "Avery Admin", password),
            "provider": await _user(session, "provider", "Dr. Priya Patel", password),
            "provider2": await _user(session, "provider2", "Dr. Sam Okafor", password),
            "client1": await _user(session, "client1", "Casey Client", password),
            "client2": await _user(session, "client2", "Jordan Lee", password),
            "client3": await _user(session, "client3", "Morgan Diaz", password),
            "other-admin": await _user(session, "other-admin", "Olga Admin", password),
            "other-client": await _user(session, "other-client", "Otto Client", password),
        }
        memberships = [
            (demo, "admin", Role.ADMIN),
            (demo, "admin", Role.PROVIDER),
            (demo, "provider", Role.PROVIDER),
            (demo, "provider2", Role.PROVIDER),
            (demo, "client1", Role.CLIENT),
            (demo, "client2", Role.CLIENT),
            (demo, "client3", Role.CLIENT),
            (other, "other-admin", Role.ADMIN),
            (other, "other-client", Role.CLIENT),
        ]
        session.add_all(
            Membership(user_id=people[h].id, practice_id=p.id, role=r) for p, h, r in memberships
        )
        session.add_all(
            ProviderClient(practice_id=demo.id, provider_id=people[p].id, client_id=people[c].id)
            for p, c in (("provider", "client1"), ("provider", "client2"), ("provider2", "client3"))
        )
        session.add(ClientBillingProvider(practice_id=demo.id, user_id=people["provider"].id))
        await session.flush()
        await _invoices(session, demo, people, DEMO_INVOICES)
        await _invoices(session, other, people, OTHER_INVOICES)
    return True
