"""Custom scalars, registered in the schema's `scalar_map`."""

from __future__ import annotations

from typing import NewType

import strawberry
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


SCALARS: dict[object, ScalarDefinition] = {
    BigInt: strawberry.scalar(
        name="BigInt",
        description="64-bit integer, serialized as a JSON number",
        serialize=int,
        parse_value=_parse_bigint,
    )
}
