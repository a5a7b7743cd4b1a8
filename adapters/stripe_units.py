"""Amounts as Stripe counts them: ISO 4217 minor units in, Stripe's API units out, and back.

Stripe's API mostly uses the ISO minor unit, with the exceptions of its currency guide
("zero-decimal currencies", "three-decimal currencies" and "special cases"):
- zero-decimal at Stripe: BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF.
  All are zero-decimal in ISO 4217 too except MGA (ISO: 2 decimals), which Stripe takes in whole
  ariary: an MGA amount reaches Stripe divided by 100 and must be a whole ariary.
- ISK is zero-decimal in ISO 4217 but stays two-decimal in Stripe's API, every amount a
  multiple of 100: 5,000 kr is sent as 500000.
- three-decimal (BHD JOD KWD OMR TND): the API takes thousandths, but the last digit must be 0
  (5.124 KWD cannot be charged, 5.120 can). Other ISO three-decimal currencies (IQD, LYD) are
  not Stripe presentment currencies at all.
- HUF and TWD are charged with two decimals (their whole-unit rule is for payouts), and UGX is
  charged zero-decimal (its multiple-of-100 rule is for payouts): nothing changes at charge time.
- every charge is at most 99,999,999 in Stripe's units (its eight-digit ceiling).
An amount Stripe cannot take is refused before any call (`refusal`), never rounded: CareBill
records exactly what the processor holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.currency import UnknownCurrency, exponent
from models.money import Money

MAX_STRIPE_AMOUNT = 99_999_999

_ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
_THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])
_TWO_DECIMAL_AT_STRIPE = frozenset({"ISK"})


@dataclass(frozen=True, slots=True)
class StripeUnit:
    """How Stripe's API counts one currency."""

    decimals: int  # Stripe's API exponent
    step: int  # every amount is a multiple of this, in Stripe's units


class UnchargeableAmount(ValueError):
    """An amount Stripe cannot take in this currency; nothing was sent."""


def unit(currency: str) -> StripeUnit | None:
    """Stripe's unit for `currency` (ISO code, any case), or None when Stripe takes none."""
    code = currency.upper()
    try:
        iso = exponent(code)
    except UnknownCurrency:
        return None
    if code in _ZERO_DECIMAL:
        return StripeUnit(0, 1)
    if code in _TWO_DECIMAL_AT_STRIPE:
        return StripeUnit(2, 100)
    if code in _THREE_DECIMAL:
        return StripeUnit(3, 10)
    if iso > 2:
        return None
    return StripeUnit(iso, 1)


def to_stripe(amount: int, currency: str) -> int:
    """`amount` ISO minor units of `currency` in Stripe's units; raises `UnchargeableAmount`."""
    reason = refusal(amount, currency)
    if reason is not None:
        raise UnchargeableAmount(reason)
    return _scaled(amount, currency)


def from_stripe(amount: int, currency: str) -> int:
    """A Stripe amount of `currency` in ISO minor units (exact for every amount Stripe holds:
    they are multiples of its step)."""
    found = unit(currency)
    if found is None:
        return amount
    shift = found.decimals - exponent(currency.upper())
    return amount // _tens(shift) if shift >= 0 else amount * _tens(-shift)


def refusal(amount: int, currency: str) -> str | None:
    """Why Stripe cannot take `amount` (ISO minor units) of `currency`, or None when it can."""
    code = currency.upper()
    found = unit(code)
    if found is None:
        return f"Stripe does not take payments in {code}"
    shift = found.decimals - exponent(code)
    if shift < 0 and amount % _tens(-shift):
        return f"Stripe takes {code} in whole units only"
    scaled = _scaled(amount, code)
    if scaled % found.step:
        smallest = Money(from_stripe(found.step, code), code).decimal()
        return f"Stripe takes {code} amounts in multiples of {smallest} {code} only"
    if scaled > MAX_STRIPE_AMOUNT:
        return f"the amount is above the largest a card can be charged at Stripe in {code}"
    return None


def _tens(n: int) -> int:
    return int(10**n)


def _scaled(amount: int, currency: str) -> int:
    found = unit(currency)
    assert found is not None
    shift = found.decimals - exponent(currency.upper())
    return amount * _tens(shift) if shift >= 0 else amount // _tens(-shift)
