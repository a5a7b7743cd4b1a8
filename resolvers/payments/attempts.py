"""The payment attempts of an invoice: the one still open, and the next one to make."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Invoice, PaymentAttempt, PaymentProcessorConfig
from models.processing import OPEN_ATTEMPT
from models.scope import Viewer


async def open_attempt(session: AsyncSession, invoice_id: int) -> PaymentAttempt | None:
    return (
        await session.execute(
            select(PaymentAttempt)
            .where(
                PaymentAttempt.invoice_id == invoice_id,
                PaymentAttempt.status.in_(OPEN_ATTEMPT),
            )
            .order_by(PaymentAttempt.attempt.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def new_attempt(
    session: AsyncSession,
    invoice: Invoice,
    config: PaymentProcessorConfig,
    method: str,
    viewer: Viewer,
) -> PaymentAttempt:
    last = (
        await session.execute(
            select(func.coalesce(func.max(PaymentAttempt.attempt), 0)).where(
                PaymentAttempt.invoice_id == invoice.id
            )
        )
    ).scalar_one()
    number = int(last) + 1
    attempt = PaymentAttempt(
        invoice_id=invoice.id,
        processor_id=config.id,
        attempt=number,
        amount=invoice.amounts().due,
        # From the invoice and the attempt; the random tail keeps keys unique across
        # databases that share one processor account (a test account, say).
        idempotency_key=f"carebill-pay-{invoice.id}-{number}-{secrets.token_hex(8)}",
        payment_method=method,
        created_by_id=viewer.user_id,
    )
    session.add(attempt)
    return attempt
