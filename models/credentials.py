"""The shape of each processor's credentials, checked before anything is stored."""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.enums import ProcessorType
from models.errors import validation

_STRIPE_SECRET = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9]{8,247}$")
_STRIPE_PUBLISHABLE = re.compile(r"^pk_(test|live)_[A-Za-z0-9]{8,247}$")
_STRIPE_WEBHOOK = re.compile(r"^whsec_[A-Za-z0-9+/=]{8,250}$")


@dataclass(frozen=True)
class ProcessorCredentials:
    secret_key: str
    webhook_secret: str
    publishable_key: str | None

    def as_document(self) -> dict[str, str]:
        """What is encrypted at rest (the publishable key is public and stored in clear)."""
        return {"secret_key": self.secret_key, "webhook_secret": self.webhook_secret}


def check_credentials(
    processor: ProcessorType, secret_key: str, webhook_secret: str, publishable_key: str | None
) -> ProcessorCredentials:
    """Refuse credentials that cannot be the processor's keys; never echo the secret back."""
    secret_key, webhook_secret = secret_key.strip(), webhook_secret.strip()
    publishable = publishable_key.strip() if publishable_key else None
    if processor is ProcessorType.STRIPE:
        if not _STRIPE_SECRET.match(secret_key):
            raise validation(
                "not a Stripe secret key (expected sk_test_… or sk_live_…)", "secretKey"
            )
        if not _STRIPE_WEBHOOK.match(webhook_secret):
            raise validation("not a Stripe webhook secret (expected whsec_…)", "webhookSecret")
        if publishable is not None:
            if not _STRIPE_PUBLISHABLE.match(publishable):
                raise validation(
                    "not a Stripe publishable key (expected pk_test_… or pk_live_…)",
                    "publishableKey",
                )
            if publishable.split("_")[1] != secret_key.split("_")[1]:
                raise validation(
                    "publishable and secret keys must both be test or both live", "publishableKey"
                )
    return ProcessorCredentials(secret_key, webhook_secret, publishable)
