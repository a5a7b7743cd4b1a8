"""The processor's books against CareBill's, per invoice, to the cent.

At the processor (localstripe, asked over its HTTP API): the succeeded PaymentIntents carrying
our `carebill_invoice` metadata and every refund of them. At CareBill: the card payments and
the refunds recorded with a processor reference. A charge returned to the card (the invoice was
settled otherwise) is at the processor with its refund, and in neither of our tables.
"""

from __future__ import annotations

from sqlalchemy import select

from models import Payment, Refund
from models.enums import PaymentMethodKind
from tests.factories import World
from tests.stripe_server import LocalStripe

RETURN_REASON = "invoice already settled"


def processor_books(localstripe: LocalStripe, invoice_id: int) -> tuple[set[tuple[str, int]], ...]:
    """(charges kept, refunds of them): sets of (processor id, amount)."""
    charges: set[tuple[str, int]] = set()
    refunds: set[tuple[str, int]] = set()
    for intent in localstripe.payment_intents():
        metadata = intent.get("metadata") or {}
        if metadata.get("carebill_invoice") != str(invoice_id) or intent["status"] != "succeeded":
            continue
        listed = localstripe.get("/v1/refunds", payment_intent=intent["id"], limit=100)["data"]
        given = [r for r in listed if r.get("status") not in ("failed", "canceled")]
        returns = [r for r in given if (r.get("metadata") or {}).get("carebill_reason")]
        if sum(int(r["amount"]) for r in returns) >= int(intent["amount"]):
            continue  # returned whole: it never was a payment of the invoice
        charges.add((str(intent["id"]), int(intent["amount"])))
        refunds.update((str(r["id"]), int(r["amount"])) for r in given if r not in returns)
    return charges, refunds


async def our_books(world: World, invoice_id: int) -> tuple[set[tuple[str, int]], ...]:
    async with world.db.reader() as session:
        payments = (
            await session.execute(
                select(Payment.processor_reference, Payment.amount).where(
                    Payment.invoice_id == invoice_id, Payment.method == PaymentMethodKind.CARD
                )
            )
        ).all()
        refunds = (
            await session.execute(
                select(Refund.processor_reference, Refund.amount).where(
                    Refund.invoice_id == invoice_id, Refund.processor_reference.is_not(None)
                )
            )
        ).all()
    return (
        {(str(ref), int(amount)) for ref, amount in payments},
        {(str(ref), int(amount)) for ref, amount in refunds},
    )


async def assert_books_match(localstripe: LocalStripe, world: World, invoice_id: int) -> None:
    """Every charge and refund at the processor is recorded once, with its amount, and nothing
    else is."""
    theirs = processor_books(localstripe, invoice_id)
    ours = await our_books(world, invoice_id)
    assert ours == theirs, f"CareBill {ours} != processor {theirs}"
