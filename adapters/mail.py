"""Notification channels: how a rendered notification leaves CareBill.

The dispatcher knows only `NotificationChannel`: `deliver` either returns (the message was
accepted: by the mail server, or written to the folder) or raises `DeliveryFailed`, saying
whether trying again may help. A mobile push channel (APNs, FCM) would be one more class with
the same two methods, chosen per delivery row's `channel` (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

# How long one conversation with the mail server may take.
SMTP_TIMEOUT_SECONDS = 30.0
# SMTP's own line limit: a long List-Unsubscribe URL must stay one `<…>` token, not be folded
# into RFC 2047 encoded words that mail clients would not recognise as a link.
_POLICY = SMTP.clone(max_line_length=998)


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to one recipient, ready to go."""

    to: str
    subject: str
    text: str
    html: str
    message_id: str
    unsubscribe_url: str


class DeliveryFailed(Exception):
    """The channel did not take the message; `permanent` when retrying cannot help."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class NotificationChannel(Protocol):
    name: str

    async def deliver(self, notification: Notification) -> None: ...


def email_message(notification: Notification, mail_from: str) -> EmailMessage:
    """The MIME message: text and HTML alternatives, with RFC 8058 one-click unsubscribe."""
    message = EmailMessage(policy=_POLICY)
    message["From"] = mail_from
    message["To"] = notification.to
    message["Subject"] = notification.subject
    message["Message-ID"] = notification.message_id
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["List-Unsubscribe"] = f"<{notification.unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(notification.text)
    message.add_alternative(notification.html, subtype="html")
    return message


def _failure(error: Exception) -> DeliveryFailed:
    """5xx answers are permanent; 4xx answers, timeouts and connection trouble are not."""
    code: int | None = None
    text = str(error)
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused) and error.recipients:
        code, text = error.recipients[0].code, error.recipients[0].message
    elif isinstance(error, aiosmtplib.SMTPResponseException):
        code, text = error.code, error.message
    if code is not None:
        return DeliveryFailed(f"{code} {text}".strip(), permanent=500 <= code < 600)
    return DeliveryFailed(f"{type(error).__name__}: {text}".strip(), permanent=False)


class SmtpChannel:
    """Email through an SMTP server: `smtp://host:port` (STARTTLS when the server offers it)
    or `smtps://user:pass@host:port` (TLS from the first byte)."""

    name = "email"

    def __init__(self, url: str, mail_from: str, *, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
        parts = urlsplit(url)
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.mail_from = mail_from
        self.timeout = timeout

    async def deliver(self, notification: Notification) -> None:
        try:
            # Bytes, not the message object: aiosmtplib would re-fold the headers itself.
            await aiosmtplib.send(
                email_message(notification, self.mail_from).as_bytes(),
                sender=parseaddr(self.mail_from)[1],
                recipients=[notification.to],
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.implicit_tls,
                # None: STARTTLS if the server offers it, plain otherwise.
                start_tls=None if not self.implicit_tls else False,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise _failure(error) from error


class FolderChannel:
    """Development without a mail server: each email is a `.eml` file in a folder, named by
    its Message-ID (a repeat overwrites the same file)."""

    name = "email"

    def __init__(self, folder: str, mail_from: str) -> None:
        self.folder = Path(folder)
        self.mail_from = mail_from

    def path_of(self, notification: Notification) -> Path:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", notification.message_id.strip("<>"))
        return self.folder / f"{stem}.eml"

    async def deliver(self, notification: Notification) -> None:
        data = email_message(notification, self.mail_from).as_bytes()
        target = self.path_of(notification)

        def write() -> None:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".eml.partial")
            partial.write_bytes(data)
            partial.replace(target)  # readers never see half a message

        try:
            await asyncio.to_thread(write)
        except OSError as error:
            raise DeliveryFailed(f"cannot write {target}: {error}", permanent=False) from error
