"""Without introspection (production), error messages name nothing of the schema the client
did not: graphql-core's "Did you mean …?" suggestions would list fields, arguments, types and
enum values to anyone probing with near misses."""

from __future__ import annotations

import re
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def without_suggestions(message: str) -> str:
    return _SUGGESTION.sub("", message)


class HideSuggestions(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = list(self.execution_context.pre_execution_errors or [])
        if result is not None:
            errors += result.errors or []
        for error in errors:
            error.message = without_suggestions(error.message)
