"""Sales tax and the rounding rule, at their edges."""

import pytest

from models.enums import SalesTaxMode
from models.money import Money, divide_round_half_up
from models.tax import TaxedAmount, apply_sales_tax


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (0, 7, 0),
        (4, 10, 0),  # 0.4 down
        (5, 10, 1),  # 0.5 half up
        (6, 10, 1),
        (14, 10, 1),
        (15, 10, 2),  # 1.5 up
        (25, 10, 3),  # 2.5 up (not banker's rounding)
        (-5, 10, -1),  # halves away from zero
        (-4, 10, 0),
        (99_999_999 * 10_000, 10_000, 99_999_999),
        (1, 3, 0),
        (2, 3, 1),
    ],
)
def test_divide_round_half_up(numerator: int, denominator: int, expected: int) -> None:
    assert divide_round_half_up(numerator, denominator) == expected


def test_divide_rejects_non_positive_denominator() -> None:
    with pytest.raises(ValueError, match="positive"):
        divide_round_half_up(1, 0)


@pytest.mark.parametrize(
    ("amount", "mode", "rate", "expected"),
    [
        (10_000, SalesTaxMode.NONE, 0, TaxedAmount(10_000, 0, 10_000)),
        (10_000, SalesTaxMode.EXCLUSIVE, 825, TaxedAmount(10_000, 825, 10_825)),
        # 1999 * 8.25 % = 164.9175 -> 165
        (1_999, SalesTaxMode.EXCLUSIVE, 825, TaxedAmount(1_999, 165, 2_164)),
        # 10 * 5 % = 0.5 -> 1 (half up)
        (10, SalesTaxMode.EXCLUSIVE, 500, TaxedAmount(10, 1, 11)),
        # 9 * 5 % = 0.45 -> 0
        (9, SalesTaxMode.EXCLUSIVE, 500, TaxedAmount(9, 0, 9)),
        (1, SalesTaxMode.EXCLUSIVE, 10_000, TaxedAmount(1, 1, 2)),
        # inclusive: 10825 * 825 / 10825 = 825 exactly
        (10_825, SalesTaxMode.INCLUSIVE, 825, TaxedAmount(10_000, 825, 10_825)),
        # 100 * 2000 / 12000 = 16.666 -> 17
        (100, SalesTaxMode.INCLUSIVE, 2_000, TaxedAmount(83, 17, 100)),
        # 21 * 1000 / 11000 = 1.909 -> 2 ; 11 * 1000/11000 = 1.0
        (11, SalesTaxMode.INCLUSIVE, 1_000, TaxedAmount(10, 1, 11)),
        # 33 * 1000 / 11000 = 3.0 ; 5.5 case: 60.5 -> 61 : 665 * 1000 / 11000 = 60.4545 -> 60
        (665, SalesTaxMode.INCLUSIVE, 1_000, TaxedAmount(605, 60, 665)),
        # exactly half: 1 * 10000 / 20000 = 0.5 -> 1
        (1, SalesTaxMode.INCLUSIVE, 10_000, TaxedAmount(0, 1, 1)),
        (
            99_999_999,
            SalesTaxMode.EXCLUSIVE,
            10_000,
            TaxedAmount(99_999_999, 99_999_999, 199_999_998),
        ),
    ],
)
def test_sales_tax(amount: int, mode: SalesTaxMode, rate: int, expected: TaxedAmount) -> None:
    taxed = apply_sales_tax(amount, mode, rate)
    assert taxed == expected
    assert taxed.subtotal == taxed.total - taxed.tax


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(0, "USD"), "$0.00"),
        (Money(123_456, "USD"), "$1,234.56"),
        (Money(-300, "EUR"), "-€3.00"),
        (Money(500, "JPY"), "¥500"),
        (Money(1_234, "CHF"), "12.34 CHF"),
        (Money(1_234, "KWD"), "1.234 KWD"),
    ],
)
def test_money_formatting(money: Money, text: str) -> None:
    assert money.formatted() == text
