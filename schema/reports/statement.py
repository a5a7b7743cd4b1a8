"""A client's statement over a period: their balance, and the period's invoices, payments and
refunds."""

from __future__ import annotations

from datetime import date

import strawberry

from models import Invoice as InvoiceRow
from models import Payment as PaymentRow
from models import Practice
from models import Refund as RefundRow
from models.reports import (
    Period,
    statement_figures_query,
    statement_invoices_query,
    statement_payments_query,
    statement_refunds_query,
)
from models.reports import StatementFigures as StatementData
from schema.clients import Client
from schema.context import Info, viewer_of
from schema.invoices import InvoiceType, PaymentType, RefundType
from schema.money import MoneyType
from schema.users import Person


@strawberry.type(description="A payment received in a statement's period, and its invoice")
class StatementPayment:
    payment: PaymentType
    invoice: InvoiceType


@strawberry.type(description="A refund made in a statement's period, and its invoice")
class StatementRefund:
    refund: RefundType
    invoice: InvoiceType


@strawberry.type(
    description="A client's account over [from, to] (days in the practice's time zone): their "
    "balance, and the invoices, payments and refunds of the period. Readable by the client, "
    "their providers and an admin: whoever may see the client."
)
class ClientStatement:
    client_row: strawberry.Private[Person]
    data: strawberry.Private[StatementData]
    currency: strawberry.Private[str]
    from_: date = strawberry.field(name="from", description="First day of the period")
    to: date = strawberry.field(description="Last day of the period (included)")
    invoices: list[InvoiceType] = strawberry.field(
        description="Invoices sent in the period, VOID ones included, oldest first"
    )
    payments: list[StatementPayment] = strawberry.field(
        description="Payments received in the period, on any of the client's invoices"
    )
    refunds: list[StatementRefund] = strawberry.field(
        description="Refunds made in the period, on any of the client's invoices"
    )

    def _money(self, amount: int) -> MoneyType:
        return MoneyType.of(amount, self.currency)

    @strawberry.field
    def client(self) -> Client:
        return Client(row=self.client_row)

    @strawberry.field(description="What the client owes now: amountDue of all UNPAID invoices")
    def balance(self) -> MoneyType:
        return self._money(self.data.balance)

    @strawberry.field(description="Sum of the totals of the period's invoices not VOID")
    def invoiced(self) -> MoneyType:
        return self._money(self.data.invoiced)

    @strawberry.field(description="Number of the period's invoices not VOID")
    def invoiced_count(self) -> int:
        return self.data.invoiced_count

    @strawberry.field(description="Still due now on the period's invoices (UNPAID ones)")
    def outstanding(self) -> MoneyType:
        return self._money(self.data.outstanding)

    @strawberry.field(description="Sum of the payments received in the period")
    def paid(self) -> MoneyType:
        return self._money(self.data.paid)

    @strawberry.field(description="Sum of the refunds made in the period")
    def refunded(self) -> MoneyType:
        return self._money(self.data.refunded)

    @classmethod
    def of(
        cls,
        client: Person,
        first: date,
        last: date,
        data: StatementData,
        currency: str,
        invoices: list[InvoiceRow],
        payments: list[tuple[PaymentRow, InvoiceRow]],
        refunds: list[tuple[RefundRow, InvoiceRow]],
    ) -> ClientStatement:
        return cls(
            client_row=client,
            data=data,
            currency=currency,
            from_=first,
            to=last,
            invoices=[InvoiceType(row=row) for row in invoices],
            payments=[
                StatementPayment(
                    payment=PaymentType(row=p, currency=i.currency), invoice=InvoiceType(row=i)
                )
                for p, i in payments
            ],
            refunds=[
                StatementRefund(
                    refund=RefundType(row=r, currency=i.currency), invoice=InvoiceType(row=i)
                )
                for r, i in refunds
            ],
        )


async def load_statement(info: Info, client: Person, first: date, last: date) -> ClientStatement:
    """`client`'s statement; the caller loaded `client` through the viewer's scope, and every
    query here is scoped to the viewer again."""
    viewer = viewer_of(info)
    async with info.context.db.reader() as session:
        practice = await session.get_one(Practice, viewer.practice_id)
        period = Period.of(first, last, practice.time_zone)
        figures = (await session.execute(statement_figures_query(viewer, client.id, period))).one()
        invoices = (
            await session.scalars(statement_invoices_query(viewer, client.id, period))
        ).all()
        payments = (
            await session.execute(statement_payments_query(viewer, client.id, period))
        ).all()
        refunds = (await session.execute(statement_refunds_query(viewer, client.id, period))).all()
    return ClientStatement.of(
        client,
        period.first,
        period.last,
        StatementData.of(figures),
        practice.currency,
        list(invoices),
        [(p, i) for p, i in payments],
        [(r, i) for r, i in refunds],
    )
