"""Where failed logins are kept: the database, so every server process sees the same counts
(see models/login_throttle.py for the policy)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from adapters.database import Database
from models.login_throttle import LoginFailure, LoginThrottlePolicy, seconds_until_allowed


@dataclass
class LoginFailures:
    db: Database
    policy: LoginThrottlePolicy
    clock: Callable[[], datetime]

    async def wait_seconds(self, keys: list[str]) -> int:
        """How long before a login under these keys may be tried (0: now)."""
        now = self.clock()
        async with self.db.reader() as session:
            rows = await session.execute(
                select(LoginFailure.key, LoginFailure.failed_at).where(
                    LoginFailure.key.in_(keys), LoginFailure.failed_at > now - self.policy.window
                )
            )
            by_key: dict[str, list[datetime]] = {key: [] for key in keys}
            for key, at in rows:
                by_key[key].append(at)
        return max(
            seconds_until_allowed(times, self.policy.limit_of(key), self.policy.window, now)
            for key, times in by_key.items()
        )

    async def record(self, keys: list[str]) -> None:
        """Remember one failed login under each key, forgetting those out of every window."""
        now = self.clock()
        async with self.db.writer() as session, session.begin():
            await session.execute(
                delete(LoginFailure).where(LoginFailure.failed_at <= now - self.policy.window)
            )
            session.add_all(LoginFailure(key=key, failed_at=now) for key in keys)

    async def forget(self, key: str) -> None:
        """A successful login clears its account's failures (not its address's)."""
        async with self.db.writer() as session, session.begin():
            await session.execute(delete(LoginFailure).where(LoginFailure.key == key))
