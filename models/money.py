"""Money: integer minor units with an ISO 4217 currency, and the one rounding rule."""

from __future__ import annotations

from dataclasses import dataclass

MAX_INPUT_AMOUNT = 99_999_999  # Stripe's own ceiling, and the contract's

# Minor-unit exponent per currency; ISO 4217 currencies not listed use 2.
_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "JOD": 3}
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "JPY": "¥"}


def divide_round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest integer, halves away from zero.

    Integer arithmetic only, so no float can creep into an amount.
    """
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    sign = -1 if numerator < 0 else 1
    quotient, remainder = divmod(abs(numerator), denominator)
    if remainder * 2 >= denominator:
        quotient += 1
    return sign * quotient


def is_valid_currency(code: str) -> bool:
    return len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def formatted(self) -> str:
        """Human-readable amount, e.g. `$1,234.50` or `-€3.00`."""
        exponent = _EXPONENTS.get(self.currency, 2)
        sign = "-" if self.amount < 0 else ""
        units, minor = divmod(abs(self.amount), 10**exponent)
        number = f"{units:,}" + (f".{minor:0{exponent}d}" if exponent else "")
        symbol = _SYMBOLS.get(self.currency)
        return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {self.currency}"

    def decimal(self) -> str:
        """The amount in major units as a plain number, e.g. `1234.50` (for CSV files)."""
        exponent = _EXPONENTS.get(self.currency, 2)
        sign = "-" if self.amount < 0 else ""
        units, minor = divmod(abs(self.amount), 10**exponent)
        return f"{sign}{units}" + (f".{minor:0{exponent}d}" if exponent else "")
