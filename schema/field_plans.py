"""The plan of a field without arguments, decided once per schema field: how its value is
had (a plain read of the source, a read of the source in the request's context, or its
resolver's call with an `Info`) and how it completes (a scalar or an enum serialized on the
spot, an object's selection executed on the value — without `is_type_of` for a value of the
type's own class —, a list of an object type's items completed one by one, or graphql-core's
own completion). schema/execution.py executes fields after their plans."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from operator import attrgetter
from typing import Any, cast

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    TypeNameMetaFieldDef,
    is_leaf_type,
    is_non_null_type,
    is_object_type,
)
from strawberry.schema import schema_converter
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

from schema.lean_resolvers import ContextCall, MethodCall

# Classes whose instances are never awaitable, never an exception and never null (built-in
# types, whose instances take no attributes): a leaf read as one of these and serialized as one
# of these is complete.
PLAIN_VALUES: frozenset[type] = frozenset({str, int, float, bool, datetime, date})
# What a completed field is when it is complete: a leaf's serialization, an object's fields, a
# list's items or null (never awaitable).
PLAIN_RESULTS: frozenset[type] = frozenset({str, int, float, bool, dict, list, type(None)})


def enum_serializer(enum_type: CustomGraphQLEnumType) -> Callable[[Any], Any]:
    """strawberry's serializer of an enum type, with its answer for each member of the Python
    enum worked out once (it compares the member's value with every value of the type)."""
    serialize = enum_type.coerce_output_value
    members = cast("type[Enum]", enum_type.wrapped_cls)
    names: dict[int, str] = {}
    for member in members:
        with contextlib.suppress(Exception):  # asked again, it raises again
            names[id(member)] = serialize(member)

    def serialize_member(value: Any) -> Any:
        if value.__class__ is members:
            name = names.get(id(value))
            if name is not None:
                return name
        return serialize(value)

    return serialize_member


def own_class(object_type: GraphQLObjectType) -> type | None:
    """The Python class whose instances `object_type.is_type_of` accepts without looking at
    anything else, or None when there is no such check or it is not strawberry's own.

    strawberry gives a type that implements interfaces (the `Node` types) an `is_type_of` that
    answers `isinstance(value, the type's class)` unless the value was `strawberry.cast` to a
    type; a value of exactly that class, not cast, needs no call (nor the `Info` it takes)."""
    definition = (object_type.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    is_type_of = object_type.is_type_of
    if (
        is_type_of is None
        or not isinstance(definition, StrawberryObjectDefinition)
        or definition.is_type_of is not None  # the type's own check
        or definition.concrete_of is not None  # a generic's specialization
        or getattr(is_type_of, "__module__", None) != schema_converter.__name__
    ):
        return None
    return definition.origin


def direct_class(object_type: GraphQLObjectType) -> type | None:
    """The Python class whose instances complete as `object_type` by executing its selection on
    them, without an `is_type_of` (there is none, or it is `own_class`'s) and without an
    awaitable check (the class is neither awaitable nor an exception); None when there is no
    such class."""
    if object_type.is_type_of is None:
        definition = (object_type.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        found = definition.origin if isinstance(definition, StrawberryObjectDefinition) else None
    else:
        found = own_class(object_type)
    if found is None or hasattr(found, "__await__") or issubclass(found, Exception):
        return None
    return found


class ListPlan:
    """How the items of a list of an object type complete: an item of the type's own class
    (`direct_class`) has the selection executed on it, any other item takes graphql-core's
    completion of a list item."""

    __slots__ = ("checks_cast", "item_class", "item_type", "object_type")

    def __init__(self, item_type: GraphQLOutputType, object_type: GraphQLObjectType) -> None:
        self.item_type = item_type
        self.object_type = object_type
        self.item_class = direct_class(object_type)
        # A value `strawberry.cast` to another type is not the type's for its `is_type_of`.
        self.checks_cast = object_type.is_type_of is not None


def list_plan(named: GraphQLOutputType) -> ListPlan | None:
    """The plan of a list's items, for a list of an object type (`[T]`, `[T!]`, of a nullable
    or non-null field); None for any other type, or when no item class completes directly."""
    if not isinstance(named, GraphQLList):
        return None
    item_type = named.of_type
    item_named = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
    if not is_object_type(item_named):
        return None
    plan = ListPlan(item_type, item_named)
    return plan if plan.item_class is not None else None


class FieldPlan:
    """How a field without arguments is executed: its value (a plain read of the source, a read
    in the request's context, or its resolver's call with an `Info`) and how to complete it,
    decided once per field."""

    __slots__ = (
        "field",
        "items",
        "leaf",
        "name",
        "non_null",
        "object_type",
        "own_class",
        "plain",
        "read",
        "read_in_context",
        "reads_without_info",
        "resolve",
        "serialize",
        "type",
    )

    def __init__(
        self,
        name: str,
        field: GraphQLField,
        read: Callable[[Any], Any] | None = None,
        resolve: Callable[[Any, GraphQLResolveInfo[Any]], Any] | None = None,
    ) -> None:
        self.name = name
        self.field = field
        # One of the two: `read(source)` needs no Info, `resolve(source, info)` does, unless
        # the resolver is a `ContextCall`: then `read_in_context(source, context)` is its call.
        self.read = read
        self.resolve = resolve
        self.read_in_context: Callable[[Any, Any], Any] | None = (
            resolve.read if isinstance(resolve, ContextCall) else None
        )
        self.reads_without_info = read is not None or self.read_in_context is not None
        self.type: GraphQLOutputType = field.type
        self.non_null = is_non_null_type(field.type)
        named = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        # A leaf is serialized on the spot, an object type has its selection executed on the
        # value, a list of an object type its items completed (`items`); anything else (a
        # list of leaves, of lists or of an abstract type, an abstract type) is completed by
        # graphql-core.
        self.leaf: GraphQLLeafType | None = named if is_leaf_type(named) else None
        self.plain = PLAIN_VALUES
        self.serialize: Callable[[Any], Any] | None = None
        if isinstance(self.leaf, CustomGraphQLEnumType):
            self.serialize = enum_serializer(self.leaf)
            members = self.leaf.wrapped_cls
            if not hasattr(members, "__await__") and not issubclass(members, Exception):
                self.plain = PLAIN_VALUES | {members}
        elif self.leaf is not None:
            self.serialize = self.leaf.coerce_output_value
        self.object_type: GraphQLObjectType | None = named if is_object_type(named) else None
        # Values of this class need no `is_type_of` (see `own_class`).
        self.own_class = own_class(self.object_type) if self.object_type is not None else None
        self.items = list_plan(named)
        # Values of these classes are neither awaitable nor exceptions either: an object's
        # direct class, a plain list of a planned list.
        if self.object_type is not None and (direct := direct_class(self.object_type)):
            self.plain = PLAIN_VALUES | {direct}
        elif self.items is not None:
            self.plain = PLAIN_VALUES | {list}


def plan_of(parent_type: GraphQLObjectType, name: str, field: GraphQLField) -> FieldPlan | None:
    """The field's plan; None for a field with arguments (graphql-core's `execute_field`)."""
    if field.args or field.resolve is None:
        return None
    if field is TypeNameMetaFieldDef:
        type_name = parent_type.name
        return FieldPlan(name, field, read=lambda _source: type_name)
    resolve = field.resolve
    if isinstance(resolve, MethodCall):
        return FieldPlan(name, field, read=resolve.method)
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if (
        isinstance(definition, StrawberryField)
        and getattr(resolve, "_is_default", False)
        and definition.is_basic_field
    ):
        # strawberry's resolver of a field without one: `default_resolver(source, name)`.
        python_name = definition.python_name
        if definition.default_resolver is getattr:
            return FieldPlan(name, field, read=attrgetter(python_name))
        default_resolver = definition.default_resolver
        return FieldPlan(name, field, read=lambda source: default_resolver(source, python_name))
    return FieldPlan(name, field, resolve=resolve)
