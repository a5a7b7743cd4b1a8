"""The email settings: read once from the environment, refused when they cannot work."""

from __future__ import annotations

import pytest

from adapters.mail import FolderChannel, SmtpChannel
from adapters.notifier import DEVELOPMENT_FROM, mail_channel
from settings import Settings, SettingsError


def test_no_smtp_url_and_no_folder_is_no_email() -> None:
    settings = Settings.from_env({})
    assert (settings.smtp_url, settings.app_url) == (None, "http://127.0.0.1:8000")
    assert mail_channel(settings) is None


def test_an_smtp_url_with_credentials_and_implicit_tls() -> None:
    settings = Settings.from_env(
        {
            "CAREBILL_SMTP_URL": "smtps://billing%40example.com:p%3Ass@mail.example.com:2465",
            "CAREBILL_MAIL_FROM": "Billing <billing@example.com>",
            "CAREBILL_APP_URL": "https://app.example.com/",
        }
    )
    assert settings.app_url == "https://app.example.com"
    chosen = mail_channel(settings)
    assert chosen is not None
    channel, mail_from = chosen
    assert isinstance(channel, SmtpChannel)
    assert mail_from == "Billing <billing@example.com>"
    assert (channel.host, channel.port, channel.implicit_tls) == ("mail.example.com", 2465, True)
    assert (channel.username, channel.password) == ("billing@example.com", "p:ss")
    plain = SmtpChannel("smtp://127.0.0.1", "a@example.com")
    assert (plain.port, plain.implicit_tls, plain.username) == (25, False, None)


def test_a_folder_in_development() -> None:
    chosen = mail_channel(Settings.from_env({"CAREBILL_MAIL_DIR": "/tmp/mail"}))
    assert chosen is not None
    assert isinstance(chosen[0], FolderChannel)
    assert chosen[1] == DEVELOPMENT_FROM


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({"CAREBILL_SMTP_URL": "http://mail:25", "CAREBILL_MAIL_FROM": "a@b.c"}, "SMTP_URL"),
        ({"CAREBILL_SMTP_URL": "smtp://mail:25"}, "MAIL_FROM"),
        ({"CAREBILL_MAIL_RETRY_MAX_SECONDS": "soon"}, "RETRY"),
    ],
)
def test_settings_that_cannot_work_are_refused(environ: dict[str, str], complaint: str) -> None:
    with pytest.raises(SettingsError, match=complaint):
        Settings.from_env(environ)
