"""Settings read once from the environment (see the README's Configuration table)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

DEV_SECRET_KEY = "carebill-development-secret-key-not-for-production"


class SettingsError(RuntimeError):
    """The environment does not describe a runnable configuration."""


# Production keys: at least this long, and random-looking (many distinct characters, as any
# generated key has: `python -c "import secrets; print(secrets.token_urlsafe(32))"`).
MIN_PRODUCTION_KEY_LENGTH = 32
MIN_DISTINCT_KEY_CHARACTERS = 16


def check_production_secret(secret: str) -> None:
    """Refuses the published development key and keys too short or too regular to be secret."""
    if secret == DEV_SECRET_KEY:
        raise SettingsError("CAREBILL_SECRET_KEY is the published development key")
    if len(secret) < MIN_PRODUCTION_KEY_LENGTH or len(set(secret)) < MIN_DISTINCT_KEY_CHARACTERS:
        raise SettingsError(
            f"CAREBILL_SECRET_KEY must be at least {MIN_PRODUCTION_KEY_LENGTH} random characters"
            ' in production, e.g. python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///./carebill.db"
    redis_url: str | None = None
    secret_key: str = DEV_SECRET_KEY
    env: str = "development"
    stripe_api_base: str | None = None
    # How long one request to a payment processor may take before it counts as unavailable.
    processor_timeout_seconds: float = 20.0
    token_ttl: timedelta = timedelta(hours=12)
    max_query_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 2000
    max_page_size: int = 100
    # See docs/limits.md: the static price of a query, its size with fragments expanded, the
    # size assumed for lists without `first`, and the list items one answer may hold.
    max_query_cost: int = 60_000
    max_query_fields: int = 2_000
    max_duplicate_fields: int = 20
    nominal_list_size: int = 10
    max_answer_items: int = 10_000
    # Request bodies (bytes) for /graphql and for the processors' webhooks; other paths take
    # the smaller of the two. A body must arrive within the timeout; at most so many requests
    # are in flight in one process.
    max_body_bytes: int = 1024 * 1024
    max_webhook_body_bytes: int = 512 * 1024
    body_timeout_seconds: float = 10.0
    max_concurrent_requests: int = 200
    # Live alert subscriptions one user may hold open in one server process.
    max_subscriptions_per_user: int = 10
    # Failed logins allowed per account and per client address inside a sliding window.
    login_max_failures: int = 5
    login_max_failures_per_address: int = 30
    login_window: timedelta = timedelta(minutes=15)
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)
    # How often an idle alert subscription re-checks its token (logout ends it) and its inbox.
    alert_recheck_seconds: float = 10.0
    # Notification email (docs/notifications.md): no SMTP URL and no folder = no email.
    smtp_url: str | None = None
    mail_from: str | None = None
    app_url: str = "http://127.0.0.1:8000"
    mail_dir: str | None = None
    # The longest wait between two attempts at a message while the mail server is away.
    mail_retry_max_seconds: float = 300.0
    # How often the server looks up unresolved payments and refunds at the processor (0 = never).
    reconcile_interval_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.production:
            check_production_secret(self.secret_key)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        mode = env.get("CAREBILL_ENV", "development")
        if mode not in ("development", "production"):
            raise SettingsError("CAREBILL_ENV must be 'development' or 'production'")
        secret = env.get("CAREBILL_SECRET_KEY") or ""
        if not secret:
            if mode == "production":
                raise SettingsError("CAREBILL_SECRET_KEY is required in production")
            secret = DEV_SECRET_KEY
        if len(secret) < 16:
            raise SettingsError("CAREBILL_SECRET_KEY must be at least 16 characters")
        origins = tuple(
            o.strip() for o in env.get("CAREBILL_ALLOWED_ORIGINS", "").split(",") if o.strip()
        )
        smtp_url = env.get("CAREBILL_SMTP_URL") or None
        if smtp_url is not None and urlsplit(smtp_url).scheme not in ("smtp", "smtps"):
            raise SettingsError("CAREBILL_SMTP_URL must be smtp://host:port or smtps://…")
        mail_from = env.get("CAREBILL_MAIL_FROM") or None
        if smtp_url is not None and mail_from is None:
            raise SettingsError("CAREBILL_MAIL_FROM is required with CAREBILL_SMTP_URL")
        return cls(
            database_url=env.get("CAREBILL_DATABASE_URL") or cls.database_url,
            redis_url=env.get("CAREBILL_REDIS_URL") or None,
            secret_key=secret,
            env=mode,
            stripe_api_base=env.get("CAREBILL_STRIPE_API_BASE") or None,
            processor_timeout_seconds=_int(env, "CAREBILL_PROCESSOR_TIMEOUT_SECONDS", 20),
            token_ttl=timedelta(seconds=_int(env, "CAREBILL_TOKEN_TTL_SECONDS", 12 * 3600)),
            max_query_depth=_int(env, "CAREBILL_MAX_QUERY_DEPTH", 10),
            max_aliases=_int(env, "CAREBILL_MAX_ALIASES", 30),
            max_tokens=_int(env, "CAREBILL_MAX_TOKENS", 2000),
            max_page_size=_int(env, "CAREBILL_MAX_PAGE_SIZE", 100),
            max_query_cost=_int(env, "CAREBILL_MAX_QUERY_COST", cls.max_query_cost),
            max_query_fields=_int(env, "CAREBILL_MAX_QUERY_FIELDS", cls.max_query_fields),
            max_duplicate_fields=_int(
                env, "CAREBILL_MAX_DUPLICATE_FIELDS", cls.max_duplicate_fields
            ),
            nominal_list_size=_int(env, "CAREBILL_NOMINAL_LIST_SIZE", cls.nominal_list_size),
            max_answer_items=_int(env, "CAREBILL_MAX_ANSWER_ITEMS", cls.max_answer_items),
            max_body_bytes=_int(env, "CAREBILL_MAX_BODY_BYTES", cls.max_body_bytes),
            max_webhook_body_bytes=_int(
                env, "CAREBILL_MAX_WEBHOOK_BODY_BYTES", cls.max_webhook_body_bytes
            ),
            body_timeout_seconds=_int(env, "CAREBILL_BODY_TIMEOUT_MS", 10_000) / 1000,
            max_concurrent_requests=_int(
                env, "CAREBILL_MAX_CONCURRENT_REQUESTS", cls.max_concurrent_requests
            ),
            max_subscriptions_per_user=_int(
                env, "CAREBILL_MAX_SUBSCRIPTIONS_PER_USER", cls.max_subscriptions_per_user
            ),
            login_max_failures=_int(env, "CAREBILL_LOGIN_MAX_FAILURES", cls.login_max_failures),
            login_max_failures_per_address=_int(
                env, "CAREBILL_LOGIN_MAX_FAILURES_PER_ADDRESS", cls.login_max_failures_per_address
            ),
            login_window=timedelta(seconds=_int(env, "CAREBILL_LOGIN_WINDOW_SECONDS", 900)),
            allowed_origins=origins,
            alert_recheck_seconds=_int(env, "CAREBILL_ALERT_RECHECK_MS", 10_000) / 1000,
            smtp_url=smtp_url,
            mail_from=mail_from,
            app_url=(env.get("CAREBILL_APP_URL") or cls.app_url).rstrip("/"),
            mail_dir=env.get("CAREBILL_MAIL_DIR") or None,
            mail_retry_max_seconds=_int(env, "CAREBILL_MAIL_RETRY_MAX_SECONDS", 300),
            reconcile_interval_seconds=_int(env, "CAREBILL_RECONCILE_INTERVAL_SECONDS", 300),
        )
