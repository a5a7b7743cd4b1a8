"""Reports: the billing report, the aging report and the client statement.

These types only present figures that the database computed (see `models.reports`)."""

from __future__ import annotations

from datetime import date

import strawberry

from models import Invoice as InvoiceRow
from models import Payment as PaymentRow
from models import Refund as RefundRow
from models import User as UserRow
from models.reports import AGING_BUCKETS, AgingAmount, BillingReportData, ClientAgingData
from models.reports import AgingReportData as AgingData
from models.reports import BillingFigures as Figures
from models.reports import StatementFigures as StatementData
from schema.clients import Client
from schema.context import Info
from schema.invoices import Invoice, Payment, Refund
from schema.money import Money
from schema.users import User

_FIGURES = """Billing figures of a set of invoices: those SENT in the report's period (calendar \
days in the practice's time zone) within the viewer's view. Amounts derive from the payment and \
refund rows as they are now: an invoice's paid amount is the sum of its payments (refunds do not \
lower it, as for Invoice.amountPaid). VOID invoices count only in `voided`/`voidedCount`. \
Identity: invoiced = collected + outstanding + forgiven, to the cent."""


@strawberry.interface(description=_FIGURES)
class BillingFigures:
    figures: strawberry.Private[Figures]
    currency_code: strawberry.Private[str]

    def _money(self, amount: int) -> Money:
        return Money.of(amount, self.currency_code)

    @strawberry.field(description="Sum of the totals (tax included) of the invoices not VOID")
    def invoiced(self) -> Money:
        return self._money(self.figures.invoiced)

    @strawberry.field(description="Number of invoices not VOID")
    def invoiced_count(self) -> int:
        return self.figures.invoiced_count

    @strawberry.field(description="Sum of the tax of the invoices not VOID (part of `invoiced`)")
    def tax(self) -> Money:
        return self._money(self.figures.tax)

    @strawberry.field(
        description="Payments received on these invoices, whenever received; gross: refunds "
        "are not deducted (they are in `refunded`)"
    )
    def collected(self) -> Money:
        return self._money(self.figures.collected)

    @strawberry.field(description="Refunds made on these invoices, whenever made")
    def refunded(self) -> Money:
        return self._money(self.figures.refunded)

    @strawberry.field(description="collected - refunded: what the practice keeps")
    def net_collected(self) -> Money:
        return self._money(self.figures.collected - self.figures.refunded)

    @strawberry.field(description="Balances written off: total - paid of FORGIVEN invoices")
    def forgiven(self) -> Money:
        return self._money(self.figures.forgiven)

    @strawberry.field(description="Still owed: total - paid (amountDue) of UNPAID invoices")
    def outstanding(self) -> Money:
        return self._money(self.figures.outstanding)

    @strawberry.field(description="Sum of the totals of VOID invoices (outside the identity)")
    def voided(self) -> Money:
        return self._money(self.figures.voided)

    @strawberry.field(description="Number of VOID invoices")
    def voided_count(self) -> int:
        return self.figures.voided_count


@strawberry.type(description="The billing figures of one provider's invoices")
class ProviderTotals(BillingFigures):
    provider_id: strawberry.Private[int]

    @strawberry.field(description="The provider who sent the invoices")
    async def provider(self, info: Info) -> User:
        row = await info.context.loaders.people.load(self.provider_id)
        assert row is not None  # they sent an invoice in the viewer's view
        return User(row=row)


@strawberry.type(description="The billing figures of the invoices sent in one calendar month")
class MonthTotals(BillingFigures):
    month: str = strawberry.field(description='The calendar month, e.g. "2026-11"')
    from_: date = strawberry.field(
        name="from", description="First day of the month within the report's period"
    )
    to: date = strawberry.field(description="Last day of the month within the report's period")


@strawberry.type(
    description="What was invoiced, collected, refunded, forgiven, voided and is still owed on "
    "the invoices sent in [from, to] (days in the practice's time zone). ADMIN: the whole "
    "practice; PROVIDER: the invoices of their view (those of the clients assigned to them). "
    "Every figure is computed by the database."
)
class BillingReport(BillingFigures):
    from_: date = strawberry.field(name="from", description="First day of the period")
    to: date = strawberry.field(description="Last day of the period (included)")
    time_zone: str = strawberry.field(description="The practice's time zone the days are in")
    currency: str = strawberry.field(description="ISO 4217 currency of every amount")
    by_provider: list[ProviderTotals] = strawberry.field(
        description="The same figures per provider who sent invoices in the period, by name"
    )
    by_month: list[MonthTotals] = strawberry.field(
        description="The same figures per calendar month of the period, in order, every month "
        "of the period included (months without invoices have zeros)"
    )

    @classmethod
    def of(cls, data: BillingReportData, currency: str) -> BillingReport:
        period = data.period
        return cls(
            figures=data.total,
            currency_code=currency,
            from_=period.first,
            to=period.last,
            time_zone=period.zone.key,
            currency=currency,
            by_provider=[
                ProviderTotals(figures=p.figures, currency_code=currency, provider_id=p.provider_id)
                for p in data.by_provider
            ],
            by_month=[
                MonthTotals(
                    figures=m.figures,
                    currency_code=currency,
                    month=m.month.label,
                    from_=m.month.first,
                    to=m.month.last,
                )
                for m in data.by_month
            ],
        )


# --- aging ---------------------------------------------------------------------------------


@strawberry.type(description="Unpaid balances whose age in days is within [minDays, maxDays]")
class AgingBucket:
    label: str = strawberry.field(description='"0-30", "31-60", "61-90" or "91+"')
    min_days: int
    max_days: int | None = strawberry.field(description="null for the last bucket (91+)")
    amount: Money = strawberry.field(description="Sum of the amounts due")
    count: int = strawberry.field(description="Number of UNPAID invoices")


def _buckets(amounts: list[AgingAmount], currency: str) -> list[AgingBucket]:
    return [
        AgingBucket(
            label=bucket.label,
            min_days=bucket.min_days,
            max_days=bucket.max_days,
            amount=Money.of(figure.amount, currency),
            count=figure.count,
        )
        for bucket, figure in zip(AGING_BUCKETS, amounts, strict=True)
    ]


@strawberry.type(description="One client's unpaid balances by age")
class ClientAging:
    client_id: strawberry.Private[int]
    total: Money = strawberry.field(description="Sum of the client's amounts due")
    count: int = strawberry.field(description="Number of the client's UNPAID invoices")
    buckets: list[AgingBucket] = strawberry.field(description="All four buckets, in order")

    @strawberry.field
    async def client(self, info: Info) -> Client:
        row = await info.context.loaders.people.load(self.client_id)
        assert row is not None  # the client of an invoice in the viewer's view
        return Client(row=row)

    @classmethod
    def of(cls, data: ClientAgingData, currency: str) -> ClientAging:
        return cls(
            client_id=data.client_id,
            total=Money.of(data.total.amount, currency),
            count=data.total.count,
            buckets=_buckets(data.buckets, currency),
        )


@strawberry.type(
    description="The amounts due now on the practice's UNPAID invoices sent on or before "
    "`asOf`, by age: the days from the sent date to `asOf`, both in the practice's time zone. "
    "Balances are today's (payments recorded after `asOf` are deducted); `asOf` sets the age "
    "and leaves out invoices sent later. ADMIN only."
)
class AgingReport:
    as_of: date
    total: Money = strawberry.field(description="Sum of the amounts due")
    count: int = strawberry.field(description="Number of UNPAID invoices")
    buckets: list[AgingBucket] = strawberry.field(description="0-30, 31-60, 61-90, 91+ days")
    by_client: list[ClientAging] = strawberry.field(
        description="The same per client with a balance, by name"
    )

    @classmethod
    def of(cls, data: AgingData, currency: str) -> AgingReport:
        return cls(
            as_of=data.as_of,
            total=Money.of(data.total.amount, currency),
            count=data.total.count,
            buckets=_buckets(data.buckets, currency),
            by_client=[ClientAging.of(c, currency) for c in data.by_client],
        )


# --- client statement ----------------------------------------------------------------------


@strawberry.type(description="A payment received in a statement's period, and its invoice")
class StatementPayment:
    payment: Payment
    invoice: Invoice


@strawberry.type(description="A refund made in a statement's period, and its invoice")
class StatementRefund:
    refund: Refund
    invoice: Invoice


@strawberry.type(
    description="A client's account over [from, to] (days in the practice's time zone): their "
    "balance, and the invoices, payments and refunds of the period. Readable by the client, "
    "their providers and an admin: whoever may see the client."
)
class ClientStatement:
    client_row: strawberry.Private[UserRow]
    data: strawberry.Private[StatementData]
    currency: strawberry.Private[str]
    from_: date = strawberry.field(name="from", description="First day of the period")
    to: date = strawberry.field(description="Last day of the period (included)")
    invoices: list[Invoice] = strawberry.field(
        description="Invoices sent in the period, VOID ones included, oldest first"
    )
    payments: list[StatementPayment] = strawberry.field(
        description="Payments received in the period, on any of the client's invoices"
    )
    refunds: list[StatementRefund] = strawberry.field(
        description="Refunds made in the period, on any of the client's invoices"
    )

    def _money(self, amount: int) -> Money:
        return Money.of(amount, self.currency)

    @strawberry.field
    def client(self) -> Client:
        return Client(row=self.client_row)

    @strawberry.field(description="What the client owes now: amountDue of all UNPAID invoices")
    def balance(self) -> Money:
        return self._money(self.data.balance)

    @strawberry.field(description="Sum of the totals of the period's invoices not VOID")
    def invoiced(self) -> Money:
        return self._money(self.data.invoiced)

    @strawberry.field(description="Number of the period's invoices not VOID")
    def invoiced_count(self) -> int:
        return self.data.invoiced_count

    @strawberry.field(description="Still due now on the period's invoices (UNPAID ones)")
    def outstanding(self) -> Money:
        return self._money(self.data.outstanding)

    @strawberry.field(description="Sum of the payments received in the period")
    def paid(self) -> Money:
        return self._money(self.data.paid)

    @strawberry.field(description="Sum of the refunds made in the period")
    def refunded(self) -> Money:
        return self._money(self.data.refunded)

    @classmethod
    def of(
        cls,
        client: UserRow,
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
            invoices=[Invoice(row=row) for row in invoices],
            payments=[
                StatementPayment(
                    payment=Payment(row=p, currency=i.currency), invoice=Invoice(row=i)
                )
                for p, i in payments
            ],
            refunds=[
                StatementRefund(refund=Refund(row=r, currency=i.currency), invoice=Invoice(row=i))
                for r, i in refunds
            ],
        )
