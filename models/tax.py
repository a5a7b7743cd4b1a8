"""Sales tax as the contract defines it, computed once when an invoice is sent."""

from __future__ import annotations

from dataclasses import dataclass

from models.enums import SalesTaxMode
from models.money import divide_round_half_up

MAX_RATE_BASIS_POINTS = 10_000  # 100 %


@dataclass(frozen=True, slots=True)
class TaxedAmount:
    subtotal: int
    tax: int
    total: int


def apply_sales_tax(amount: int, mode: SalesTaxMode, rate_basis_points: int) -> TaxedAmount:
    """Tax on `amount` minor units; rounding half up; `subtotal = total - tax`."""
    if mode is SalesTaxMode.NONE or rate_basis_points == 0:
        return TaxedAmount(subtotal=amount, tax=0, total=amount)
    if mode is SalesTaxMode.EXCLUSIVE:
        tax = divide_round_half_up(amount * rate_basis_points, 10_000)
        total = amount + tax
    else:
        tax = divide_round_half_up(amount * rate_basis_points, 10_000 + rate_basis_points)
        total = amount
    return TaxedAmount(subtotal=total - tax, tax=tax, total=total)
