"""Errors in the response: payload `UserError`s for expected refusals, and top-level errors
with `extensions.code` for authentication, unreadable fields and unreadable arguments
(schema/outcome.py maps the domain's refusals to them)."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError

from models.errors import DomainError, ErrorCode

strawberry.enum(ErrorCode)  # registers the domain's enum as the GraphQL ErrorCode


@strawberry.type
class UserError:
    code: ErrorCode
    field: str | None
    message: str

    @classmethod
    def of(cls, error: DomainError) -> UserError:
        return cls(code=error.code, field=error.field, message=error.message)


class PublicError(GraphQLError):
    """A top-level error meant for the client: shown as is, never masked."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


def unauthenticated() -> PublicError:
    return PublicError("Authentication required: send a valid bearer token", "UNAUTHENTICATED")


def bad_input(message: str) -> PublicError:
    return PublicError(message, "VALIDATION")
