"""GraphQL over HTTP as its specification words it: the two response media types and their
status codes.

A client that accepts `application/graphql-response+json` gets it, and with it status codes that
tell a request error (the document does not parse or validate, a variable does not coerce, a
query limit is exceeded: nothing was executed) from an executed one: 400 and no `data` entry for
the former, 200 for the latter whatever its field errors. Everyone else (`application/json`,
`*/*`, no `Accept` at all) gets `application/json` and 200, as before the specification.
"""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from strawberry.types import ExecutionResult

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
_ANSWERS = {GRAPHQL_RESPONSE_JSON: GRAPHQL_RESPONSE_JSON, JSON: JSON, "application/*": JSON}


def response_media_type(accept: str | None) -> str:
    """The media type to answer in: the client's most preferred one that we produce (the first
    listed among equals), `application/json` when it names none of them."""
    best, best_quality = JSON, 0.0
    for item in (accept or "").split(","):
        media_type, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        answer = _ANSWERS.get(media_type.lower())
        if answer is not None and quality > best_quality:
            best, best_quality = answer, quality
    return best


def is_request_error(result: ExecutionResult) -> bool:
    """Nothing was executed: parse, validation, limit or variable-coercion errors, which have no
    path (a field error always has one, even when it nulls the whole `data`)."""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


def status_code(media_type: str, body: dict[str, Any]) -> int:
    """400 for a request error answered as `application/graphql-response+json`, else 200."""
    return 400 if media_type == GRAPHQL_RESPONSE_JSON and "data" not in body else 200


class MethodNotAllowed(HTTPException):
    """A mutation over GET: 405, and `Allow: POST` says how to send it."""

    def __init__(self, reason: str) -> None:
        super().__init__(405, reason)
