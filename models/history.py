"""The history line and the alert of an invoice's change, written by two Core INSERTs once the
change's flush has given the invoice its id (`after_flush`), not by the ORM's unit of work.

Nobody reads these rows back in the transaction that writes them, and as ORM objects they cost
more than the change itself: their construction, their identity, their place in the flush's
dependency sort and an INSERT … RETURNING each (≈ 0.4 ms of CPU per mutation). `record` keeps
them on the invoice and marks it dirty, so the next flush — an autoflush, or the commit's —
writes them even when nothing else of the invoice changed; rows recorded in one transaction
are written in the order they were recorded, across invoices, as the ORM wrote them."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm.attributes import flag_dirty

from models.base import Base

_UNWRITTEN = "_carebill_unwritten_history"
# `Session.info` key: this session's transaction wrote alerts (adapters/relay.py wakes on its
# commit). Set here for the alerts written by Core, which no mapper event sees.
ALERTS_WRITTEN = "carebill_alerts_written"
_ORDER = itertools.count()  # the order rows were recorded in, across invoices and sessions

Row = dict[str, Any]


def record(invoice: Any, line: Row, alert: Row) -> None:
    """Keep a history line and an alert (their values, without `invoice_id`) for `invoice`'s
    next flush."""
    invoice.__dict__.setdefault(_UNWRITTEN, []).append((next(_ORDER), line, alert))
    flag_dirty(invoice)


def _insert(session: Session, table: str, rows: list[Row]) -> None:
    statement = insert(Base.metadata.tables[table])
    session.connection().execute(statement, rows[0] if len(rows) == 1 else rows)


def _write(session: Session, _flush: UOWTransaction) -> None:
    pending: list[tuple[int, int, Row, Row]] = []
    for instance in (*session.new, *session.dirty):
        rows = instance.__dict__.pop(_UNWRITTEN, None)
        if rows:
            pending += [(order, instance.id, line, alert) for order, line, alert in rows]
    if not pending:
        return
    pending.sort(key=lambda p: p[0])
    _insert(session, "invoice_events", [{**line, "invoice_id": i} for _, i, line, _a in pending])
    _insert(session, "alerts", [{**alert, "invoice_id": i} for _, i, _l, alert in pending])
    session.info[ALERTS_WRITTEN] = True


event.listen(Session, "after_flush", _write)
