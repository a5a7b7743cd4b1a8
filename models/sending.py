"""Sending an invoice: validation, the frozen sales tax, the practice's next number, and the
SENT history event with its alert — all in `send_invoice`, the one call that sends; and what a
send asks the database first (`replay_or_check`: its idempotency key, who may send to whom) and
the practice's lock that draws its number (`lock_for_sending`)."""

from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import InvoiceStatus, Role
from models.errors import validation
from models.idempotency import Claim, IdempotencyKey, first_result, key_of
from models.invoice import Invoice
from models.money import MAX_INPUT_AMOUNT
from models.permissions import check_may_invoice, invoicing_conditions
from models.practice import Practice
from models.scope import Viewer
from models.tax import apply_sales_tax

MAX_DESCRIPTION_LENGTH = 1000


@functools.cache
def _questions(role: Role, has_client: bool, has_key: bool) -> Select[Any]:
    """`replay_or_check`'s one SELECT for a viewer of `role`, built once: the practice, the
    viewer, the client and the key are bound at execution (see its `values`), the conditions
    are `invoicing_conditions`' and `key_of`'s."""
    viewer = Viewer(
        user_id=cast(int, bindparam("user_id")),
        practice_id=cast(int, bindparam("viewer_practice_id")),
        role=role,
        session_id=0,
    )
    practice_id = cast(int, bindparam("practice_id"))
    client_id = cast(int, bindparam("client_id")) if has_client else None
    assigned, own_client = invoicing_conditions(viewer, practice_id, client_id)
    columns: list[ColumnElement[Any]] = [
        Practice.client_billing_enabled.label("billing_enabled"),
        assigned.label("assigned"),
        own_client.label("own_client"),
    ]
    if has_key:
        bound = Claim(
            practice_id=cast(int, bindparam("key_practice_id")),
            user_id=cast(int, bindparam("key_user_id")),
            operation=cast(str, bindparam("key_operation")),
            key=cast(str, bindparam("key")),
            request_hash="",
        )
        first = key_of(bound)
        columns += [
            first.with_only_columns(IdempotencyKey.request_hash).scalar_subquery().label("hash"),
            first.with_only_columns(IdempotencyKey.invoice_id).scalar_subquery().label("first"),
        ]
    return select(*columns).where(Practice.id == practice_id)


async def replay_or_check(
    session: AsyncSession,
    viewer: Viewer,
    practice_id: int,
    client_id: int | None,
    claim: Claim | None,
) -> int | None:
    """What a send asks before it locks anything, in one statement: the invoice id of the
    first send under `claim`'s key (a replay is not checked again; CONFLICT for other input),
    or None once the viewer may send to `client_id` (`check_may_invoice`'s refusal otherwise).
    A send with the same key committed meanwhile is caught when the key is written
    (`claim_key`, after the invoice)."""
    values: dict[str, object] = {
        "practice_id": practice_id,
        "user_id": viewer.user_id,
        "viewer_practice_id": viewer.practice_id,
        "client_id": client_id,
    }
    if claim is not None:
        values.update(
            key_practice_id=claim.practice_id,
            key_user_id=claim.user_id,
            key_operation=claim.operation,
            key=claim.key,
        )
    asked = _questions(viewer.role, client_id is not None, claim is not None)
    found = (await session.execute(asked, values)).one()
    if claim is not None and found.hash is not None:
        invoice_id = first_result(claim, found.hash, found.first)
        assert invoice_id is not None, "a send's key names its invoice"
        return invoice_id
    check_may_invoice(
        billing_enabled=bool(found.billing_enabled),
        assigned=bool(found.assigned),
        own_client=bool(found.own_client),
    )
    return None


# The number-drawing UPDATE, built once (the practice bound at execution).
_DRAW_NUMBER = (
    update(Practice)
    .where(Practice.id == bindparam("practice"))
    .values(last_invoice_number=Practice.last_invoice_number + 1)
    .returning(Practice)
)


async def lock_for_sending(session: AsyncSession, practice_id: int) -> Practice:
    """The practice, its row locked for this transaction and its next invoice number drawn,
    in one statement (UPDATE … RETURNING): `last_invoice_number` is the number of the invoice
    about to be sent (`send_invoice(..., number=...)`). The row lock serialises sends, so
    numbers stay gap-free as long as a transaction that sends nothing after all (a refusal, a
    replay) rolls back; the lock is held from here to the commit, so a send takes it only once
    its checks passed. Client Billing switched off meanwhile is still refused."""
    practice = (await session.execute(_DRAW_NUMBER, {"practice": practice_id})).scalar_one()
    check_may_invoice(
        billing_enabled=practice.client_billing_enabled, assigned=True, own_client=True
    )
    return practice


async def send_invoice(
    session: AsyncSession,
    practice: Practice,
    *,
    provider_id: int,
    client_id: int,
    description: str,
    amount: int,
    due_date: date | None,
    today: date,
    now: datetime,
    number: int | None = None,
) -> Invoice:
    """Send a new invoice of `practice`, whose row the caller has locked: the invoice, its SENT
    history event and its INVOICE_SENT alert, in the caller's transaction. Its `number` is the
    one `lock_for_sending` drew, or (None) the next after the practice's last, counted here."""
    invoice = build_invoice(
        practice,
        provider_id=provider_id,
        client_id=client_id,
        description=description,
        amount=amount,
        due_date=due_date,
        today=today,
        now=now,
        number=number,
    )
    invoice.record_sent(actor_id=provider_id, now=now)
    session.add(invoice)
    # One flush writes the invoice, then its event and alert (which name its id): the caller
    # needs the id (its idempotency key names it).
    await session.flush()
    return invoice


def build_invoice(
    practice: Practice,
    *,
    provider_id: int,
    client_id: int,
    description: str,
    amount: int,
    due_date: date | None,
    today: date,
    now: datetime,
    number: int | None = None,
) -> Invoice:
    """A new UNPAID invoice with the next number of `practice` (or `number`, drawn already by
    `lock_for_sending`), not sent yet (no history, no alert: `send_invoice` sends it; the
    tests' bulk fixtures build report volumes with this).

    `today` is the date in the practice's time zone (a due date may be today, not earlier).
    """
    text = description.strip()
    if not 1 <= len(text) <= MAX_DESCRIPTION_LENGTH:
        raise validation(
            f"description must be 1 to {MAX_DESCRIPTION_LENGTH} characters", "description"
        )
    if not 1 <= amount <= MAX_INPUT_AMOUNT:
        raise validation(f"amount must be between 1 and {MAX_INPUT_AMOUNT} minor units", "amount")
    if due_date is not None and due_date < today:
        raise validation("due date cannot be in the past", "dueDate")
    taxed = apply_sales_tax(amount, practice.sales_tax_mode, practice.sales_tax_rate_bp)
    if taxed.total > MAX_INPUT_AMOUNT:
        # EXCLUSIVE tax can lift a valid amount past the processor's per-charge ceiling: such
        # an invoice could never be paid by card in one charge, so it is not sent.
        raise validation(
            f"with {practice.sales_tax_label or 'sales tax'} the total would be {taxed.total} "
            f"minor units, above the largest one charge can take ({MAX_INPUT_AMOUNT})",
            "amount",
        )
    if number is None:
        practice.last_invoice_number += 1
        number = practice.last_invoice_number
    return Invoice(
        practice_id=practice.id,
        number=number,
        client_id=client_id,
        provider_id=provider_id,
        description=text,
        currency=practice.currency,
        subtotal_amount=taxed.subtotal,
        tax_amount=taxed.tax,
        total_amount=taxed.total,
        tax_mode=practice.sales_tax_mode,
        tax_rate_bp=practice.sales_tax_rate_bp,
        tax_label=practice.sales_tax_label,
        status=InvoiceStatus.UNPAID,
        sent_at=now,
        due_date=due_date,
        payments=[],
        refunds=[],
    )
