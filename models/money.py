"""Money: integer minor units with an ISO 4217 currency, and the one rounding rule."""

from __future__ import annotations

from dataclasses import dataclass

from models.currency import EXPONENTS, is_currency

MAX_INPUT_AMOUNT = 99_999_999  # Stripe's own ceiling, and the contract's

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
    """An active ISO 4217 code with a minor unit (see models/currency.py)."""
    return is_currency(code)


def _exponent(currency: str) -> int:
    # A row written before codes were checked may hold an unknown code: it is still shown (as
    # hundredths, what it was shown as then) rather than failing every page that reads it.
    return EXPONENTS.get(currency, 2)


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def formatted(self) -> str:
        """Human-readable amount, e.g. `$1,234.50` or `-€3.00`."""
        exponent = _exponent(self.currency)
        sign = "-" if self.amount < 0 else ""
        units, minor = divmod(abs(self.amount), 10**exponent)
        number = f"{units:,}" + (f".{minor:0{exponent}d}" if exponent else "")
        symbol = _SYMBOLS.get(self.currency)
        return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {self.currency}"

    def decimal(self) -> str:
        """The amount in major units as a plain number, e.g. `1234.50` (for CSV files)."""
        exponent = _exponent(self.currency)
        sign = "-" if self.amount < 0 else ""
        units, minor = divmod(abs(self.amount), 10**exponent)
        return f"{sign}{units}" + (f".{minor:0{exponent}d}" if exponent else "")
