"""The background runner of notifications in a server process: while this process leads
(adapters/leadership.py) it runs the reminder scheduler now and then and the dispatcher on
every pass. Passes are short and idempotent, so a crash anywhere only delays work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from adapters.clock import Clock, SystemClock
from adapters.crypto import Vault
from adapters.database import Database
from adapters.dispatcher import Dispatcher, MailSettings
from adapters.leadership import Leadership
from adapters.mail import FolderChannel, NotificationChannel, SmtpChannel
from adapters.scheduler import ReminderScheduler
from settings import Settings

log = logging.getLogger("carebill.notifier")

# The From address when writing to a folder without CAREBILL_MAIL_FROM (development).
DEVELOPMENT_FROM = "CareBill <no-reply@carebill.invalid>"


def mail_channel(settings: Settings) -> tuple[NotificationChannel, str] | None:
    """The email channel the settings describe, with its From address; None = no email."""
    if settings.smtp_url and settings.mail_from:
        return SmtpChannel(settings.smtp_url, settings.mail_from), settings.mail_from
    if settings.mail_dir:
        mail_from = settings.mail_from or DEVELOPMENT_FROM
        return FolderChannel(settings.mail_dir, mail_from), mail_from
    return None


def build_notifier(
    settings: Settings, db: Database, vault: Vault, clock: Clock | None = None
) -> Notifier:
    """Reminders always (they are alerts too); email when a channel is configured."""
    clock = clock or SystemClock()
    dispatcher = None
    channel = mail_channel(settings)
    if channel is not None:
        dispatcher = Dispatcher(
            db,
            vault,
            channel[0],
            MailSettings(mail_from=channel[1], app_url=settings.app_url),
            clock,
            max_backoff=max(settings.mail_retry_max_seconds, 0.1),
        )
    return Notifier(Leadership(db), ReminderScheduler(db, clock), dispatcher)


class Notifier:
    def __init__(
        self,
        leadership: Leadership,
        scheduler: ReminderScheduler,
        dispatcher: Dispatcher | None,
        *,
        poll_seconds: float = 0.5,
        reminder_every_seconds: float = 60.0,
    ) -> None:
        self.leadership = leadership
        self.scheduler = scheduler
        self.dispatcher = dispatcher
        self.poll_seconds = poll_seconds
        self.reminder_every_seconds = reminder_every_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="carebill-notifier")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.leadership.release()

    async def _run(self) -> None:
        next_reminders = 0.0  # a pass at start: catch up on what came due while we were down
        while True:
            try:
                if await self.leadership.hold():
                    if time.monotonic() >= next_reminders:
                        await self.scheduler.run_once()
                        next_reminders = time.monotonic() + self.reminder_every_seconds
                    if self.dispatcher is not None:
                        await self.dispatcher.run_once()
            except Exception:
                # The database may be briefly away; never let the runner die.
                log.exception("notification pass failed")
            await asyncio.sleep(self.poll_seconds)
