"""Practice set-up, ADMIN only: payment processors, sales tax and Client Billing."""

from __future__ import annotations

import strawberry
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import ClientBillingProvider, Membership, PaymentProcessorConfig, Practice
from models.base import utcnow
from models.credentials import check_credentials
from models.enums import Role as DomainRole
from models.enums import SalesTaxMode as DomainTaxMode
from models.errors import not_found, validation
from models.scope import Viewer as Scope
from models.tax import MAX_RATE_BASIS_POINTS
from schema.context import Info, viewer_of
from schema.node import decode_id
from schema.practice import (
    ConfigureClientBillingInput,
    ConfigurePaymentProcessorInput,
    PaymentProcessorPayload,
    PaymentProcessorType,
    PracticePayload,
    PracticeType,
    SetSalesTaxInput,
)


async def _locked_practice(session: AsyncSession, viewer: Scope) -> Practice:
    return (
        await session.execute(
            select(Practice).where(Practice.id == viewer.practice_id).with_for_update()
        )
    ).scalar_one()


async def configure_payment_processor(
    info: Info, input: ConfigurePaymentProcessorInput
) -> PaymentProcessorPayload:
    """Add a processor, or replace the credentials of this type's one (same id)."""
    viewer = viewer_of(info)
    credentials = check_credentials(
        input.type, input.secret_key, input.webhook_secret, input.publishable_key
    )
    description = input.description.strip() if input.description else None
    if description is not None and len(description) > 200:
        raise validation("description must be at most 200 characters", "description")
    encrypted = info.context.services.vault.encrypt(credentials.as_document())
    async with info.context.db.writer() as session, session.begin():
        await _locked_practice(session, viewer)  # serialises concurrent configurations
        row = (
            await session.execute(
                select(PaymentProcessorConfig).where(
                    PaymentProcessorConfig.practice_id == viewer.practice_id,
                    PaymentProcessorConfig.type == input.type,
                    PaymentProcessorConfig.removed_at.is_(None),
                )
            )
        ).scalar_one_or_none()
        if row is None:
            row = PaymentProcessorConfig(practice_id=viewer.practice_id, type=input.type)
            session.add(row)
        row.description = description
        row.publishable_key = credentials.publishable_key
        row.encrypted_credentials = encrypted
        row.updated_at = utcnow()
    return PaymentProcessorPayload(payment_processor=PaymentProcessorType(row=row))


async def remove_payment_processor(info: Info, id: strawberry.ID) -> PaymentProcessorPayload:
    viewer = viewer_of(info)
    pk = decode_id(id, "PaymentProcessor")
    async with info.context.db.writer() as session, session.begin():
        row = (
            await session.execute(
                select(PaymentProcessorConfig).where(
                    PaymentProcessorConfig.id == (pk if pk is not None else -1),
                    PaymentProcessorConfig.practice_id == viewer.practice_id,
                    PaymentProcessorConfig.removed_at.is_(None),
                )
            )
        ).scalar_one_or_none()
        if row is None:
            raise not_found("payment processor", "id")
        # Kept, marked removed: what was paid through it can still be looked up, cancelled,
        # refunded and reconciled, and its webhook path keeps answering.
        row.removed_at = utcnow()
    return PaymentProcessorPayload(payment_processor=PaymentProcessorType(row=row))


async def set_sales_tax(info: Info, input: SetSalesTaxInput) -> PracticePayload:
    """The rule applied to invoices sent from now on (sent ones keep theirs)."""
    viewer = viewer_of(info)
    rate = input.rate_basis_points
    label = (input.label or "").strip() or None  # a blank label is no label
    if input.mode is DomainTaxMode.NONE:
        if rate != 0:
            raise validation("rateBasisPoints must be 0 when mode is NONE", "rateBasisPoints")
    elif not 1 <= rate <= MAX_RATE_BASIS_POINTS:
        raise validation(f"rateBasisPoints must be 1 to {MAX_RATE_BASIS_POINTS}", "rateBasisPoints")
    if label is not None and len(label) > 100:
        raise validation("label must be at most 100 characters", "label")
    async with info.context.db.writer() as session, session.begin():
        practice = await _locked_practice(session, viewer)
        practice.sales_tax_mode = input.mode
        practice.sales_tax_rate_bp = rate
        practice.sales_tax_label = label
    return PracticePayload(practice=PracticeType(row=practice))


async def configure_client_billing(
    info: Info, input: ConfigureClientBillingInput
) -> PracticePayload:
    """Turn Client Billing on or off and, when given, set which providers may invoice."""
    viewer = viewer_of(info)
    provider_ids: list[int] | None = None
    if input.provider_ids is not None:
        provider_ids = []
        for global_id in input.provider_ids:
            pk = decode_id(global_id, "User")
            if pk is None:
                raise not_found("provider", "providerIds")
            provider_ids.append(pk)
    async with info.context.db.writer() as session, session.begin():
        practice = await _locked_practice(session, viewer)
        if provider_ids is not None:
            wanted = set(provider_ids)
            providers = set(
                (
                    await session.execute(
                        select(Membership.user_id).where(
                            Membership.practice_id == viewer.practice_id,
                            Membership.role == DomainRole.PROVIDER,
                            Membership.user_id.in_(wanted),
                        )
                    )
                ).scalars()
            )
            if providers != wanted:
                raise not_found("provider", "providerIds")
            await session.execute(
                delete(ClientBillingProvider).where(
                    ClientBillingProvider.practice_id == viewer.practice_id
                )
            )
            session.add_all(
                ClientBillingProvider(practice_id=viewer.practice_id, user_id=pk)
                for pk in sorted(wanted)
            )
        practice.client_billing_enabled = input.enabled
    return PracticePayload(practice=PracticeType(row=practice))
