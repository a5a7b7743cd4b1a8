"""The schema's protections: the token limit, the query limits checked in one linear pass
before validation (schema/query_guard.py), text no database stores refused, introspection and
"Did you mean" suggestions off in production, the masking (with logging) of unexpected errors,
and a code on every top-level error (schema/error_codes.py). The limits a client can meet are
listed in docs/limits.md."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, MaxTokensLimiter, SchemaExtension
from strawberry.extensions.disable_introspection import DisableIntrospection
from strawberry.types import ExecutionContext

from schema.documents import CachedDocuments, DocumentCache
from schema.error_codes import ErrorCodes
from schema.input_text import UnstorableTextGuard
from schema.lean_resolvers import lean_resolvers
from schema.query_guard import QueryGuard, query_limits
from schema.suggestions import HideSuggestions
from settings import Settings

log = logging.getLogger("carebill.graphql")


def _is_public(error: GraphQLError) -> bool:
    """Parse and validation errors have no original error; ours are PublicError (a GraphQLError).
    Variables that do not coerce to their type (a string for an Int, 2**70, a bad BigInt) fail
    before execution, without a path, wrapping the scalar's GraphQLError or ValueError: the
    client's mistake, shown as is rather than masked as an internal error."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return True
    return error.path is None and isinstance(original, ValueError | TypeError)


class LoggedMaskErrors(MaskErrors):
    """Masks unexpected exceptions, logging each one with the request id first."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        context = self.execution_context.context
        request_id = getattr(context, "request_id", "-")
        log.error(
            "unexpected error in request %s at %s",
            request_id,
            error.path,
            exc_info=error.original_error,
        )
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
        return masked

    def _process_result(self, result: object) -> None:
        """As strawberry's, whose test is an isinstance() against a runtime Protocol that
        Python 3.11 works out again at each call: tens of microseconds per streamed result, so
        per subscriber of every alert."""
        errors = getattr(result, "errors", None)
        if errors:
            cast(Any, result).errors = self._process_errors(errors)


class CareBillSchema(strawberry.Schema):
    def __init__(self, *args: Any, documents: DocumentCache, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The documents its requests sent lately (see `protections`).
        self.documents = documents
        lean_resolvers(self)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Strawberry logs every error with its traceback; ours are expected answers, and the
        unexpected ones are already logged, with the request id, by `LoggedMaskErrors`."""


def protections(
    settings: Settings, documents: DocumentCache
) -> list[Callable[[], SchemaExtension] | type[SchemaExtension]]:
    """The schema's extensions. Factories, so that each request gets fresh instances; the
    documents seen lately (schema/documents.py) are the schema's, shared by its requests."""
    limits = query_limits(settings)
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        lambda: QueryGuard(limits=limits, documents=documents),
        lambda: UnstorableTextGuard(documents=documents),
        lambda: CachedDocuments(documents=documents),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: LoggedMaskErrors(should_mask_error=lambda e: not _is_public(e)),
        ErrorCodes,
    ]
    if settings.production:
        extensions += [DisableIntrospection, HideSuggestions]
    return extensions
