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
    formatted: str

    @classmethod
    def of(cls, amount: int, currency: str) -> MoneyType:
        money = DomainMoney(amount, currency)
        return cls(amount=BigInt(amount), currency=currency, formatted=money.formatted())
