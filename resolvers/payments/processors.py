"""The payment processors: the practice's own account at its processor (used by payInvoice,
card refunds and webhooks), and the `DomainError`s a processor that does not answer or refuses
becomes. The processors' registry is `Services.processors` (schema/services.py)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.crypto import DecryptionError
from adapters.payment_processor import PaymentProcessor, ProcessorRefused
from models import PaymentProcessorConfig
from models.errors import DomainError, ErrorCode, validation
from schema.services import Services


def processor_of(services: Services, config: PaymentProcessorConfig) -> PaymentProcessor:
    """The practice's account at its processor, from its decrypted credentials."""
    try:
        credentials = services.vault.decrypt(config.encrypted_credentials)
    except DecryptionError:
        raise DomainError(
            ErrorCode.NOT_CONFIGURED,
            "the payment processor's credentials cannot be read; configure it again",
        ) from None
    return services.processors.processor(config.type, credentials)


async def card_processor(session: AsyncSession, practice_id: int) -> PaymentProcessorConfig | None:
    """The processor that takes the practice's card payments, if one is configured."""
    return (
        await session.execute(
            select(PaymentProcessorConfig)
            .where(
                PaymentProcessorConfig.practice_id == practice_id,
                PaymentProcessorConfig.removed_at.is_(None),
            )
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
