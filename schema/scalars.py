"""Custom scalars, registered in the schema's `scalar_map`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NewType

import strawberry
from graphql import GraphQLError
from strawberry.types.scalar import ScalarDefinition

BigInt = NewType("BigInt", int)

_MAX = 2**63 - 1


def _parse_bigint(value: object) -> int:
    # bool is an int in Python; a JSON `true` is not an amount.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("BigInt must be an integer")
    if not -_MAX - 1 <= value <= _MAX:
        raise ValueError("BigInt out of 64-bit range")
    return value


# As for report dates (models/reports/periods.py): far enough from datetime's limits that an
# instant ± a day or the largest UTC offset never overflows.
MIN_YEAR, MAX_YEAR = 1900, 9998


def _parse_datetime(value: object) -> datetime:
    """An ISO 8601 instant within the supported years, aware (no offset = UTC)."""
    if not isinstance(value, str):
        raise _invalid_datetime(value)
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        in_range = MIN_YEAR <= moment.astimezone(UTC).year <= MAX_YEAR
    except (ValueError, OverflowError):
        raise _invalid_datetime(value) from None
    if not in_range:
        raise _invalid_datetime(value)
    return moment


def _invalid_datetime(value: object) -> GraphQLError:
    return GraphQLError(
        f"DateTime must be an ISO 8601 instant in the years {MIN_YEAR} to {MAX_YEAR},"
        f" got {value!r}",
        extensions={"code": "VALIDATION"},
    )


SCALARS: dict[object, ScalarDefinition] = {
    datetime: strawberry.scalar(
        name="DateTime",
        description="Date with time (isoformat)",
        serialize=datetime.isoformat,
        parse_value=_parse_datetime,
    ),
    BigInt: strawberry.scalar(
        name="BigInt",
        description="64-bit integer, serialized as a JSON number",
        serialize=int,
        parse_value=_parse_bigint,
    ),
}
