"""The Schema: the root types assembled from the per-domain resolvers, with the protections of
schema/protections.py; and its SDL, for the committed `schema.graphql` (`carebill
export-schema`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from resolvers import (
    accounts,
    alerts,
    invitations,
    invoices,
    notifications,
    practice,
    queries,
    reports,
)
from resolvers.payments import pay_invoice, refund_invoice
from schema.alerts import InvoiceAlert, InvoiceAlertConnection
from schema.answer_size import answer_size_limited
from schema.clients import Client, ClientConnection
from schema.documents import DocumentCache
from schema.execution import reads_plainly
from schema.invoices import InvoiceConnection, InvoicePayload, InvoiceType
from schema.node import Node
from schema.notifications import NotificationDeliveryConnection, NotificationPreferencesPayload
from schema.outcome import guarded
from schema.permissions import (
    MayConfigurePractice,
    MayManageMembers,
    MayReadAgingReport,
    MayReadBillingReport,
    MayReadNotificationDeliveries,
    MaySendInvoices,
)
from schema.practice import (
    PaymentProcessorPayload,
    PaymentProcessorType,
    PracticePayload,
    PracticeType,
)
from schema.protections import CareBillSchema, protections
from schema.reports import AgingReport, BillingReport
from schema.scalars import SCALARS
from schema.shared_events import renders_shared_events
from schema.users import LoginPayload, MemberPayload, UserType, ViewerType
from settings import Settings


@strawberry.type
class Query:
    node: Node | None = strawberry.field(resolver=queries.node)
    viewer: ViewerType | None = strawberry.field(resolver=queries.viewer)
    practice: PracticeType | None = strawberry.field(resolver=queries.practice)
    clients: ClientConnection = strawberry.field(resolver=queries.clients)
    client: Client | None = strawberry.field(resolver=queries.client)
    invoices: InvoiceConnection = strawberry.field(resolver=queries.invoices)
    invoice: InvoiceType | None = strawberry.field(resolver=queries.invoice)
    billing_report: BillingReport = strawberry.field(
        resolver=reports.billing_report, extensions=guarded(MayReadBillingReport)
    )
    aging_report: AgingReport = strawberry.field(
        resolver=reports.aging_report, extensions=guarded(MayReadAgingReport)
    )
    alerts: InvoiceAlertConnection = strawberry.field(resolver=alerts.alerts)
    notification_deliveries: NotificationDeliveryConnection = strawberry.field(
        resolver=notifications.notification_deliveries,
        extensions=guarded(MayReadNotificationDeliveries),
    )


@strawberry.type
class Mutation:
    login: LoginPayload = strawberry.mutation(resolver=accounts.login, extensions=guarded())
    switch_role: LoginPayload = strawberry.mutation(
        resolver=accounts.switch_role, extensions=guarded()
    )
    logout: bool = strawberry.mutation(resolver=accounts.logout)
    accept_invite: LoginPayload = strawberry.mutation(
        resolver=invitations.accept_invite, extensions=guarded()
    )
    add_member: MemberPayload = strawberry.mutation(
        resolver=invitations.add_member, extensions=guarded(MayManageMembers)
    )
    remove_member: MemberPayload = strawberry.mutation(
        resolver=accounts.remove_member, extensions=guarded(MayManageMembers)
    )
    assign_client: MemberPayload = strawberry.mutation(
        resolver=accounts.assign_client, extensions=guarded(MayManageMembers)
    )
    unassign_client: MemberPayload = strawberry.mutation(
        resolver=accounts.unassign_client, extensions=guarded(MayManageMembers)
    )
    configure_payment_processor: PaymentProcessorPayload = strawberry.mutation(
        resolver=practice.configure_payment_processor, extensions=guarded(MayConfigurePractice)
    )
    remove_payment_processor: PaymentProcessorPayload = strawberry.mutation(
        resolver=practice.remove_payment_processor, extensions=guarded(MayConfigurePractice)
    )
    set_sales_tax: PracticePayload = strawberry.mutation(
        resolver=practice.set_sales_tax, extensions=guarded(MayConfigurePractice)
    )
    configure_client_billing: PracticePayload = strawberry.mutation(
        resolver=practice.configure_client_billing, extensions=guarded(MayConfigurePractice)
    )
    send_invoice: InvoicePayload = strawberry.mutation(
        resolver=invoices.send_invoice, extensions=guarded(MaySendInvoices)
    )
    record_payment: InvoicePayload = strawberry.mutation(
        resolver=invoices.record_payment, extensions=guarded()
    )
    forgive_invoice: InvoicePayload = strawberry.mutation(
        resolver=invoices.forgive_invoice, extensions=guarded()
    )
    void_invoice: InvoicePayload = strawberry.mutation(
        resolver=invoices.void_invoice, extensions=guarded()
    )
    refund_invoice: InvoicePayload = strawberry.mutation(
        resolver=refund_invoice.refund_invoice, extensions=guarded()
    )
    pay_invoice: InvoicePayload = strawberry.mutation(
        resolver=pay_invoice.pay_invoice, extensions=guarded()
    )
    mark_alerts_read: int = strawberry.mutation(resolver=alerts.mark_alerts_read)
    update_notification_preferences: NotificationPreferencesPayload = strawberry.mutation(
        resolver=notifications.update_notification_preferences, extensions=guarded()
    )
    configure_reminders: PracticePayload = strawberry.mutation(
        resolver=notifications.configure_reminders, extensions=guarded(MayConfigurePractice)
    )
    configure_notification_emails: PracticePayload = strawberry.mutation(
        resolver=notifications.configure_notification_emails,
        extensions=guarded(MayConfigurePractice),
    )


@strawberry.type
class Subscription:
    invoice_alerts: AsyncGenerator[InvoiceAlert, None] = strawberry.subscription(
        resolver=alerts.invoice_alerts
    )


def build_schema(settings: Settings) -> CareBillSchema:
    documents = DocumentCache()
    return CareBillSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[UserType, Client, InvoiceType, PracticeType, PaymentProcessorType],
        extensions=protections(settings, documents),
        documents=documents,
        config=StrawberryConfig(scalar_map=SCALARS),
        # Plain fields read and serialized on the spot; answers of a bounded size; an alert
        # shared by the subscribers of one view rendered once per distinct selection.
        execution_context_class=renders_shared_events(
            answer_size_limited(
                reads_plainly(StrawberryGraphQLCoreExecutionContext), settings.max_answer_items
            )
        ),
    )


def sdl() -> str:
    """The SDL of the schema the server runs, with the file's trailing newline."""
    return build_schema(Settings()).as_str() + "\n"


def main() -> None:
    print(sdl(), end="")
