"""The one place where a domain refusal becomes a GraphQL answer.

A root field (and `Client.statement`, `Practice.paymentProcessors`) is declared with
`guarded(*permissions)`: its role permissions (schema/permissions.py) run first, then the
resolver; a `DomainError` from either (whose transaction rolled back, so nothing is
half-written) becomes, on a field whose type is a payload, `payload(errors=[UserError])`, and
on any other field a top-level error with the same code (`extensions.code`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info
from strawberry.types.field import StrawberryField

from models.errors import DomainError
from schema.errors import PublicError, UserError


class DomainErrors(FieldExtension):
    """A `DomainError` as the field's answer: a payload's `errors`, or a top-level error."""

    payload: Callable[..., Any] | None = None

    def apply(self, field: StrawberryField) -> None:
        answer = field.type
        if isinstance(answer, type) and any(
            f.name == "errors"
            for f in dataclasses.fields(answer)  # type: ignore[arg-type]
        ):
            self.payload = answer

    def answer(self, error: DomainError) -> Any:
        if self.payload is None:
            raise PublicError(error.message, error.code.value) from None
        return self.payload(errors=[UserError.of(error)])

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        try:
            return next_(source, info, **kwargs)
        except DomainError as error:
            return self.answer(error)

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        try:
            return await next_(source, info, **kwargs)
        except DomainError as error:
            return self.answer(error)


def guarded(*permissions: type[BasePermission]) -> list[FieldExtension]:
    """A field's extensions: its permissions, inside the mapping of domain errors (the last
    extension is the outermost)."""
    extensions: list[FieldExtension] = []
    if permissions:
        extensions.append(PermissionExtension([p() for p in permissions], use_directives=False))
    extensions.append(DomainErrors())
    return extensions
