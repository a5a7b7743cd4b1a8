"""Light rows of the read side: what a query selects for the API, built from plain columns
instead of ORM objects (no identity map, no change tracking, no column the API never shows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from models import User


@dataclass(frozen=True, slots=True)
class PersonRow:
    """What the API shows of a user (never the password hash)."""

    id: int
    name: str
    email: str


PERSON_COLUMNS = (User.id, User.name, User.email)


def people(rows: Sequence[Any]) -> list[PersonRow]:
    """PersonRows of result rows holding PERSON_COLUMNS (beside other columns)."""
    return [PersonRow(row.id, row.name, row.email) for row in rows]
