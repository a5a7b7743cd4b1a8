"""Factories: whole practices with their people, tokens and invoices, written through the
domain model (never hand-written rows). Every call makes new, unique people, so tests that
share a database never see each other's data."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from adapters.database import Database
from adapters.passwords import hash_password
from models import ClientBillingProvider, Invoice, Membership, Practice, ProviderClient, User
from models.base import utcnow
from models.enums import PaymentMethodKind, Role, SalesTaxMode
from models.sending import issue_invoice
from resolvers import sessions
from resolvers.context import Services

PASSWORD = "correct-horse-battery"
_PASSWORD_HASH = hash_password(PASSWORD)  # argon2 is slow on purpose: hash once
_counter = itertools.count(1)


@dataclass(frozen=True)
class Person:
    id: int
    email: str
    name: str


@dataclass
class World:
    """A practice like the demo one: an admin who also provides care, a provider assigned to
    Client Billing with clients c1 and c2, a provider not assigned (with client c3)."""

    services: Services
    practice_id: int
    currency: str
    admin: Person
    provider: Person
    provider2: Person
    c1: Person
    c2: Person
    c3: Person
    _tokens: dict[tuple[int, Role], str] = field(default_factory=dict)

    @property
    def db(self) -> Database:
        return self.services.db

    async def token(self, person: Person, role: Role | str) -> str:
        """A bearer token for `person` acting as `role` (issued directly, no password hash)."""
        role = Role(role)
        key = (person.id, role)
        if key not in self._tokens:
            async with self.db.writer() as session, session.begin():
                token, _ = await sessions.issue(
                    session, self.services, person.id, self.practice_id, role
                )
            self._tokens[key] = token
        return self._tokens[key]

    async def invoice(
        self,
        client: Person | None = None,
        provider: Person | None = None,
        amount: int = 10_000,
        *,
        days_ago: int = 0,
        paid: int = 0,
        refunded: int = 0,
        forgive: bool = False,
        void: bool = False,
    ) -> int:
        """An invoice sent `days_ago`, then paid, refunded, forgiven or voided as asked."""
        client = client or self.c1
        provider = provider or self.provider
        sent = utcnow() - timedelta(days=days_ago)
        async with self.db.writer() as session, session.begin():
            practice = await session.get_one(Practice, self.practice_id, with_for_update=True)
            invoice = issue_invoice(
                practice,
                provider_id=provider.id,
                client_id=client.id,
                description="Session",
                amount=amount,
                due_date=None,
                today=sent.date(),
                now=sent,
            )
            session.add(invoice)
            await session.flush()
            invoice.record_sent(actor_id=provider.id, now=sent)
            if paid:
                invoice.record_payment(
                    amount=paid, method=PaymentMethodKind.CASH, actor_id=provider.id, now=sent
                )
            if refunded:
                invoice.refund(amount=refunded, reason="test", actor_id=provider.id, now=sent)
            if forgive:
                invoice.forgive(actor_id=provider.id, reason="test", now=sent)
            if void:
                invoice.void(actor_id=provider.id, reason="test", now=sent)
        return invoice.id

    async def load_invoice(self, invoice_id: int) -> Invoice:
        from sqlalchemy import select
        from sqlalchemy.orm import selectinload

        async with self.db.reader() as session:
            return (
                await session.execute(
                    select(Invoice)
                    .where(Invoice.id == invoice_id)
                    .options(selectinload(Invoice.payments), selectinload(Invoice.refunds))
                )
            ).scalar_one()


async def make_world(
    services: Services,
    *,
    currency: str = "USD",
    tax: tuple[SalesTaxMode, int] = (SalesTaxMode.NONE, 0),
    billing_enabled: bool = True,
) -> World:
    n = next(_counter)
    tag = uuid.uuid4().hex[:8]
    async with services.db.writer() as session, session.begin():
        practice = Practice(
            name=f"Practice {n}-{tag}",
            currency=currency,
            time_zone="America/New_York",
            sales_tax_mode=tax[0],
            sales_tax_rate_bp=tax[1],
            client_billing_enabled=billing_enabled,
        )
        session.add(practice)
        people: dict[str, User] = {}
        for handle, name in (
            ("admin", "Ada Admin"),
            ("provider", "Pat Provider"),
            ("provider2", "Quinn Provider"),
            ("c1", "Cleo Client"),
            ("c2", "Dana Client"),
            ("c3", "Eli Client"),
        ):
            user = User(
                email=f"{handle}-{tag}@example.test", name=name, password_hash=_PASSWORD_HASH
            )
            session.add(user)
            people[handle] = user
        await session.flush()
        roles = [
            ("admin", Role.ADMIN),
            ("admin", Role.PROVIDER),
            ("provider", Role.PROVIDER),
            ("provider2", Role.PROVIDER),
            ("c1", Role.CLIENT),
            ("c2", Role.CLIENT),
            ("c3", Role.CLIENT),
        ]
        session.add_all(
            Membership(user_id=people[h].id, practice_id=practice.id, role=r) for h, r in roles
        )
        session.add_all(
            ProviderClient(
                practice_id=practice.id, provider_id=people[p].id, client_id=people[c].id
            )
            for p, c in (("provider", "c1"), ("provider", "c2"), ("provider2", "c3"))
        )
        session.add(ClientBillingProvider(practice_id=practice.id, user_id=people["provider"].id))
    persons = {h: Person(u.id, u.email, u.name) for h, u in people.items()}
    return World(
        services=services,
        practice_id=practice.id,
        currency=currency,
        admin=persons["admin"],
        provider=persons["provider"],
        provider2=persons["provider2"],
        c1=persons["c1"],
        c2=persons["c2"],
        c3=persons["c3"],
    )
