"""Text no database can store is refused before execution: a lone UTF-16 surrogate (JSON lets
a client send `"\\ud800"`, which no UTF-8 encoder accepts) or a NUL character (PostgreSQL's
text types refuse it), anywhere in the variables or in the document's string literals, is a
top-level `VALIDATION` error naming where it was."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import DocumentNode, StringValueNode, visit
from graphql.language import Visitor
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from models.text import all_storable, storable
from schema.documents import DocumentCache
from schema.errors import PublicError


def _unstorable_variable(variables: Mapping[str, Any]) -> str | None:
    """The name of the first variable holding unstorable text (keys included), if any."""
    for name, value in variables.items():
        if not all_storable([name, value]):
            return name if storable(name) else "?"
    return None


class _Literals(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        if not storable(node.value):
            self.found = True


def _has_unstorable_literal(document: DocumentNode) -> bool:
    literals = _Literals()
    visit(document, literals)
    return literals.found


def unstorable_text(message: str) -> PublicError:
    return PublicError(message, "VALIDATION")


class UnstorableTextGuard(SchemaExtension):
    """Refuses unstorable text in the variables or the document (whose verdict is kept with the
    document: schema/documents.py)."""

    def __init__(self, *, documents: DocumentCache | None = None) -> None:
        self.documents = documents

    def _literals_storable(self, context: ExecutionContext, document: DocumentNode) -> bool:
        facts = self.documents.facts(context) if self.documents is not None else None
        if facts is not None and facts.storable_literals is not None:
            return facts.storable_literals
        storable_literals = not _has_unstorable_literal(document)
        if facts is not None:
            facts.storable_literals = storable_literals
        return storable_literals

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.pre_execution_errors is None:
            variable = _unstorable_variable(context.variables or {})
            if variable is not None:
                context.pre_execution_errors = [
                    unstorable_text(
                        f"Variable '${variable}' holds text that cannot be stored: a lone"
                        " surrogate or a NUL character"
                    )
                ]
            elif context.graphql_document is not None and not self._literals_storable(
                context, context.graphql_document
            ):
                context.pre_execution_errors = [
                    unstorable_text(
                        "The query holds a string that cannot be stored: a lone surrogate or"
                        " a NUL character"
                    )
                ]
        yield
