"""Factories: whole practices with their people, tokens and invoices, written through the
domain model (never hand-written rows). Every call makes new, unique people, so tests that
share a database never see each other's data."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from sqlalchemy import insert

from adapters.database import Database
from adapters.passwords import hash_password
from models import (
    ClientBillingProvider,
    Invoice,
    Membership,
    Payment,
    Practice,
    ProviderClient,
    Refund,
    User,
)
from models.base import utcnow
from models.enums import PaymentMethodKind, Role, SalesTaxMode
from models.sending import build_invoice, send_invoice
from resolvers import sessions
from schema.services import Services

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

    async def add_client(self, name: str, provider: Person | None = None) -> Person:
        """One more CLIENT of the practice, assigned to `provider` (default: the provider)."""
        provider = provider or self.provider
        async with self.db.writer() as session, session.begin():
            user = User(
                email=f"client-{uuid.uuid4().hex[:10]}@example.test",
                name=name,
                password_hash=_PASSWORD_HASH,
            )
            session.add(user)
            await session.flush()
            session.add(Membership(user_id=user.id, practice_id=self.practice_id, role=Role.CLIENT))
            session.add(
                ProviderClient(
                    practice_id=self.practice_id, provider_id=provider.id, client_id=user.id
                )
            )
        return Person(user.id, user.email, user.name)

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
        description: str = "Session",
        due_date: date | None = None,
    ) -> int:
        """An invoice sent `days_ago` (due on `due_date`), then paid, refunded, forgiven or
        voided as asked."""
        client = client or self.c1
        provider = provider or self.provider
        sent = utcnow() - timedelta(days=days_ago)
        async with self.db.writer() as session, session.begin():
            practice = await session.get_one(Practice, self.practice_id, with_for_update=True)
            invoice = await send_invoice(
                session,
                practice,
                provider_id=provider.id,
                client_id=client.id,
                description=description,
                amount=amount,
                due_date=due_date,
                today=sent.date(),
                now=sent,
            )
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


# --- many invoices at once (reports) -----------------------------------------------------------


@dataclass(frozen=True)
class InvoiceSpec:
    """One invoice for `bulk_invoices`: sent at `sent_at` with the tax setting `tax`, then its
    payments and refunds (amount None = everything due / refundable), then maybe closed."""

    client: Person
    provider: Person
    amount: int
    sent_at: datetime
    tax: tuple[SalesTaxMode, int] = (SalesTaxMode.NONE, 0)
    payments: tuple[tuple[int | None, datetime], ...] = ()
    refunds: tuple[tuple[int | None, datetime], ...] = ()
    close: Literal["forgive", "void"] | None = None
    closed_at: datetime | None = None
    description: str = "Session"


def _built(practice: Practice, number: int, spec: InvoiceSpec) -> Invoice:
    """The invoice of `spec` built by the domain model (numbering, tax, state machine)."""
    mode, rate = spec.tax
    # A stand-in carrying the tax setting of this invoice; never added to the session.
    setting = Practice(
        id=practice.id,
        currency=practice.currency,
        sales_tax_mode=mode,
        sales_tax_rate_bp=rate,
        sales_tax_label=None if mode is SalesTaxMode.NONE else "Sales tax",
        last_invoice_number=number - 1,
    )
    invoice = build_invoice(
        setting,
        provider_id=spec.provider.id,
        client_id=spec.client.id,
        description=spec.description,
        amount=spec.amount,
        due_date=None,
        today=spec.sent_at.date(),
        now=spec.sent_at,
    )
    actor = spec.provider.id
    for amount, at in spec.payments:
        payment = invoice.record_payment(
            amount=amount or invoice.amounts().due,
            method=PaymentMethodKind.CASH,
            actor_id=actor,
            received_at=at,
            now=at,
        )
        # Provisional ids in payment order (refunds name the payment they return); the real
        # ones come from the database and replace them in `bulk_invoices`.
        payment.id = len(invoice.payments)
    for amount, at in spec.refunds:
        invoice.refund(amount=amount, reason="test", actor_id=actor, now=at)
    if spec.close == "forgive":
        invoice.forgive(actor_id=actor, reason="test", now=spec.closed_at or spec.sent_at)
    elif spec.close == "void":
        invoice.void(actor_id=actor, reason="test", now=spec.closed_at or spec.sent_at)
    return invoice


_INVOICE_COLUMNS = [c.key for c in Invoice.__table__.columns if c.key not in ("id", "version")]


async def bulk_invoices(world: World, specs: Sequence[InvoiceSpec]) -> list[int]:
    """Many invoices quickly: each is built and moved through its life by the domain model,
    then the invoice, payment and refund rows are bulk-inserted (a few statements per
    thousand rows). No history events or alerts are written: this is for report volumes.
    Returns the invoice ids in the order of `specs`."""
    async with world.db.writer() as session, session.begin():
        practice = await session.get_one(Practice, world.practice_id, with_for_update=True)
        first = practice.last_invoice_number + 1
        built = [_built(practice, first + i, spec) for i, spec in enumerate(specs)]
        practice.last_invoice_number += len(specs)
        if not built:
            return []
        rows = [{k: getattr(inv, k) for k in _INVOICE_COLUMNS} | {"version": 1} for inv in built]
        # Core inserts on the tables: the ORM's bulk insert would split the rows into batches
        # by which of their values are None, one round trip each.
        invoices = Invoice.metadata.tables["invoices"]
        result = await session.execute(
            insert(invoices).returning(invoices.c.id, sort_by_parameter_order=True), rows
        )
        ids = list(result.scalars())
        payments = [
            {
                "invoice_id": invoice_id,
                "amount": p.amount,
                "method": p.method,
                "reference": p.reference,
                "received_at": p.received_at,
                "recorded_by_id": p.recorded_by_id,
                "created_at": p.created_at,
            }
            for invoice_id, inv in zip(ids, built, strict=True)
            for p in inv.payments
        ]
        real_payment_id: dict[tuple[int, int], int] = {}
        if payments:
            table = Payment.metadata.tables["payments"]
            result = await session.execute(
                insert(table).returning(table.c.id, sort_by_parameter_order=True), payments
            )
            provisional = [(i, p.id) for i, inv in enumerate(built) for p in inv.payments]
            real_payment_id = dict(zip(provisional, result.scalars(), strict=True))
        refunds = [
            {
                "invoice_id": invoice_id,
                "payment_id": real_payment_id[(i, r.payment_id)] if r.payment_id else None,
                "amount": r.amount,
                "reason": r.reason,
                "created_by_id": r.created_by_id,
                "created_at": r.created_at,
            }
            for i, (invoice_id, inv) in enumerate(zip(ids, built, strict=True))
            for r in inv.refunds
        ]
        if refunds:
            await session.execute(insert(Refund.metadata.tables["refunds"]), refunds)
    return ids


_TAXES = ((SalesTaxMode.NONE, 0), (SalesTaxMode.EXCLUSIVE, 825), (SalesTaxMode.INCLUSIVE, 2000))


def random_invoice_specs(
    world: World, count: int, start: datetime, end: datetime, seed: int = 1
) -> list[InvoiceSpec]:
    """`count` invoices sent between `start` and `end`, in every status (partial payments,
    partial and full refunds, forgiven after a part payment, voided), over the world's three
    clients and three providers, with and without tax. Deterministic for a given seed."""
    rng = random.Random(seed)
    span = int((end - start).total_seconds())
    clients = (world.c1, world.c2, world.c3)
    providers = {world.c1: world.provider, world.c2: world.provider, world.c3: world.provider2}
    specs = []
    for _ in range(count):
        client = rng.choice(clients)
        # Now and then the admin (who also provides care) invoices a client.
        provider = world.admin if rng.random() < 0.1 else providers[client]
        sent = start + timedelta(seconds=rng.randrange(span))
        later = sent + timedelta(hours=rng.randrange(1, 24 * 60))
        amount = rng.randrange(100, 500_000)
        part = rng.randrange(1, amount)  # less than the total whatever the tax
        outcome = rng.randrange(8)
        payments: tuple[tuple[int | None, datetime], ...] = ()
        refunds: tuple[tuple[int | None, datetime], ...] = ()
        close: Literal["forgive", "void"] | None = None
        if outcome == 1:  # partly paid
            payments = ((part, later),)
        elif outcome in (2, 3):  # paid, in one or two payments
            payments = ((None, later),) if outcome == 2 else ((part, later), (None, later))
        elif outcome in (4, 5):  # paid, then refunded in part or in full
            payments = ((None, later),)
            refunds = ((min(part, amount // 2) or 1 if outcome == 4 else None, later),)
        elif outcome == 6:  # forgiven, maybe after a part payment
            payments = ((part, later),) if rng.random() < 0.5 else ()
            close = "forgive"
        elif outcome == 7:
            close = "void"
        specs.append(
            InvoiceSpec(
                client=client,
                provider=provider,
                amount=amount,
                sent_at=sent,
                tax=rng.choice(_TAXES),
                payments=payments,
                refunds=refunds,
                close=close,
                closed_at=later,
            )
        )
    return specs
