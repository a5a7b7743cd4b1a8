"""The payment processors: the registry the app's lifespan installs and closes, the practice's
own account at its processor (used by payInvoice, card refunds and webhooks), and the
`DomainError`s a processor that does not answer or refuses becomes."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.crypto import DecryptionError
from adapters.payment_processor import (
    PaymentProcessor,
    PaymentProcessors,
    ProcessorOptions,
    ProcessorRefused,
)
from models import PaymentProcessorConfig
from models.errors import DomainError, ErrorCode, validation
from resolvers.context import Services

_PROCESSORS = "payment_processors"


def install_payment_processors(services: Services) -> None:
    settings = services.settings
    services.extras[_PROCESSORS] = PaymentProcessors(
        ProcessorOptions(
            api_base=settings.stripe_api_base,
            timeout_seconds=settings.processor_timeout_seconds,
        )
    )


async def close_payment_processors(services: Services) -> None:
    processors = services.extras.pop(_PROCESSORS, None)
    if isinstance(processors, PaymentProcessors):
        await processors.aclose()


def payment_processors(services: Services) -> PaymentProcessors:
    processors = services.extras.get(_PROCESSORS)
    if not isinstance(processors, PaymentProcessors):
        raise RuntimeError("payment processors are installed by the app's lifespan")
    return processors


def processor_of(services: Services, config: PaymentProcessorConfig) -> PaymentProcessor:
    """The practice's account at its processor, from its decrypted credentials."""
    try:
        credentials = services.vault.decrypt(config.encrypted_credentials)
    except DecryptionError:
        raise DomainError(
            ErrorCode.NOT_CONFIGURED,
            "the payment processor's credentials cannot be read; configure it again",
        ) from None
    return payment_processors(services).processor(config.type, credentials)


async def card_processor(session: AsyncSession, practice_id: int) -> PaymentProcessorConfig | None:
    """The processor that takes the practice's card payments, if one is configured."""
    return (
        await session.execute(
            select(PaymentProcessorConfig)
            .where(PaymentProcessorConfig.practice_id == practice_id)
            .order_by(PaymentProcessorConfig.id)
            .limit(1)
        )
    ).scalar_one_or_none()


def unavailable(doing: str) -> DomainError:
    return DomainError(
        ErrorCode.PROCESSOR_UNAVAILABLE,
        f"the payment processor did not answer while {doing}; nothing was recorded. "
        "Retrying is safe: the same request is never carried out twice",
    )


def refused(error: ProcessorRefused, field: str | None) -> DomainError:
    if error.credentials:
        return DomainError(
            ErrorCode.NOT_CONFIGURED, "the payment processor refused the practice's credentials"
        )
    return validation(error.message, field)
