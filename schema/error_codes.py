"""Every top-level error carries `extensions.code`, so that a client branches on a code, never on
a message. Ours (`PublicError`) and masked ones (`INTERNAL_SERVER_ERROR`) already have one; this
extension gives one to the errors graphql-core and strawberry raise before executing anything:

| code | when |
|---|---|
| `GRAPHQL_PARSE_FAILED` | the document does not parse |
| `GRAPHQL_VALIDATION_FAILED` | it does not validate against the schema |
| `QUERY_TOO_COMPLEX` | it exceeds a query limit (depth, aliases, tokens) |
| `BAD_USER_INPUT` | a variable does not coerce to its type |
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import ASTValidationRule, GraphQLError, GraphQLSyntaxError, ValidationContext
from strawberry.extensions import AddValidationRules, SchemaExtension

TOO_COMPLEX = "QUERY_TOO_COMPLEX"
# graphql-core's parser stops at the token limit with this error (its wording, not ours).
_TOKEN_LIMIT = "Document contains more than"


def _coded(error: GraphQLError, code: str) -> None:
    if not (error.extensions or {}).get("code"):
        error.extensions = {**(error.extensions or {}), "code": code}


class _CodingContext:
    """A validation context whose reported errors carry a code (the limit rules report through
    the context they were given, not through a method we could override)."""

    def __init__(self, context: ValidationContext, code: str) -> None:
        self._context = context
        self._code = code

    def report_error(self, error: GraphQLError) -> None:
        _coded(error, self._code)
        self._context.report_error(error)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def too_complex(limit: AddValidationRules) -> AddValidationRules:
    """A query-limit extension (QueryDepthLimiter, MaxAliasesLimiter) whose errors carry
    `QUERY_TOO_COMPLEX`."""

    def coding(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
        class CodedRule(rule):  # type: ignore[valid-type,misc]
            def __init__(self, context: ValidationContext) -> None:
                super().__init__(_CodingContext(context, TOO_COMPLEX))

        return CodedRule

    limit.validation_rules = [coding(rule) for rule in limit.validation_rules]
    return limit


class ErrorCodes(SchemaExtension):
    """Codes the errors raised while parsing, validating and coercing variables."""

    def _code_all(self, code: str) -> None:
        for error in self.execution_context.pre_execution_errors or []:
            _coded(error, code)

    def on_parse(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or []:
            limit = isinstance(error, GraphQLSyntaxError) and _TOKEN_LIMIT in error.message
            _coded(error, TOO_COMPLEX if limit else "GRAPHQL_PARSE_FAILED")

    def on_validate(self) -> Iterator[None]:
        yield
        self._code_all("GRAPHQL_VALIDATION_FAILED")

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        for error in getattr(result, "errors", None) or []:
            # Errors without a path were raised before execution: variables that do not coerce.
            # Field errors are ours (coded) or masked (coded) by then; any other is a bug.
            _coded(error, "BAD_USER_INPUT" if error.path is None else "INTERNAL_SERVER_ERROR")
