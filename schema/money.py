"""The Money type: integer minor units and an ISO currency."""

from __future__ import annotations

import strawberry

from models.money import Money as DomainMoney
from schema.scalars import BigInt


@strawberry.type(
    name="Money", description="An amount in minor units (cents) of an ISO 4217 currency"
)
class MoneyType:
    amount: BigInt
    currency: str

    # Formatted when asked for: a page's invoice has ten amounts, and a client seldom shows
    # each of them formatted.
    @strawberry.field
    def formatted(self) -> str:
        return DomainMoney(self.amount, self.currency).formatted()

    @classmethod
    def of(cls, amount: int, currency: str) -> MoneyType:
        return cls(amount=BigInt(amount), currency=currency)
