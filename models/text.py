"""Text every database can store: valid Unicode (no lone UTF-16 surrogate, which JSON lets a
client send as `\\ud800` and no UTF-8 encoder accepts) without NUL characters (PostgreSQL's
text types refuse them)."""

from __future__ import annotations


def storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def all_storable(value: object) -> bool:
    """Every string inside a decoded JSON value (keys included) is storable."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not storable(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True
