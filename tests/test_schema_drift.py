"""The committed `schema.graphql` is the schema the code builds, and that schema holds every
name of the contract's outline (`API.md`) with its meaning's shape."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
)

from resolvers.root import build_schema, sdl
from settings import Settings

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"
REGENERATE = ".venv/bin/carebill export-schema > schema.graphql   (or: make schema)"


def test_committed_schema_matches_the_code() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
    generated = sdl()
    if committed != generated:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                generated.splitlines(keepends=True),
                "schema.graphql (committed)",
                "schema.graphql (from the code)",
                n=1,
            )
        )
        lines = diff.splitlines()
        shown = "\n".join(lines[:80]) + ("\n…" if len(lines) > 80 else "")
        pytest.fail(
            "schema.graphql differs from the schema the code builds. Regenerate it from the "
            f"repository root and commit it:\n\n    {REGENERATE}\n\n{shown}",
            pytrace=False,
        )


def test_the_schema_does_not_depend_on_the_environment() -> None:
    """Production only switches introspection off: the SDL is the same."""
    production = Settings(env="production", secret_key="production-secret-key-0123456789abcdef")
    assert build_schema(production).as_str() == build_schema(Settings()).as_str()


# --- the contract's outline ------------------------------------------------------------------

ENUMS = {
    "Role": {"ADMIN", "PROVIDER", "CLIENT"},
    "InvoiceStatus": {"UNPAID", "PAID", "REFUNDED", "FORGIVEN", "VOID"},
    "PaymentMethodKind": {"CARD", "CASH", "CHECK", "BANK_TRANSFER", "OTHER"},
    "ProcessorType": {"STRIPE"},
    "SalesTaxMode": {"NONE", "EXCLUSIVE", "INCLUSIVE"},
    "AlertKind": {
        "INVOICE_SENT",
        "INVOICE_PAID",
        "PAYMENT_RECORDED",
        "PAYMENT_FAILED",
        "INVOICE_REFUNDED",
        "INVOICE_FORGIVEN",
        "INVOICE_VOIDED",
        "INVOICE_REMINDER",
    },
    "ErrorCode": {
        "VALIDATION",
        "NOT_FOUND",
        "FORBIDDEN",
        "INVALID_STATE",
        "CONFLICT",
        "PAYMENT_DECLINED",
        "PROCESSOR_UNAVAILABLE",
        "NOT_CONFIGURED",
        "TOO_MANY_ATTEMPTS",
    },
}

INVOICE_PLAIN: tuple[str, ...] = ("id", "number", "description", "status", "client", "provider")
INVOICE_PLAIN += ("sentAt", "dueDate", "paidAt")
INVOICE_AMOUNTS: tuple[str, ...] = ("subtotal", "tax", "total", "amountPaid", "amountRefunded")
INVOICE_AMOUNTS += ("amountDue", "refundableAmount")

# Type -> field -> the field's type as SDL (None: present, type not fixed by the contract).
OBJECTS: dict[str, dict[str, str | None]] = {
    "Money": {"amount": "BigInt!", "currency": "String!", "formatted": "String!"},
    "UserError": {"code": "ErrorCode!", "field": "String", "message": "String!"},
    "Viewer": {
        "user": "User!",
        "practice": "Practice!",
        "role": "Role!",
        "roles": "[Role!]!",
        "notificationPreferences": "NotificationPreferences!",
    },
    "Practice": {
        **dict.fromkeys(
            ["id", "name", "currency", "timeZone", "salesTax", "clientBilling", "paymentProcessors"]
        ),
        "reminders": "Reminders!",
    },
    "NotificationPreferences": {"emailEnabled": "Boolean!"},
    "NotificationPreferencesPayload": {
        "preferences": "NotificationPreferences",
        "errors": "[UserError!]!",
    },
    "Reminders": {"daysBeforeDue": "[Int!]!", "daysAfterDue": "[Int!]!"},
    "ClientBillingService": {"enabled": "Boolean!", "providers": "[User!]!"},
    "PaymentProcessor": dict.fromkeys(["id", "type", "description", "createdAt", "webhookPath"]),
    "SalesTax": {"mode": "SalesTaxMode!", "rateBasisPoints": "Int!", "label": "String"},
    "Client": {
        "id": "ID!",
        "name": None,
        "email": None,
        "providers": None,
        "invoices": "InvoiceConnection!",
        "balance": "Money!",
    },
    "Invoice": {
        **dict.fromkeys(INVOICE_PLAIN),
        **dict.fromkeys(INVOICE_AMOUNTS, "Money!"),
        "payments": "[Payment!]!",
        "refunds": "[Refund!]!",
        "history": "[InvoiceEvent!]!",
        **dict.fromkeys(
            ["canPay", "canRecordPayment", "canForgive", "canVoid", "canRefund"], "Boolean!"
        ),
        "overdue": "Boolean!",
    },
    "InvoiceEvent": {
        "id": None,
        "action": None,
        "actor": "User",
        "at": "DateTime!",
        "amount": "Money",
        "note": "String",
    },
    "InvoiceAlert": {
        "id": "ID!",
        "kind": "AlertKind!",
        "invoice": "Invoice!",
        "occurredAt": "DateTime!",
        "readAt": "DateTime",
    },
    "InvoiceConnection": {"edges": None, "pageInfo": None, "totalCount": None},
    "ClientConnection": {"edges": None, "pageInfo": None, "totalCount": None},
    "InvoiceAlertConnection": {"edges": None, "pageInfo": None},
    "PageInfo": {"hasNextPage": None, "endCursor": None},
    "LoginPayload": {"token": None, "viewer": None, "errors": "[UserError!]!"},
    "Query": {
        "node": "Node",
        "viewer": "Viewer",
        "practice": "Practice",
        "clients": "ClientConnection!",
        "client": "Client",
        "invoices": "InvoiceConnection!",
        "invoice": "Invoice",
        "alerts": "InvoiceAlertConnection!",
        "billingReport": "BillingReport!",
        "agingReport": "AgingReport!",
    },
    "Mutation": {
        "login": "LoginPayload!",
        "switchRole": "LoginPayload!",
        "logout": "Boolean!",
        "configurePaymentProcessor": "PaymentProcessorPayload!",
        "removePaymentProcessor": "PaymentProcessorPayload!",
        "setSalesTax": "PracticePayload!",
        "configureClientBilling": "PracticePayload!",
        "sendInvoice": "InvoicePayload!",
        "recordPayment": "InvoicePayload!",
        "forgiveInvoice": "InvoicePayload!",
        "voidInvoice": "InvoicePayload!",
        "refundInvoice": "InvoicePayload!",
        "payInvoice": "InvoicePayload!",
        "markAlertsRead": "Int!",
        "updateNotificationPreferences": "NotificationPreferencesPayload!",
        "configureReminders": "PracticePayload!",
    },
    "Subscription": {"invoiceAlerts": "InvoiceAlert!"},
}

ARGUMENTS = {
    ("Query", "node"): {"id": "ID!"},
    ("Query", "clients"): {"first": "Int", "after": "String", "search": "String"},
    ("Query", "client"): {"id": "ID!"},
    ("Query", "invoices"): {"filter": "InvoiceFilter", "first": "Int", "after": "String"},
    ("Query", "invoice"): {"id": "ID!"},
    ("Mutation", "login"): {"email": "String!", "password": "String!", "role": "Role"},
    ("Mutation", "switchRole"): {"role": "Role!"},
    ("Mutation", "configurePaymentProcessor"): {"input": "ConfigurePaymentProcessorInput!"},
    ("Mutation", "removePaymentProcessor"): {"id": "ID!"},
    ("Mutation", "setSalesTax"): {"input": "SetSalesTaxInput!"},
    ("Mutation", "configureClientBilling"): {"input": "ConfigureClientBillingInput!"},
    ("Mutation", "updateNotificationPreferences"): {"input": "UpdateNotificationPreferencesInput!"},
    ("Mutation", "configureReminders"): {"input": "ConfigureRemindersInput!"},
}

INPUTS: dict[str, dict[str, str | None]] = {
    "InvoiceFilter": {
        "status": "[InvoiceStatus!]",
        "clientId": "ID",
        "providerId": "ID",
        "sentFrom": "DateTime",
        "sentTo": "DateTime",
        "overdue": "Boolean",
    },
    "UpdateNotificationPreferencesInput": {"emailEnabled": "Boolean!"},
    "ConfigureRemindersInput": {"daysBeforeDue": "[Int!]!", "daysAfterDue": "[Int!]!"},
    "ConfigurePaymentProcessorInput": {
        "type": None,
        "description": None,
        "secretKey": None,
        "publishableKey": None,
        "webhookSecret": None,
    },
    "SetSalesTaxInput": {"mode": None, "rateBasisPoints": None, "label": None},
    "ConfigureClientBillingInput": {"enabled": None, "providerIds": None},
}

NODES = {"Practice", "PaymentProcessor", "Client", "Invoice"}


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    built: GraphQLSchema = build_schema(Settings())._schema
    return built


@pytest.mark.parametrize("name", sorted(ENUMS))
def test_contract_enums(schema: GraphQLSchema, name: str) -> None:
    enum = schema.get_type(name)
    assert isinstance(enum, GraphQLEnumType), name
    assert set(enum.values) == ENUMS[name]


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_contract_types(schema: GraphQLSchema, name: str) -> None:
    kind = schema.get_type(name)
    assert isinstance(kind, GraphQLObjectType), name
    for field, shape in OBJECTS[name].items():
        assert field in kind.fields, f"{name}.{field}"
        if shape is not None:
            assert str(kind.fields[field].type) == shape, f"{name}.{field}"
    if name in NODES:
        assert "Node" in {i.name for i in kind.interfaces}, name


@pytest.mark.parametrize(("owner", "field"), sorted(ARGUMENTS))
def test_contract_arguments(schema: GraphQLSchema, owner: str, field: str) -> None:
    kind = schema.get_type(owner)
    assert isinstance(kind, GraphQLObjectType)
    arguments = {n: str(a.type) for n, a in kind.fields[field].args.items()}
    for argument, shape in ARGUMENTS[(owner, field)].items():
        assert arguments.get(argument) == shape, f"{owner}.{field}({argument})"


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_contract_inputs(schema: GraphQLSchema, name: str) -> None:
    kind = schema.get_type(name)
    assert isinstance(kind, GraphQLInputObjectType), name
    for field, shape in INPUTS[name].items():
        assert field in kind.fields, f"{name}.{field}"
        if shape is not None:
            assert str(kind.fields[field].type) == shape, f"{name}.{field}"


def test_node_interface_and_scalars(schema: GraphQLSchema) -> None:
    node = schema.get_type("Node")
    assert isinstance(node, GraphQLInterfaceType)
    assert str(node.fields["id"].type) == "ID!"
    for scalar in ("BigInt", "DateTime", "Date"):
        assert schema.get_type(scalar) is not None, scalar
