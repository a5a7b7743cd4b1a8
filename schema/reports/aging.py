"""The aging report: unpaid balances by age, in total and per client."""

from __future__ import annotations

from datetime import date

import strawberry

from models.reports import AGING_BUCKETS, AgingAmount, ClientAgingData
from models.reports import AgingReportData as AgingData
from schema.clients import Client
from schema.context import Info
from schema.money import MoneyType


@strawberry.type(description="Unpaid balances whose age in days is within [minDays, maxDays]")
class AgingBucket:
    label: str = strawberry.field(description='"0-30", "31-60", "61-90" or "91+"')
    min_days: int
    max_days: int | None = strawberry.field(description="null for the last bucket (91+)")
    amount: MoneyType = strawberry.field(description="Sum of the amounts due")
    count: int = strawberry.field(description="Number of UNPAID invoices")


def _buckets(amounts: list[AgingAmount], currency: str) -> list[AgingBucket]:
    return [
        AgingBucket(
            label=bucket.label,
            min_days=bucket.min_days,
            max_days=bucket.max_days,
            amount=MoneyType.of(figure.amount, currency),
            count=figure.count,
        )
        for bucket, figure in zip(AGING_BUCKETS, amounts, strict=True)
    ]


@strawberry.type(description="One client's unpaid balances by age")
class ClientAging:
    client_id: strawberry.Private[int]
    total: MoneyType = strawberry.field(description="Sum of the client's amounts due")
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
            total=MoneyType.of(data.total.amount, currency),
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
    total: MoneyType = strawberry.field(description="Sum of the amounts due")
    count: int = strawberry.field(description="Number of UNPAID invoices")
    buckets: list[AgingBucket] = strawberry.field(description="0-30, 31-60, 61-90, 91+ days")
    by_client: list[ClientAging] = strawberry.field(
        description="The same per client with a balance, by name"
    )

    @classmethod
    def of(cls, data: AgingData, currency: str) -> AgingReport:
        return cls(
            as_of=data.as_of,
            total=MoneyType.of(data.total.amount, currency),
            count=data.total.count,
            buckets=_buckets(data.buckets, currency),
            by_client=[ClientAging.of(c, currency) for c in data.by_client],
        )
