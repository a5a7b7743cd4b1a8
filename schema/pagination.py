"""Relay cursor pagination: opaque cursors over a stable (sort key, id) order."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import strawberry

from models.text import storable
from schema.errors import bad_input

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None

    @classmethod
    def of(cls, page: Page[Any]) -> PageInfo:
        return cls(
            has_next_page=page.has_next_page,
            end_cursor=page.items[-1][0] if page.items else None,
        )


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


def decode_cursor(cursor: str, length: int) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise bad_input("`after` is not a cursor this API gave out") from exc
    if not isinstance(values, list) or len(values) != length:
        raise bad_input("`after` is not a cursor this API gave out")
    if any(isinstance(value, str) and not storable(value) for value in values):
        raise bad_input("`after` is not a cursor this API gave out")
    return values


def page_size(first: int | None, maximum: int) -> int:
    if first is None:
        return min(DEFAULT_PAGE_SIZE, maximum)
    if not 0 <= first <= maximum:
        raise bad_input(f"`first` must be between 0 and {maximum}")
    return first


@dataclass
class Page(Generic[T]):
    """One page of rows in order, with their cursors."""

    items: list[tuple[str, T]]
    has_next_page: bool
    total_count: int
