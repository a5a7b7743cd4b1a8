"""The SQL building blocks of the reports: sums that are never NULL, figures summed per key
in one GROUP BY, and small constant tables to join the empty groups to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    SQLColumnExpression,
    case,
    cast,
    func,
    literal_column,
    select,
    union_all,
)

from models.invoice import Invoice, Payment, Refund

# A SELECT of any columns.
Rows: TypeAlias = Select[*tuple[Any, ...]]

# A report statement's rows say what they hold in their `grain` column: 0 is the total row.
GRAIN_TOTAL = 0


def total_of(expression: SQLColumnExpression[Any]) -> ColumnElement[int]:
    """SUM that is 0, not NULL, over no rows, and an integer on both backends."""
    return cast(func.coalesce(func.sum(expression), 0), BigInteger)


def index_of(column: SQLColumnExpression[datetime], starts: Sequence[datetime], offset: int) -> Any:
    """Index (from `offset`) of the last of `starts` at or before `column`, as a balanced tree
    of CASEs, so each row costs log2(n) comparisons, not n. `column` is never before starts[0]."""
    if len(starts) == 1:
        return literal_column(str(offset), Integer)
    middle = len(starts) // 2
    return case(
        (column < starts[middle], index_of(column, starts[:middle], offset)),
        else_=index_of(column, starts[middle:], offset + middle),
    )


def constants(name: str, values: Sequence[int]) -> Any:
    """A one-column table of `values` (UNION ALL of SELECTs: SQLite has no VALUES aliases)."""
    selects = [select(literal_column(str(v), Integer).label("idx")) for v in values]
    return (selects[0] if len(selects) == 1 else union_all(*selects)).subquery(name)


def figure_cells(
    in_view: ColumnElement[bool], keys: dict[str, Any], figures: dict[str, dict[str, Any]]
) -> CTE:
    """Figures summed per `keys`, in one GROUP BY over the rows of the invoices `in_view`
    (`figures["invoice"]`), of their payments (`["payment"]`) and of their refunds
    (`["refund"]`): each figure is an expression on one such row, 0 where not given.

    Keys and figures are expressions on `invoices` (and `payments`/`refunds`), which each
    payment or refund row reaches by a many-to-one join: every row is read once, and the
    plans stay linear even before the planner has statistics (a join to per-invoice sums
    would not: without them PostgreSQL nests loops over the aggregate, quadratically)."""
    names = sorted({name for per_row in figures.values() for name in per_row})

    def rows(kind: str) -> Any:
        per_row = figures.get(kind, {})
        return select(
            *(key.label(name) for name, key in keys.items()),
            *(per_row.get(name, literal_column("0", BigInteger)).label(name) for name in names),
        )

    parts = [rows("invoice").where(in_view)]
    if "payment" in figures:
        parts.append(rows("payment").join_from(Payment, Invoice).where(in_view))
    if "refund" in figures:
        parts.append(rows("refund").join_from(Refund, Invoice).where(in_view))
    union = union_all(*parts).subquery("figure_rows")
    return (
        select(*(union.c[k] for k in keys), *(total_of(union.c[n]).label(n) for n in names))
        .group_by(*(union.c[k] for k in keys))
        .cte("cells")
    )


def summed(cells: CTE, names: Sequence[str]) -> list[Any]:
    return [total_of(cells.c[name]).label(name) for name in names]
