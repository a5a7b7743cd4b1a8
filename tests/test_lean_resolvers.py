"""Fields without arguments or extensions are resolved by a plain call of their resolver
(schema/lean_resolvers.py); the others keep strawberry's wrapper, so their permissions,
argument conversion and domain-error mapping still run."""

from __future__ import annotations

from graphql import GraphQLObjectType
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from models.enums import Role
from resolvers.root import build_schema
from settings import Settings
from tests.api import Api
from tests.factories import World

LEAN = "schema.lean_resolvers"


def test_plain_fields_get_a_plain_call_and_the_others_keep_strawberrys() -> None:
    schema = build_schema(Settings())
    lean: set[str] = set()
    kept: set[str] = set()
    for type_ in schema._schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, graphql_field in type_.fields.items():
            field = graphql_field.extensions[GraphQLCoreConverter.DEFINITION_BACKREF]
            assert isinstance(field, StrawberryField)
            if graphql_field.resolve is None or field.base_resolver is None:
                continue
            is_lean = graphql_field.resolve.__module__ == LEAN
            (lean if is_lean else kept).add(f"{type_.name}.{name}")
            assert is_lean == (not field.extensions and not field.arguments), (type_.name, name)
    assert {"Invoice.number", "Invoice.amountPaid", "Invoice.client", "Payment.amount"} <= lean
    assert {"Query.invoices", "Query.billingReport", "Mutation.sendInvoice"} <= kept
    assert {"Client.statement", "Practice.paymentProcessors", "Client.invoices"} <= kept
    assert len(lean) > 100


async def test_a_plain_field_still_refuses_what_its_resolver_refuses(
    api: Api, world: World
) -> None:
    # `User.roles` (a plain call) asks for the viewer itself; `Practice.paymentProcessors`
    # (guarded) keeps its permission: a CLIENT may not read them.
    token = await world.token(world.c1, Role.CLIENT)
    body = await api.post(
        "{ viewer { user { roles } practice { paymentProcessors { type } } } }", token=token
    )
    assert body["data"]["viewer"]["user"]["roles"] == ["CLIENT"]
    assert body["data"]["viewer"]["practice"] == {"paymentProcessors": None}
    (error,) = body["errors"]
    assert error["path"] == ["viewer", "practice", "paymentProcessors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
