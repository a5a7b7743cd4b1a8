"""Whole-database snapshots, to assert that a refused request changed nothing.

A snapshot holds every row of every table that belongs to the given practices (tables with a
`practice_id`, the practices themselves, their members' users, and the rows hanging off their
invoices and processors) plus the row count of every table, so a row written anywhere else — a
user created by a refused `addMember`, say — shows up too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, func, select

from adapters.database import Database
from models import Base, Invoice, Membership, PaymentProcessorConfig

Snapshot = dict[str, Any]

# Columns that background work may change while a test runs (the alert relay marks what it
# published, the notification dispatcher what it planned): not part of what a request changed.
_VOLATILE = {"alerts": {"published_at", "planned_at"}}
# What a refused request is meant to write: the login throttle's record of failed logins.
_REFUSAL_RECORDS = {"login_failures"}


def _scope(table: Table, practice_ids: list[int]) -> Any:
    columns = table.c
    if table.name == "practices":
        return columns.id.in_(practice_ids)
    if table.name == "users":
        members = select(Membership.user_id).where(Membership.practice_id.in_(practice_ids))
        return columns.id.in_(members)
    if "practice_id" in columns:
        return columns.practice_id.in_(practice_ids)
    if "invoice_id" in columns:
        invoices = select(Invoice.id).where(Invoice.practice_id.in_(practice_ids))
        return columns.invoice_id.in_(invoices)
    if "processor_id" in columns:
        processors = select(PaymentProcessorConfig.id).where(
            PaymentProcessorConfig.practice_id.in_(practice_ids)
        )
        return columns.processor_id.in_(processors)
    return None


async def snapshot(db: Database, *practice_ids: int) -> Snapshot:
    """Rows of `practice_ids` (sorted by primary key) and the count of every table."""
    ids = list(practice_ids)
    state: Snapshot = {}
    async with db.reader() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in _REFUSAL_RECORDS:
                continue
            count = (await session.execute(select(func.count()).select_from(table))).scalar_one()
            state[f"{table.name}:count"] = int(count)
            condition = _scope(table, ids)
            if condition is None:
                continue
            columns = [c for c in table.c if c.name not in _VOLATILE.get(table.name, set())]
            rows = await session.execute(
                select(*columns).where(condition).order_by(*table.primary_key.columns)
            )
            state[table.name] = [tuple(row) for row in rows]
    return state
