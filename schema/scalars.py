"""Custom scalars."""

from __future__ import annotations

from typing import NewType

import strawberry

_MAX = 2**63 - 1


def _parse_bigint(value: object) -> int:
    # bool is an int in Python; a JSON `true` is not an amount.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("BigInt must be an integer")
    if not -_MAX - 1 <= value <= _MAX:
        raise ValueError("BigInt out of 64-bit range")
    return value


BigInt = strawberry.scalar(
    NewType("BigInt", int),
    description="64-bit integer, serialized as a JSON number",
    serialize=int,
    parse_value=_parse_bigint,
)
