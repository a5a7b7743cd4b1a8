"""The schema as SDL, for the committed `schema.graphql` (`carebill export-schema`)."""

from __future__ import annotations

from schema.root import build_schema
from settings import Settings


def sdl() -> str:
    """The SDL of the schema the server runs, with the file's trailing newline."""
    return build_schema(Settings()).as_str() + "\n"


def main() -> None:
    print(sdl(), end="")
