"""Plain reads executed without graphql-core's per-field machinery.

graphql-core executes every field alike: a `Path`, a `GraphQLResolveInfo`, the middleware
wrapper, the resolver's call, an awaitable check, then `complete_value` through the type's
wrappers (non-null, list, leaf or object) down to the scalar's serializer. Most fields of a
page need none of that but the read and the serializer: an invoice's `number`, `status` or
`dueDate` is an attribute of the object, or a method that asks for nothing but `self`
(`schema/lean_resolvers.py`), and its type is a scalar or an enum.

`reads_plainly(base)` makes an execution context that decides once per schema field whether
it is such a plain read (strawberry's default resolver or a `MethodCall`, no arguments, no
middleware) and what completing it takes; those fields are then read and serialized on the
spot, with a `Path` and an `Info` built only when something needs them (an error's path, a
list, an abstract type, an `is_type_of`). Everything else, and anything unexpected a read
returns (an awaitable, an exception), takes graphql-core's own path, so the answers and the
errors — their message, `path` and `locations` — are the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from operator import attrgetter
from typing import Any, TypeVar

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    TypeNameMetaFieldDef,
    is_leaf_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution import Executor
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import to_nodes
from graphql.pyutils import AwaitableOrValue, Path, Undefined, gather_with_cancel
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from schema.lean_resolvers import MethodCall

E = TypeVar("E", bound=Executor[Any])


class PlainRead:
    """A field whose value is a plain read of its source, and how to complete it."""

    __slots__ = ("field", "leaf", "name", "non_null", "object_type", "read", "serialize", "type")

    def __init__(self, name: str, field: GraphQLField, read: Callable[[Any], Any]) -> None:
        self.name = name
        self.field = field
        self.read = read
        self.type: GraphQLOutputType = field.type
        self.non_null = is_non_null_type(field.type)
        named = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        # A leaf is serialized on the spot; an object type without `is_type_of` has its
        # selection executed on the value; anything else (a list, an abstract type, an
        # `is_type_of`) is completed by graphql-core, with an Info.
        self.leaf: GraphQLLeafType | None = named if is_leaf_type(named) else None
        self.serialize = self.leaf.coerce_output_value if self.leaf is not None else None
        self.object_type: GraphQLObjectType | None = (
            named if is_object_type(named) and named.is_type_of is None else None
        )


def plain_read_of(
    parent_type: GraphQLObjectType, name: str, field: GraphQLField
) -> PlainRead | None:
    """The field as a plain read, or None when it needs its resolver called as graphql-core
    calls it (arguments, `info`, extensions, a custom resolver)."""
    if field.args:
        return None
    if field is TypeNameMetaFieldDef:
        type_name = parent_type.name
        return PlainRead(name, field, lambda _source: type_name)
    resolve = field.resolve
    if isinstance(resolve, MethodCall):
        return PlainRead(name, field, resolve.method)
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if (
        isinstance(definition, StrawberryField)
        and getattr(resolve, "_is_default", False)
        and definition.is_basic_field
    ):
        # strawberry's resolver of a field without one: `default_resolver(source, name)`.
        python_name = definition.python_name
        if definition.default_resolver is getattr:
            return PlainRead(name, field, attrgetter(python_name))
        default_resolver = definition.default_resolver
        return PlainRead(name, field, lambda source: default_resolver(source, python_name))
    return None


def reads_plainly(base: type[E]) -> type[E]:
    """An execution context class like `base` that reads and completes plain fields on the
    spot (see the module's docstring)."""
    # Per schema field (the schema's own objects, so a class serves one schema).
    plans: dict[GraphQLObjectType, dict[str, PlainRead | None]] = {}

    class ReadsPlainly(base):  # type: ignore[valid-type,misc]
        def execute_fields(
            self,
            parent_type: GraphQLObjectType,
            source_value: Any,
            path: Path | None,
            grouped_field_set: GroupedFieldSet,
            position_context: Any,
        ) -> AwaitableOrValue[dict[str, Any]]:
            if self.middleware_manager is not None and self.middleware_manager.middlewares:
                return super().execute_fields(  # type: ignore[no-any-return]
                    parent_type, source_value, path, grouped_field_set, position_context
                )
            type_plans = plans.get(parent_type)
            if type_plans is None:
                type_plans = plans[parent_type] = {}
            results: dict[str, Any] = {}
            is_awaitable = self.is_awaitable
            awaitable_fields: list[str] = []
            try:
                for response_name, field_details_list in grouped_field_set.items():
                    field_name = field_details_list[0].node.name.value
                    try:
                        plan = type_plans[field_name]
                    except KeyError:
                        field = self.schema.get_field(parent_type, field_name)
                        plan = type_plans[field_name] = (
                            plain_read_of(parent_type, field_name, field)
                            if field is not None
                            else None
                        )
                    if plan is not None:
                        result = self.execute_plain_read(
                            plan,
                            parent_type,
                            source_value,
                            field_details_list,
                            path,
                            response_name,
                            position_context,
                        )
                    else:
                        result = self.execute_field(
                            parent_type,
                            source_value,
                            field_details_list,
                            Path(path, response_name, parent_type.name),
                            position_context,
                        )
                        if result is Undefined:
                            continue
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
            except Exception:
                if awaitable_fields:
                    self.settle_in_background([results[field] for field in awaitable_fields])
                raise
            if not awaitable_fields:
                return results
            return self.gather_fields(results, awaitable_fields)

        async def gather_fields(
            self, results: dict[str, Any], awaitable_fields: list[str]
        ) -> dict[str, Any]:
            """As graphql-core's `execute_fields` does for the fields still awaited."""
            if len(awaitable_fields) == 1:
                field = awaitable_fields[0]
                results[field] = await results[field]
            else:
                awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        def execute_plain_read(
            self,
            plan: PlainRead,
            parent_type: GraphQLObjectType,
            source: Any,
            field_details_list: FieldDetailsList,
            parent_path: Path | None,
            response_name: str,
            position_context: Any,
        ) -> AwaitableOrValue[Any]:
            """`execute_field` for a plain read: the same value, error or null."""
            try:
                value = plan.read(source)
                if self.is_awaitable(value) or isinstance(value, Exception):
                    return self.complete_read(
                        plan,
                        parent_type,
                        field_details_list,
                        Path(parent_path, response_name, parent_type.name),
                        value,
                        position_context,
                    )
                if value is None or value is Undefined:
                    if plan.non_null:
                        msg = (
                            f"Cannot return null for non-nullable field {parent_type}.{plan.name}."
                        )
                        raise TypeError(msg)
                    return None
                if plan.serialize is not None:
                    coerced = plan.serialize(value)
                    if coerced is None or coerced is Undefined:
                        # graphql-core's error (`complete_leaf_value`) for a serializer's null.
                        return self.complete_leaf_value(plan.leaf, value)
                    return coerced
                path = Path(parent_path, response_name, parent_type.name)
                if plan.object_type is not None:
                    completed = self.collect_and_execute_subfields(
                        plan.object_type, field_details_list, path, value, position_context
                    )
                    if self.is_awaitable(completed):
                        return self.await_completed(completed, plan, field_details_list, path)
                    return completed
                return self.complete_read(
                    plan, parent_type, field_details_list, path, value, position_context
                )
            except Exception as raw_error:
                self.handle_field_error(
                    raw_error,
                    plan.type,
                    field_details_list,
                    Path(parent_path, response_name, parent_type.name),
                )
                return None

        def complete_read(
            self,
            plan: PlainRead,
            parent_type: GraphQLObjectType,
            field_details_list: FieldDetailsList,
            path: Path,
            value: Any,
            position_context: Any,
        ) -> AwaitableOrValue[Any]:
            """What `execute_field` does with a resolver's value (graphql-core's completion,
            with the `Info` it builds); raises what it would catch."""
            info = self.build_resolve_info(
                plan.field, to_nodes(field_details_list), parent_type, path
            )
            if self.is_awaitable(value):
                return self.complete_awaitable_value(
                    plan.type, field_details_list, info, path, value, position_context
                )
            completed = self.complete_value(
                plan.type, field_details_list, info, path, value, position_context
            )
            if self.is_awaitable(completed):
                return self.await_completed(completed, plan, field_details_list, path)
            return completed

        async def await_completed(
            self,
            completed: Awaitable[Any],
            plan: PlainRead,
            field_details_list: FieldDetailsList,
            path: Path,
        ) -> Any:
            try:
                return await completed
            except Exception as raw_error:
                self.handle_field_error(raw_error, plan.type, field_details_list, path)
                return None

    return ReadsPlainly
