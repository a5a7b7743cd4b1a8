"""A list of ids as one bound parameter: `column = ANY(:ids)` with an integer array on
PostgreSQL, `column IN (SELECT value FROM json_each(:ids))` on SQLite. An `IN (...)` list
binds one parameter per id, which SQLAlchemy renders and converts one by one: a thousand ids
cost milliseconds before the statement even leaves (the alert feed checks the sessions of all
its subscribers at once)."""

from __future__ import annotations

import json
from collections.abc import Collection

from sqlalchemy import (
    ColumnElement,
    Integer,
    SQLColumnExpression,
    any_,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY


def one_of(
    column: SQLColumnExpression[int], ids: Collection[int], *, sqlite: bool
) -> ColumnElement[bool]:
    """`column` is one of `ids` (integers), whatever their number, as one parameter."""
    values = sorted(set(ids))
    if sqlite:
        listed = select(literal_column("value", Integer)).select_from(
            func.json_each(bindparam(None, json.dumps(values)))
        )
        return column.in_(listed)
    return column == any_(bindparam(None, values, type_=ARRAY(Integer)))
