"""The one place where a domain refusal becomes a payload error."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from models.errors import DomainError
from schema.errors import UserError


class _Payload(Protocol):
    def __init__(self, *, errors: list[UserError]) -> None: ...


P = ParamSpec("P")
R = TypeVar("R")


def payload_errors(
    payload: Callable[..., Any],
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Run the mutation; a `DomainError` (whose transaction rolled back) becomes
    `payload(errors=[UserError])`, so nothing is half-written and the client gets a code."""

    def decorate(mutation: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(mutation)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await mutation(*args, **kwargs)
            except DomainError as error:
                result: R = payload(errors=[UserError.of(error)])
                return result

        return run

    return decorate
