"""Global, opaque object ids and the Node interface."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import strawberry
from strawberry.types.base import get_object_definition

MAX_PK = 2**31 - 1


@strawberry.interface(description="An object with a global, opaque id")
class Node:
    """Implemented by types wrapping a database row; the id is the type's GraphQL name and the
    row's id."""

    row: strawberry.Private[Any]

    @strawberry.field(description="Global, opaque id")
    def id(self) -> strawberry.ID:
        return encode_id(get_object_definition(self, strict=True).name, self.row.id)


def encode_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode())


def decode_any(global_id: str) -> tuple[str, int] | None:
    """(type name, primary key) of a global id, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(global_id.encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError):
        return None
    type_name, sep, pk = raw.partition(":")
    # ASCII digits only ("²".isdigit() is true, int("²") fails), within the 32-bit INTEGER
    # of our primary keys: a larger number would reach PostgreSQL as an out-of-range parameter.
    if not sep or not pk.isascii() or not pk.isdigit() or len(pk) > 10 or int(pk) > MAX_PK:
        return None
    return type_name, int(pk)


def decode_id(global_id: str, *type_names: str) -> int | None:
    """The primary key behind `global_id` if it names one of `type_names`, else None."""
    decoded = decode_any(global_id)
    if decoded is None or decoded[0] not in type_names:
        return None
    return decoded[1]


def decode_person_id(global_id: str) -> int | None:
    """The user behind a `Client` or a `User` id: a client is a user (addMember answers with
    the User), so either names them where a person is expected."""
    return decode_id(global_id, "Client", "User")
