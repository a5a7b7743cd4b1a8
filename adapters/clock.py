"""Time for background work, injectable: the tests move a clock instead of sleeping."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from models.base import utcnow


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return utcnow()
