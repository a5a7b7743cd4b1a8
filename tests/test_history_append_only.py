"""The invoice history is append-only, down to the database: no line changes or disappears."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError

from models import InvoiceEvent
from tests.factories import World


@pytest.mark.parametrize(
    "statement",
    [
        lambda invoice_id: (
            update(InvoiceEvent)
            .where(InvoiceEvent.invoice_id == invoice_id)
            .values(note="rewritten")
        ),
        lambda invoice_id: delete(InvoiceEvent).where(InvoiceEvent.invoice_id == invoice_id),
    ],
    ids=["update", "delete"],
)
async def test_history_lines_cannot_be_changed_or_removed(world: World, statement: object) -> None:
    invoice_id = await world.invoice(amount=1_000, paid=1_000)

    with pytest.raises(DBAPIError, match="append-only"):
        async with world.db.writer() as session, session.begin():
            await session.execute(statement(invoice_id))  # type: ignore[operator]

    async with world.db.reader() as session:
        notes = (
            await session.execute(
                select(func.count(), func.count(InvoiceEvent.note)).where(
                    InvoiceEvent.invoice_id == invoice_id
                )
            )
        ).one()
    assert tuple(notes) == (2, 0)  # SENT and PAID, untouched
