"""The billing report: its figures in total, per provider and per month."""

from __future__ import annotations

from datetime import date

import strawberry

from models.reports import BillingFigures as Figures
from models.reports import BillingReportData
from schema.context import Info
from schema.money import MoneyType
from schema.users import UserType

_FIGURES = """Billing figures of a set of invoices: those SENT in the report's period (calendar \
days in the practice's time zone) within the viewer's view. Amounts derive from the payment and \
refund rows as they are now: an invoice's paid amount is the sum of its payments (refunds do not \
lower it, as for Invoice.amountPaid). VOID invoices count only in `voided`/`voidedCount`. \
Identity: invoiced = collected + outstanding + forgiven, to the cent."""


@strawberry.interface(name="BillingFigures", description=_FIGURES)
class BillingFiguresType:
    figures: strawberry.Private[Figures]
    currency_code: strawberry.Private[str]

    def _money(self, amount: int) -> MoneyType:
        return MoneyType.of(amount, self.currency_code)

    @strawberry.field(description="Sum of the totals (tax included) of the invoices not VOID")
    def invoiced(self) -> MoneyType:
        return self._money(self.figures.invoiced)

    @strawberry.field(description="Number of invoices not VOID")
    def invoiced_count(self) -> int:
        return self.figures.invoiced_count

    @strawberry.field(description="Sum of the tax of the invoices not VOID (part of `invoiced`)")
    def tax(self) -> MoneyType:
        return self._money(self.figures.tax)

    @strawberry.field(
        description="Payments received on these invoices, whenever received; gross: refunds "
        "are not deducted (they are in `refunded`)"
    )
    def collected(self) -> MoneyType:
        return self._money(self.figures.collected)

    @strawberry.field(description="Refunds made on these invoices, whenever made")
    def refunded(self) -> MoneyType:
        return self._money(self.figures.refunded)

    @strawberry.field(description="collected - refunded: what the practice keeps")
    def net_collected(self) -> MoneyType:
        return self._money(self.figures.collected - self.figures.refunded)

    @strawberry.field(description="Balances written off: total - paid of FORGIVEN invoices")
    def forgiven(self) -> MoneyType:
        return self._money(self.figures.forgiven)

    @strawberry.field(description="Still owed: total - paid (amountDue) of UNPAID invoices")
    def outstanding(self) -> MoneyType:
        return self._money(self.figures.outstanding)

    @strawberry.field(description="Sum of the totals of VOID invoices (outside the identity)")
    def voided(self) -> MoneyType:
        return self._money(self.figures.voided)

    @strawberry.field(description="Number of VOID invoices")
    def voided_count(self) -> int:
        return self.figures.voided_count


@strawberry.type(description="The billing figures of one provider's invoices")
class ProviderTotals(BillingFiguresType):
    provider_id: strawberry.Private[int]

    @strawberry.field(description="The provider who sent the invoices")
    async def provider(self, info: Info) -> UserType:
        row = await info.context.loaders.people.load(self.provider_id)
        assert row is not None  # they sent an invoice in the viewer's view
        return UserType(row=row)


@strawberry.type(description="The billing figures of the invoices sent in one calendar month")
class MonthTotals(BillingFiguresType):
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
class BillingReport(BillingFiguresType):
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
