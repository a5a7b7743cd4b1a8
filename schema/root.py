"""The Schema: root types assembled from the per-domain resolvers, and its protections."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.extensions.disable_introspection import DisableIntrospection
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from resolvers import accounts, alerts, invoices, practice, queries, reports
from resolvers.payments import pay_invoice
from schema.alerts import InvoiceAlert, InvoiceAlertConnection
from schema.clients import Client, ClientConnection
from schema.invoices import Invoice, InvoiceConnection, InvoicePayload
from schema.node import Node
from schema.practice import PaymentProcessor, PaymentProcessorPayload, Practice, PracticePayload
from schema.reports import AgingReport, BillingReport
from schema.scalars import SCALARS
from schema.users import LoginPayload, MemberPayload, User, Viewer
from settings import Settings

log = logging.getLogger("carebill.graphql")


@strawberry.type
class Query:
    node: Node | None = strawberry.field(resolver=queries.node)
    viewer: Viewer | None = strawberry.field(resolver=queries.viewer)
    practice: Practice | None = strawberry.field(resolver=queries.practice)
    clients: ClientConnection = strawberry.field(resolver=queries.clients)
    client: Client | None = strawberry.field(resolver=queries.client)
    invoices: InvoiceConnection = strawberry.field(resolver=queries.invoices)
    invoice: Invoice | None = strawberry.field(resolver=queries.invoice)
    billing_report: BillingReport = strawberry.field(resolver=reports.billing_report)
    aging_report: AgingReport = strawberry.field(resolver=reports.aging_report)
    alerts: InvoiceAlertConnection = strawberry.field(resolver=alerts.alerts)


@strawberry.type
class Mutation:
    login: LoginPayload = strawberry.mutation(resolver=accounts.login)
    switch_role: LoginPayload = strawberry.mutation(resolver=accounts.switch_role)
    logout: bool = strawberry.mutation(resolver=accounts.logout)
    accept_invite: LoginPayload = strawberry.mutation(resolver=accounts.accept_invite)
    add_member: MemberPayload = strawberry.mutation(resolver=accounts.add_member)
    remove_member: MemberPayload = strawberry.mutation(resolver=accounts.remove_member)
    assign_client: MemberPayload = strawberry.mutation(resolver=accounts.assign_client)
    unassign_client: MemberPayload = strawberry.mutation(resolver=accounts.unassign_client)
    configure_payment_processor: PaymentProcessorPayload = strawberry.mutation(
        resolver=practice.configure_payment_processor
    )
    remove_payment_processor: PaymentProcessorPayload = strawberry.mutation(
        resolver=practice.remove_payment_processor
    )
    set_sales_tax: PracticePayload = strawberry.mutation(resolver=practice.set_sales_tax)
    configure_client_billing: PracticePayload = strawberry.mutation(
        resolver=practice.configure_client_billing
    )
    send_invoice: InvoicePayload = strawberry.mutation(resolver=invoices.send_invoice)
    record_payment: InvoicePayload = strawberry.mutation(resolver=invoices.record_payment)
    forgive_invoice: InvoicePayload = strawberry.mutation(resolver=invoices.forgive_invoice)
    void_invoice: InvoicePayload = strawberry.mutation(resolver=invoices.void_invoice)
    refund_invoice: InvoicePayload = strawberry.mutation(resolver=invoices.refund_invoice)
    pay_invoice: InvoicePayload = strawberry.mutation(resolver=pay_invoice.pay_invoice)
    mark_alerts_read: int = strawberry.mutation(resolver=alerts.mark_alerts_read)


@strawberry.type
class Subscription:
    invoice_alerts: AsyncGenerator[InvoiceAlert, None] = strawberry.subscription(
        resolver=alerts.invoice_alerts
    )


def _is_public(error: GraphQLError) -> bool:
    """Parse and validation errors have no original error; ours are PublicError (a GraphQLError).
    Variables that do not coerce to their type (a string for an Int, 2**70, a bad BigInt) fail
    before execution, without a path, wrapping the scalar's GraphQLError or ValueError: the
    client's mistake, shown as is rather than masked as an internal error."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return True
    return error.path is None and isinstance(original, ValueError | TypeError)


class LoggedMaskErrors(MaskErrors):
    """Masks unexpected exceptions, logging each one with the request id first."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        context = self.execution_context.context
        request_id = getattr(context, "request_id", "-")
        log.error(
            "unexpected error in request %s at %s",
            request_id,
            error.path,
            exc_info=error.original_error,
        )
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
        return masked


class CareBillSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Strawberry logs every error with its traceback; ours are expected answers, and the
        unexpected ones are already logged, with the request id, by `LoggedMaskErrors`."""


def build_schema(settings: Settings) -> strawberry.Schema:
    # Factories, so that each request gets fresh extension instances.
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
        lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: LoggedMaskErrors(should_mask_error=lambda e: not _is_public(e)),
    ]
    if settings.production:
        extensions.append(DisableIntrospection)
    return CareBillSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[User, Client, Invoice, Practice, PaymentProcessor],
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALARS),
    )
