"""What lives as long as the server: built once by the app's lifespan, typed, one attribute
per service (see app.py for their start and stop)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from adapters.broker import Broker, create_broker
from adapters.crypto import Vault
from adapters.database import Database
from adapters.payment_processor import PaymentProcessors, ProcessorOptions
from models.base import utcnow
from settings import Settings

# Subscription reads in flight per process: a thousand subscribers woken by one alert queue
# here instead of exhausting the connection pool that HTTP requests need too.
CONCURRENT_READS = 8


@dataclass
class AlertHub:
    """What the alert subscriptions of one process share."""

    broker: Broker
    # How often an idle subscription re-checks its token and re-reads its inbox.
    recheck_seconds: float = 10.0
    reads: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(CONCURRENT_READS))
    # Subscriptions past their starting point (what /healthz reports).
    live: int = 0
    # Open subscriptions per user, over every socket of this process (the cap's count).
    per_user: Counter[int] = field(default_factory=Counter)


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    vault: Vault
    processors: PaymentProcessors
    alerts: AlertHub
    # The time as the server's rules see it (the login throttle's window): tests move it on
    # instead of sleeping.
    clock: Callable[[], datetime] = utcnow

    @classmethod
    def build(
        cls,
        settings: Settings,
        db: Database | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> Services:
        """The services of `settings` (on `db` when given), not started yet: the lifespan
        starts the alert broker; nothing else needs starting."""
        return cls(
            settings=settings,
            db=db or Database(settings.database_url),
            vault=Vault(settings.secret_key),
            processors=PaymentProcessors(
                ProcessorOptions(
                    api_base=settings.stripe_api_base,
                    timeout_seconds=settings.processor_timeout_seconds,
                )
            ),
            alerts=AlertHub(
                broker=create_broker(settings.redis_url),
                recheck_seconds=max(settings.alert_recheck_seconds, 0.1),
            ),
            clock=clock,
        )
