"""Fields executed from their plan (schema/execution.py) answer exactly what graphql-core's
own execution answers: the same data and the same errors (message, path, locations) for nulls
in non-null fields, enums, custom scalars, aliases, `__typename`, fragments, `@include`/`@skip`,
interfaces, lists, resolvers asking for `info`, and for reads that raise, return an exception or
an awaitable. Each operation runs on two schemas built from the same types, one with the plans
and one without, and their answers are compared whole."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, cast

import pytest
import strawberry
from graphql import GraphQLError, GraphQLObjectType
from graphql.execution import ExperimentalIncrementalExecutionResults
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from resolvers.root import build_schema
from schema.answer_size import answer_size_limited
from schema.context import Context, reads_context
from schema.execution import reads_plainly
from schema.field_plans import own_class, plan_of
from schema.invoices import InvoiceType
from schema.lean_resolvers import ContextCall, MethodCall, lean_resolvers
from schema.scalars import SCALARS, BigInt
from schema.services import Services
from settings import Settings


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Shade(enum.Enum):
    """Not in the schema: a member of it given for a `Colour` must still be refused."""

    BLUE = "blue"


@strawberry.interface
class Thing:
    id: strawberry.ID


@strawberry.type
class Tag:
    label: str
    weight: int | None


@strawberry.type
class Box(Thing):
    name: str
    # A non-null field holding None: the row is wrong, the answer says so.
    required: str
    colour: Colour
    made: datetime
    size: BigInt
    tag: Tag
    maybe_tag: Tag | None
    tags: list[Tag]
    odd: strawberry.Private[Any]

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()

    @strawberry.field
    def required_shout(self) -> str:
        return self.odd  # type: ignore[no-any-return]

    @strawberry.field
    def fails(self) -> int | None:
        raise GraphQLError("no weight today", extensions={"code": "NOPE"})

    @strawberry.field
    def fails_hard(self) -> int:
        raise ValueError("broken")

    @strawberry.field
    def gives_an_error(self) -> str | None:
        return ValueError("returned, not raised")  # type: ignore[return-value]

    @strawberry.field
    async def later(self) -> str:
        return f"later {self.name}"

    @strawberry.field
    def not_a_colour(self) -> Colour | None:
        return self.odd  # type: ignore[no-any-return]

    @strawberry.field
    def shade(self) -> Colour | None:
        return Shade.BLUE  # type: ignore[return-value]

    @strawberry.field
    def colours(self) -> list[Colour]:
        return [Colour.RED, Colour.BLUE, Colour.RED]

    @strawberry.field
    def where(self, info: strawberry.Info) -> str:
        return f"{info.field_name} at {info.path.as_list()}"

    @strawberry.field
    def required_with_info(self, info: strawberry.Info) -> str:
        return self.odd if info.field_name else "never"

    @strawberry.field
    def tag_with_info(self, info: strawberry.Info) -> Tag:
        return Tag(label=info.field_name, weight=len(info.path.as_list()))

    @strawberry.field
    def nested(self) -> Box | None:
        return self.odd if isinstance(self.odd, Box) else None

    @strawberry.field
    @reads_context
    def in_context(self, context: Context) -> str:
        return f"{self.name} for {context.request_id}"

    @strawberry.field
    @reads_context
    def required_in_context(self, context: Context) -> str:
        return self.odd if context.request_id else "never"

    @strawberry.field
    @reads_context
    def fails_in_context(self, context: Context) -> int:
        raise ValueError(f"broken for {context.request_id}")

    @strawberry.field
    @reads_context
    def tag_in_context(self, context: Context) -> Tag:
        return Tag(label=context.request_id, weight=None)

    @strawberry.field
    @reads_context
    def tags_in_context(self, context: Context) -> list[Tag]:
        return [Tag(label=context.request_id, weight=1), *self.tags]

    @strawberry.field
    @reads_context
    def later_in_context(self, context: Context) -> str:
        return later_text(f"later for {context.request_id}")  # type: ignore[return-value]

    @strawberry.field
    def some_tags(self) -> list[Tag | None]:
        awaited = later_tag("awaited")
        returned = ValueError("an item returned, not raised")
        return [Tag(label="first", weight=1), None, awaited, returned]  # type: ignore[list-item]

    @strawberry.field
    def required_tags(self) -> list[Tag]:
        return [Tag(label="kept", weight=None), self.odd]

    @strawberry.field
    def tag_tuple(self) -> list[Tag]:
        return (Tag(label="in a tuple", weight=2),)  # type: ignore[return-value]

    @strawberry.field
    def inner_boxes(self) -> list[Box | None]:
        return [
            box("in-1"),
            SubBox(**{name: getattr(box("in-sub"), name) for name in BOX_FIELDS}),
            strawberry.cast(Tag, box("in-cast")),
            Tag(label="not a box", weight=None),  # type: ignore[list-item]
            box("in-2", required=None),
            later_box("in-later"),  # type: ignore[list-item]
        ]

    @strawberry.field
    def not_a_box(self) -> Box | None:
        return Tag(label="not a box", weight=None)  # type: ignore[return-value]

    @strawberry.field
    def cast_box(self) -> Box | None:
        return strawberry.cast(Tag, box("cast"))

    @strawberry.field
    def sub_box(self) -> Box:
        return SubBox(**{name: getattr(box("sub"), name) for name in BOX_FIELDS})


class SubBox(Box):
    """Not a type of the schema: a `Box` all the same for `Box.is_type_of`."""


BOX_FIELDS = ("id", "name", "required", "colour", "made", "size", "tag", "maybe_tag", "tags", "odd")


async def later_text(text: str) -> str:
    return text


async def later_tag(label: str) -> Tag:
    return Tag(label=label, weight=None)


async def later_box(name: str) -> Box:
    return box(name)


def box(name: str, *, required: Any = "yes", odd: Any = None) -> Box:
    return Box(
        id=strawberry.ID(f"box-{name}"),
        name=name,
        required=required,
        colour=Colour.BLUE,
        made=datetime(2026, 12, 2, 8, 30, tzinfo=UTC),
        size=BigInt(2**40),
        tag=Tag(label=f"{name}-tag", weight=None),
        maybe_tag=None,
        tags=[Tag(label="a", weight=1), Tag(label="b", weight=None)],
        odd=odd,
    )


@strawberry.type
class Query:
    @strawberry.field
    def boxes(self) -> list[Box]:
        return [box("one"), box("two", odd=box("inner"))]

    @strawberry.field
    def broken_box(self) -> Box | None:
        return box("broken", required=None)

    @strawberry.field
    def odd_box(self, odd: str | None = None) -> Box:
        return box("odd", odd=odd)

    @strawberry.field
    def thing(self) -> Thing:
        return box("thing")


def schemas(max_items: int | None = None) -> tuple[strawberry.Schema, strawberry.Schema]:
    """The same types with the plain reads and with graphql-core's execution alone (both with
    the answer-size cap when `max_items` is given)."""
    built = []
    contexts: list[type[StrawberryGraphQLCoreExecutionContext] | None]
    contexts = [reads_plainly(StrawberryGraphQLCoreExecutionContext), None]
    if max_items is not None:
        contexts = [
            answer_size_limited(context or StrawberryGraphQLCoreExecutionContext, max_items)
            for context in contexts
        ]
    for context in contexts:
        schema = strawberry.Schema(
            query=Query,
            types=[Box],
            config=StrawberryConfig(scalar_map=SCALARS),
            execution_context_class=context,
        )
        lean_resolvers(schema)
        built.append(schema)
    return built[0], built[1]


def context() -> Context:
    return Context(services=cast(Services, None), viewer=None, request_id="request-1")


async def answers(
    query: str, variables: dict[str, Any] | None = None, max_items: int | None = None
) -> list[dict[str, Any]]:
    found = []
    for schema in schemas(max_items):
        result = await schema.execute(query, variable_values=variables, context_value=context())
        found.append(
            {
                "data": result.data,
                "errors": [error.formatted for error in result.errors or ()],
            }
        )
    return found


OPERATIONS = {
    "leaves, enum, custom scalars, aliases, __typename": """{ boxes { __typename id name
      alias: name colour made size shout again: shout tag { label weight __typename } } }""",
    "fragments and directives": """query($yes: Boolean!, $no: Boolean!) { boxes {
      ...B name @include(if: $yes) shout @skip(if: $yes) colour @include(if: $no) }
      thing { __typename id ... on Box { name colour } } }
      fragment B on Box { id tag { ... on Tag { label } } }""",
    "a null in a non-null leaf": "{ brokenBox { name required } }",
    "a null in a non-null leaf inside a list": "{ boxes { name } brokenBox { required } }",
    "a null in a non-null method": "{ oddBox { name requiredShout } }",
    "errors raised, returned, and in non-null fields": """{ boxes { name fails givesAnError
      tags { label } } a: brokenBox { fails } b: boxes { failsHard } }""",
    "an awaitable, nested objects, lists, nullable objects": """{ boxes { later maybeTag {
      label } tags { label weight } nested { name later tag { label } } } }""",
    "resolvers asking for info": """{ boxes { where w: where tagWithInfo { label weight }
      nested { where } } }""",
    "a null from a resolver asking for info": "{ brokenBox { name } oddBox { requiredWithInfo } }",
    "enums: members, lists of members, a member of another enum": """{ boxes { colour
      colours shade } }""",
    "a value its serializer refuses": '{ oddBox(odd: "green") { notAColour name } }',
    "a value an enum does not hold, non-null": '{ oddBox(odd: "green") { requiredShout } }',
    "resolvers reading the context: leaves, objects, lists, awaitables, errors": """{ boxes {
      inContext tagInContext { label } tagsInContext { label weight } laterInContext
      nested { inContext } } a: brokenBox { failsInContext }
      b: brokenBox { requiredInContext } }""",
    "lists: null, awaitable and returned-error items, nulls in non-null items, a tuple": """{
      boxes { someTags { label } tagTuple { label } } brokenBox { requiredTags { label } } }""",
    "lists of objects: other classes, a cast, errors inside items, awaitable items": """{
      boxes { innerBoxes { name required tag { label } } } }""",
    "lists under a directive, aliased, in fragments": """query($yes: Boolean!) { boxes {
      tags @include(if: $yes) { label } again: tags { weight } ... on Box { tags { label } } } }""",
    "is_type_of: another type, a value cast to another type, a subclass": """{ boxes {
      notABox { name } castBox { name } subBox { name tag { label } } } }""",
}


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_plain_reads_answer_as_graphql_core_does(operation: str) -> None:
    plain, general = await answers(OPERATIONS[operation], {"yes": True, "no": False})
    assert plain == general
    assert plain["data"] is not None or plain["errors"]


CAPPED = "{ boxes { name tags { label } again: tags { weight } } }"  # 2 + 2 × (2 + 2) items


@pytest.mark.parametrize("max_items", [2, 4, 5, 8])
async def test_the_answer_size_cap_counts_the_lists_the_plans_complete(max_items: int) -> None:
    plain, general = await answers(CAPPED, max_items=max_items)
    assert plain == general
    assert plain["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_a_class_below_the_plans_completing_lists_its_own_way_keeps_its_lists() -> None:
    """Lists are planned only when their completion is graphql-core's, or counted: with the
    cap below the plans (`complete_list_value` overridden, `count_list_items` not seen), every
    list takes graphql-core's completion, and the cap still applies."""
    below = reads_plainly(answer_size_limited(StrawberryGraphQLCoreExecutionContext, 5))
    capped, _ = await answers(CAPPED, max_items=5)
    assert await answer_of(below, CAPPED) == capped
    seen: list[list[str | int]] = []

    class SeesItsLists(reads_plainly(StrawberryGraphQLCoreExecutionContext)):  # type: ignore[misc]
        def complete_list_value(self, *args: Any) -> Any:
            seen.append(args[3].as_list())
            return super().complete_list_value(*args)

    await answer_of(SeesItsLists, CAPPED)
    in_box = [["boxes", index, name] for index in (0, 1) for name in ("tags", "again")]
    assert seen == [["boxes"], *in_box]


async def test_defer_and_stream_answer_as_graphql_core_does() -> None:
    """With incremental delivery on, `@defer`'s fields and `@stream`'s lists take
    graphql-core's path: the initial answer and every later part are the same."""
    query = """{ boxes { name ... @defer(label: "d") { more: tags { label } shout
      nested { name tags { label } } } streamed: tags @stream(initialCount: 1) { label }
      innerBoxes @stream(initialCount: 2) { name } } }"""
    parts: list[list[Any]] = []
    for context_class in (reads_plainly(StrawberryGraphQLCoreExecutionContext), None):
        schema = strawberry.Schema(
            query=Query,
            types=[Box],
            config=StrawberryConfig(
                scalar_map=SCALARS, enable_experimental_incremental_execution=True
            ),
            execution_context_class=context_class,
        )
        lean_resolvers(schema)
        result = await schema.execute(query, context_value=context())
        assert isinstance(result, ExperimentalIncrementalExecutionResults)
        delivered = [result.initial_result.formatted]
        delivered += [part.formatted async for part in result.subsequent_results]
        parts.append(delivered)
    assert parts[0] == parts[1]
    assert len(parts[0]) > 1  # the deferred and streamed parts came later


async def test_a_class_below_the_plans_executing_objects_its_own_way_sees_every_object() -> None:
    seen: list[list[str | int]] = []

    class SeesItsObjects(reads_plainly(StrawberryGraphQLCoreExecutionContext)):  # type: ignore[misc]
        def execute_collected_subfields(self, *args: Any) -> Any:
            seen.append(args[2].as_list())
            return super().execute_collected_subfields(*args)

    await answer_of(SeesItsObjects, "{ boxes { name tag { label } } }")
    assert seen == [["boxes", 0], ["boxes", 0, "tag"], ["boxes", 1], ["boxes", 1, "tag"]]


async def answer_of(
    context_class: type[StrawberryGraphQLCoreExecutionContext], query: str
) -> dict[str, Any]:
    schema = strawberry.Schema(
        query=Query,
        types=[Box],
        config=StrawberryConfig(scalar_map=SCALARS),
        execution_context_class=context_class,
    )
    lean_resolvers(schema)
    result = await schema.execute(query, context_value=context())
    return {"data": result.data, "errors": [error.formatted for error in result.errors or ()]}


async def test_the_answers_compared_are_the_expected_ones() -> None:
    plain, _ = await answers(OPERATIONS["leaves, enum, custom scalars, aliases, __typename"])
    first = plain["data"]["boxes"][0]
    assert first == {
        "__typename": "Box",
        "id": "box-one",
        "name": "one",
        "alias": "one",
        "colour": "BLUE",
        "made": "2026-12-02T08:30:00+00:00",
        "size": 2**40,
        "shout": "ONE",
        "again": "ONE",
        "tag": {"label": "one-tag", "weight": None, "__typename": "Tag"},
    }
    broken, _ = await answers(OPERATIONS["a null in a non-null leaf"])
    assert broken == {
        "data": {"brokenBox": None},
        "errors": [
            {
                "message": "Cannot return null for non-nullable field Box.required.",
                "locations": [{"line": 1, "column": 20}],
                "path": ["brokenBox", "required"],
            }
        ],
    }


def test_the_fields_of_the_real_schema_read_plainly_are_the_plain_ones() -> None:
    schema = build_schema(Settings())._schema
    invoice = schema.type_map["Invoice"]
    query = schema.query_type
    assert isinstance(invoice, GraphQLObjectType)
    assert query is not None
    plans = {name: plan_of(invoice, name, field) for name, field in invoice.fields.items()}
    plain = {name for name, plan in plans.items() if plan is not None and plan.read is not None}
    # Attributes and methods of `self` alone are read; what asks for `info` is called with one.
    assert {"number", "status", "dueDate"} <= plain
    assert isinstance(invoice.fields["number"].resolve, MethodCall)
    assert not {"overdue", "client", "amountPaid"} & plain
    overdue = plans["overdue"]
    assert overdue is not None
    assert overdue.resolve is invoice.fields["overdue"].resolve
    # Resolvers made by `reads_context` are called with the context, without an `Info`.
    amount_paid = plans["amountPaid"]
    assert amount_paid is not None
    assert isinstance(amount_paid.resolve, ContextCall)
    assert amount_paid.read_in_context is amount_paid.resolve.read
    # Fields with arguments keep graphql-core's `execute_field`.
    assert plan_of(query, "invoices", query.fields["invoices"]) is None


async def test_resolvers_reading_the_context_answer_alike_through_strawberrys_own_call() -> None:
    """Without the lean resolvers (as when the schema has exception handlers), strawberry calls
    the resolver `reads_context` made with an `Info`: it reads the same context."""
    query = OPERATIONS["resolvers reading the context: leaves, objects, lists, awaitables, errors"]
    plain, _ = await answers(query)
    schema = strawberry.Schema(
        query=Query, types=[Box], config=StrawberryConfig(scalar_map=SCALARS)
    )
    result = await schema.execute(query, context_value=context())
    errors = [error.formatted for error in result.errors or ()]
    assert {"data": result.data, "errors": errors} == plain
    assert plain["data"]["boxes"][0]["inContext"] == "one for request-1"


def test_values_of_a_node_types_own_class_need_no_is_type_of() -> None:
    schema = build_schema(Settings())._schema
    invoice = schema.type_map["Invoice"]
    edge = schema.type_map["InvoiceEdge"]
    assert isinstance(invoice, GraphQLObjectType)
    assert isinstance(edge, GraphQLObjectType)
    node = plan_of(edge, "node", edge.fields["node"])
    assert node is not None
    assert node.own_class is InvoiceType
    # What is skipped is what strawberry's check answers for such a value.
    assert invoice.is_type_of is not None
    assert invoice.is_type_of(InvoiceType(row=None), None)  # type: ignore[arg-type]
    assert own_class(edge) is None  # no interface, no `is_type_of`
