"""The currency table: which ISO 4217 codes CareBill bills in, and each one's minor unit.

The data is ISO 4217's own list (List One, as published by its maintenance agency), carried by
the `iso4217` package, so a new edition is a dependency update rather than an edited table.
Codes without a minor unit (gold, SDR, test and "no currency" codes) cannot hold an invoice:
they are refused like unknown ones.
"""

from __future__ import annotations

from iso4217 import Currency


class UnknownCurrency(ValueError):
    """A code that is not an active ISO 4217 currency with a minor unit."""

    def __init__(self, code: str) -> None:
        super().__init__(
            f"{code!r} is not an active ISO 4217 currency code with a minor unit "
            "(e.g. USD, EUR, JPY, KWD)"
        )
        self.code = code


def _exponents() -> dict[str, int]:
    return {c.code: c.exponent for c in Currency if c.exponent is not None}


# Built once: the package's table never changes while the process runs.
EXPONENTS: dict[str, int] = _exponents()


def exponent(code: str) -> int:
    """The number of decimals of `code`'s minor unit (USD 2, JPY 0, KWD 3); raises
    `UnknownCurrency` for anything else."""
    found = EXPONENTS.get(code)
    if found is None:
        raise UnknownCurrency(code)
    return found


def currency_code(raw: str) -> str:
    """`raw` as a known code (trimmed, upper-cased), or `UnknownCurrency`."""
    code = raw.strip().upper()
    exponent(code)
    return code


def is_currency(code: str) -> bool:
    return code in EXPONENTS
