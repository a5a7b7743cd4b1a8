"""The login throttle as the `login` mutation applies it: which keys a login attempt falls
under, and the typed refusal (`TOO_MANY_ATTEMPTS`, with when to retry)."""

from __future__ import annotations

from adapters.login_failures import LoginFailures
from models.errors import ErrorCode
from models.login_throttle import LoginThrottlePolicy, account_key, address_key
from schema.context import Context
from schema.errors import UserError
from schema.users import LoginPayload


def login_failures(ctx: Context) -> LoginFailures:
    settings = ctx.settings
    policy = LoginThrottlePolicy(
        max_failures_per_account=settings.login_max_failures,
        max_failures_per_address=settings.login_max_failures_per_address,
        window=settings.login_window,
    )
    return LoginFailures(ctx.db, policy, ctx.services.clock)


def throttle_keys(ctx: Context, email: str) -> list[str]:
    """The account's key, and the client address's when the connection has one. Behind a
    proxy every client shares the proxy's address: the per-address limit then bounds them
    together, the per-account one still applies."""
    keys = [account_key(email)]
    client = getattr(ctx.request, "client", None)
    host = getattr(client, "host", None)
    if isinstance(host, str) and host:
        keys.append(address_key(host))
    return keys


def too_many_attempts(ctx: Context, wait_seconds: int) -> LoginPayload:
    """The same refusal whether or not the email has an account; HTTP clients also get a
    Retry-After header."""
    headers = getattr(ctx.response, "headers", None)
    if headers is not None:
        headers["Retry-After"] = str(wait_seconds)
    error = UserError(
        code=ErrorCode.TOO_MANY_ATTEMPTS,
        field=None,
        message=f"too many failed logins; try again in {wait_seconds} seconds",
    )
    return LoginPayload(errors=[error], retry_after_seconds=wait_seconds)
