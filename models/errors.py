"""Expected failures of the domain. The GraphQL layer maps them to `UserError` in one place."""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    VALIDATION = "VALIDATION"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    INVALID_STATE = "INVALID_STATE"
    CONFLICT = "CONFLICT"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    PROCESSOR_UNAVAILABLE = "PROCESSOR_UNAVAILABLE"
    NOT_CONFIGURED = "NOT_CONFIGURED"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"


class DomainError(Exception):
    """An expected, typed refusal: nothing was changed."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def validation(message: str, field: str | None = None) -> DomainError:
    return DomainError(ErrorCode.VALIDATION, message, field)


def not_found(what: str, field: str | None = None) -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, f"{what} not found", field)


def forbidden(message: str) -> DomainError:
    return DomainError(ErrorCode.FORBIDDEN, message)


def invalid_state(message: str) -> DomainError:
    return DomainError(ErrorCode.INVALID_STATE, message)
