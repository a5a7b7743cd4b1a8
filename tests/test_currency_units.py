"""Every figure in its currency's own ISO 4217 minor unit, and Stripe's units at the processor.

The table of exponents, the formatting, the refusal of unknown codes, and what CareBill sends
to Stripe (localstripe) and records for currencies whose units differ: ISK (two-decimal at
Stripe), MGA (zero-decimal at Stripe), three-decimal currencies (multiples of 10 at Stripe),
and a total that EXCLUSIVE tax lifts past the per-charge ceiling."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.payment_processor import charge_refusal
from adapters.stripe_units import UnchargeableAmount, from_stripe, refusal, to_stripe
from models.currency import UnknownCurrency, currency_code, exponent
from models.enums import ProcessorType, SalesTaxMode
from models.money import Money
from schema.node import encode_id
from schema.services import Services
from tests.api import Api
from tests.factories import World, make_world
from tests.stripe_server import LocalStripe, deliver, enable_cards, event_body, sign

# --- the table ---------------------------------------------------------------------------------


ZERO_DECIMAL = ["XOF", "XAF", "XPF", "BIF", "DJF", "GNF", "KMF", "PYG", "RWF", "UGX", "VUV", "KRW"]


@pytest.mark.parametrize(
    ("code", "digits"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("JPY", 0),
        ("ISK", 0),
        ("HUF", 2),
        ("TWD", 2),
        ("MGA", 2),
        *(
            (code, 0)
            for code in [
                "XOF",
                "XAF",
                "XPF",
                "BIF",
                "DJF",
                "GNF",
                "KMF",
                "PYG",
                "RWF",
                "UGX",
                "VUV",
                "KRW",
                "CLP",
            ]
        ),
        *((code, 3) for code in ["BHD", "JOD", "KWD", "OMR", "TND", "IQD", "LYD"]),
        ("CLF", 4),
    ],
)
def test_exponents_are_iso_4217(code: str, digits: int) -> None:
    assert exponent(code) == digits


@pytest.mark.parametrize("code", ["XYZ", "XAU", "XXX", "XDR", "usd", "", "DOLLARS"])
def test_unknown_codes_and_codes_without_a_minor_unit_are_refused(code: str) -> None:
    with pytest.raises(UnknownCurrency, match="is not an active ISO 4217 currency code"):
        exponent(code)


def test_a_code_is_read_trimmed_and_upper_cased() -> None:
    assert currency_code(" eur ") == "EUR"
    with pytest.raises(UnknownCurrency):
        currency_code("xyz")


@pytest.mark.parametrize(
    ("amount", "currency", "formatted", "decimal"),
    [
        (123_450, "USD", "$1,234.50", "1234.50"),
        (5_000, "XOF", "5,000 XOF", "5000"),
        (5_000, "UGX", "5,000 UGX", "5000"),
        (5_000, "VUV", "5,000 VUV", "5000"),
        (5_000, "ISK", "5,000 ISK", "5000"),
        (12_345, "OMR", "12.345 OMR", "12.345"),
        (12_345, "TND", "12.345 TND", "12.345"),
        (12_345, "IQD", "12.345 IQD", "12.345"),
        (-12_345, "LYD", "-12.345 LYD", "-12.345"),
        (12_345, "MGA", "123.45 MGA", "123.45"),
        (500, "JPY", "¥500", "500"),
    ],
)
def test_figures_show_the_currencys_own_decimals(
    amount: int, currency: str, formatted: str, decimal: str
) -> None:
    money = Money(amount, currency)
    assert (money.formatted(), money.decimal()) == (formatted, decimal)


# --- Stripe's units ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "sent"),
    [
        (10_000, "USD", 10_000),
        (5_000, "ISK", 500_000),  # two-decimal at Stripe, in multiples of 100
        (5_000, "MGA", 50),  # zero-decimal at Stripe, ISO counts hundredths
        (5_000, "XOF", 5_000),
        (5_000, "UGX", 5_000),  # zero-decimal for charges (its multiple-of-100 rule: payouts)
        (1_050, "HUF", 1_050),  # two-decimal for charges (whole forints: payouts)
        (1_050, "TWD", 1_050),
        (12_340, "KWD", 12_340),
        (12_340, "OMR", 12_340),
        (99_999_999, "USD", 99_999_999),
    ],
)
def test_amounts_reach_stripe_in_its_units_and_come_back(
    amount: int, currency: str, sent: int
) -> None:
    assert refusal(amount, currency) is None
    assert to_stripe(amount, currency) == sent
    assert from_stripe(sent, currency) == amount
    assert from_stripe(sent, currency.lower()) == amount  # Stripe's objects say "isk"


@pytest.mark.parametrize(
    ("amount", "currency", "reason"),
    [
        (12_345, "KWD", "Stripe takes KWD amounts in multiples of 0.010 KWD only"),
        (5, "BHD", "Stripe takes BHD amounts in multiples of 0.010 BHD only"),
        (12_345, "OMR", "Stripe takes OMR amounts in multiples of 0.010 OMR only"),
        (12_345, "TND", "Stripe takes TND amounts in multiples of 0.010 TND only"),
        (5_050, "MGA", "Stripe takes MGA in whole units only"),
        (12_340, "IQD", "Stripe does not take payments in IQD"),
        (12_340, "LYD", "Stripe does not take payments in LYD"),
        (1_000_000, "ISK", "above the largest a card can be charged at Stripe in ISK"),
        (100_000_000, "USD", "above the largest a card can be charged at Stripe in USD"),
    ],
)
def test_amounts_stripe_cannot_take_are_refused_not_rounded(
    amount: int, currency: str, reason: str
) -> None:
    assert reason in (refusal(amount, currency) or "")
    assert reason in (charge_refusal(ProcessorType.STRIPE, amount, currency) or "")
    with pytest.raises(UnchargeableAmount):
        to_stripe(amount, currency)


# --- end to end: what CareBill sends to Stripe and records --------------------------------------

PAY = """
mutation($input: PayInvoiceInput!) {
  payInvoice(input: $input) {
    invoice { status amountPaid { amount currency formatted } payments { amount { amount } } }
    errors { code field message }
  }
}
"""

INVOICE = """
query($id: ID!) {
  invoice(id: $id) {
    status canPay
    total { amount currency formatted }
    amountDue { amount formatted }
    history { action }
  }
}
"""


async def _pay(api: Api, world: World, invoice_id: int, card: str) -> dict[str, Any]:
    token = await world.token(world.c1, "CLIENT")
    variables = {"input": {"invoiceId": encode_id("Invoice", invoice_id), "paymentMethodId": card}}
    payload: dict[str, Any] = (await api.data(PAY, variables, token))["payInvoice"]
    return payload


async def _read(api: Api, world: World, invoice_id: int) -> dict[str, Any]:
    token = await world.token(world.c1, "CLIENT")
    invoice: dict[str, Any] = (
        await api.data(INVOICE, {"id": encode_id("Invoice", invoice_id)}, token)
    )["invoice"]
    return invoice


def _intents_of(localstripe: LocalStripe, invoice_id: int) -> list[dict[str, Any]]:
    return [
        i
        for i in localstripe.payment_intents()
        if i["metadata"].get("carebill_invoice") == str(invoice_id)
    ]


@pytest.mark.parametrize(
    ("currency", "amount", "sent", "formatted"),
    [
        ("ISK", 5_000, 500_000, "5,000 ISK"),  # once sent as 5000: 50 kr charged, paid in full
        ("MGA", 500_000, 5_000, "5,000.00 MGA"),  # once sent ×100
        ("XOF", 5_000, 5_000, "5,000 XOF"),
        ("KWD", 12_340, 12_340, "12.340 KWD"),
    ],
)
async def test_a_card_payment_charges_the_amount_in_stripes_units(
    api: Api,
    services: Services,
    localstripe: LocalStripe,
    currency: str,
    amount: int,
    sent: int,
    formatted: str,
) -> None:
    # Given a practice billing in `currency` that takes cards, and an invoice of `amount`
    world = await make_world(services, currency=currency)
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=amount)
    before = await _read(api, world, invoice_id)
    assert before["canPay"] is True
    assert before["total"] == {"amount": amount, "currency": currency, "formatted": formatted}
    # When its client pays it
    payload = await _pay(api, world, invoice_id, localstripe.create_payment_method())
    # Then Stripe holds the amount in its own units, and CareBill records the ISO amount
    ((intent,),) = [_intents_of(localstripe, invoice_id)]
    assert (intent["amount"], intent["currency"], intent["status"]) == (
        sent,
        currency.lower(),
        "succeeded",
    )
    assert payload["errors"] == []
    assert payload["invoice"] == {
        "status": "PAID",
        "amountPaid": {"amount": amount, "currency": currency, "formatted": formatted},
        "payments": [{"amount": {"amount": amount}}],
    }


@pytest.mark.parametrize(
    ("currency", "amount", "reason"),
    [
        ("OMR", 12_345, "multiples of 0.010 OMR"),
        ("MGA", 5_050, "whole units"),
        ("IQD", 12_340, "does not take payments in IQD"),
        ("ISK", 1_000_000, "above the largest"),
    ],
)
async def test_an_amount_stripe_cannot_take_is_not_payable_by_card(
    api: Api,
    services: Services,
    localstripe: LocalStripe,
    currency: str,
    amount: int,
    reason: str,
) -> None:
    # Given an invoice whose amount Stripe cannot charge in its currency
    world = await make_world(services, currency=currency)
    await enable_cards(api, world)
    invoice_id = await world.invoice(amount=amount)
    # Then it is not offered for card payment
    before = await _read(api, world, invoice_id)
    assert before["canPay"] is False
    # And paying it anyway is refused before anything reaches Stripe, changing nothing
    payload = await _pay(api, world, invoice_id, localstripe.create_payment_method())
    assert payload["invoice"] is None
    ((error,),) = [payload["errors"]]
    assert error["code"] == "INVALID_STATE"
    assert error["message"].startswith("this invoice cannot be paid by card: ")
    assert reason in error["message"]
    assert _intents_of(localstripe, invoice_id) == []
    assert await _read(api, world, invoice_id) == before


SEND = """
mutation($input: SendInvoiceInput!) {
  sendInvoice(input: $input) {
    invoice { total { amount } }
    errors { code field message }
  }
}
"""


async def test_a_total_taxed_past_the_per_charge_ceiling_is_not_sent(
    api: Api, services: Services
) -> None:
    # Given a practice with 10 % EXCLUSIVE tax
    world = await make_world(services, tax=(SalesTaxMode.EXCLUSIVE, 1_000))
    token = await world.token(world.provider, "PROVIDER")

    async def send(amount: int) -> dict[str, Any]:
        variables = {
            "input": {
                "clientId": encode_id("Client", world.c1.id),
                "description": "Care",
                "amount": amount,
            }
        }
        payload: dict[str, Any] = (await api.data(SEND, variables, token))["sendInvoice"]
        return payload

    # When an amount within the input range would be taxed past 99,999,999
    refused = await send(90_909_091)  # + 9,090,909 tax = 100,000,000
    # Then it is refused as VALIDATION and nothing is sent
    assert refused == {
        "invoice": None,
        "errors": [
            {
                "code": "VALIDATION",
                "field": "amount",
                "message": "with sales tax the total would be 100000000 minor units, above "
                "the largest one charge can take (99999999)",
            }
        ],
    }
    # While the largest amount whose total fits is sent
    assert await send(90_909_090) == {"invoice": {"total": {"amount": 99_999_999}}, "errors": []}
    invoices = (await api.data("{ invoices { totalCount } }", None, token))["invoices"]
    assert invoices["totalCount"] == 1


REFUND = """
mutation($input: RefundInvoiceInput!) {
  refundInvoice(input: $input) {
    invoice { status amountRefunded { amount formatted } refunds { amount { amount } } }
    errors { code field message }
  }
}
"""


def _refunds_at_stripe(localstripe: LocalStripe, intent: str) -> list[tuple[int, str]]:
    listed = localstripe.get("/v1/refunds", payment_intent=intent, limit=100)["data"]
    return sorted((int(r["amount"]), str(r["currency"])) for r in listed)


async def test_refunds_cross_in_stripes_units_both_ways(
    api: Api, services: Services, localstripe: LocalStripe
) -> None:
    # Given an ISK practice whose client paid 5,000 kr by card (500000 at Stripe)
    world = await make_world(services, currency="ISK")
    path = await enable_cards(api, world)
    invoice_id = await world.invoice(amount=5_000)
    assert (await _pay(api, world, invoice_id, localstripe.create_payment_method()))["errors"] == []
    ((intent,),) = [_intents_of(localstripe, invoice_id)]
    # When the provider refunds 2,000 kr through CareBill
    variables = {
        "input": {
            "invoiceId": encode_id("Invoice", invoice_id),
            "amount": 2_000,
            "reason": "goodwill",
        }
    }
    token = await world.token(world.provider, "PROVIDER")
    payload = (await api.data(REFUND, variables, token))["refundInvoice"]
    # Then Stripe refunds 200000 of its units, and CareBill records 2,000 kr
    assert payload["errors"] == []
    assert _refunds_at_stripe(localstripe, intent["id"]) == [(200_000, "isk")]
    assert payload["invoice"]["amountRefunded"] == {"amount": 2_000, "formatted": "2,000 ISK"}
    # And a refund of 1,000 kr made at Stripe (100000) arrives by webhook as 1,000 kr
    localstripe.post("/v1/refunds", payment_intent=intent["id"], amount=100_000)
    latest = localstripe.get(f"/v1/payment_intents/{intent['id']}")["latest_charge"]
    charge = localstripe.get(f"/v1/charges/{latest['id'] if isinstance(latest, dict) else latest}")
    body = event_body("evt_isk_refund", "charge.refunded", charge)
    assert (await deliver(api, path, body, sign(body))).status_code == 200
    after = await _read_refunds(api, world, invoice_id)
    assert after == {
        "amountRefunded": {"amount": 3_000, "formatted": "3,000 ISK"},
        "refunds": [{"amount": {"amount": 2_000}}, {"amount": {"amount": 1_000}}],
    }


async def _read_refunds(api: Api, world: World, invoice_id: int) -> dict[str, Any]:
    token = await world.token(world.provider, "PROVIDER")
    query = (
        "query($id: ID!) { invoice(id: $id) {"
        " amountRefunded { amount formatted } refunds { amount { amount } } } }"
    )
    invoice: dict[str, Any] = (
        await api.data(query, {"id": encode_id("Invoice", invoice_id)}, token)
    )["invoice"]
    return invoice


@pytest.mark.parametrize(
    ("currency", "figures", "collected"),
    [
        ("XOF", ["5000", "0", "5000", "2000", "0", "3000"], "2000"),  # once 50.00, 0.00, …
        ("OMR", ["5.000", "0.000", "5.000", "2.000", "0.000", "3.000"], "2.000"),  # once 50.00
    ],
)
async def test_csv_exports_show_the_currencys_own_decimals(
    api: Api, services: Services, currency: str, figures: list[str], collected: str
) -> None:
    # Given an invoice of 5000 minor units, 2000 of them paid in cash
    world = await make_world(services, currency=currency)
    await world.invoice(amount=5_000, paid=2_000)
    token = await world.token(world.admin, "ADMIN")
    today = datetime.now(ZoneInfo("America/New_York")).date().isoformat()
    period = {"from": today, "to": today}
    # When the admin exports the invoices and the report of today
    invoices = await api.http.get(
        "/exports/invoices.csv", params=period, headers={"Authorization": f"Bearer {token}"}
    )
    report = await api.http.get(
        "/exports/billing-report.csv", params=period, headers={"Authorization": f"Bearer {token}"}
    )
    # Then every amount has the currency's own decimals
    assert invoices.status_code == report.status_code == 200, (invoices.text, report.text)
    (row,) = list(csv.DictReader(io.StringIO(invoices.text)))
    assert row["currency"] == currency
    assert [row[k] for k in ("subtotal", "tax", "total", "paid", "refunded", "due")] == figures
    totals = next(iter(csv.DictReader(io.StringIO(report.text))))
    assert (totals["currency"], totals["invoiced"], totals["collected"]) == (
        currency,
        figures[2],
        collected,
    )
