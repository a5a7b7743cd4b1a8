"""Plain calls for the fields that need nothing more: strawberry resolves every field that has a
resolver through one general wrapper — convert the GraphQL arguments, let the field extensions
(permissions, `guarded`) reshape them, chain the extensions around the call, then call the
resolver with `self`, `info` or `root` as it asks. A field without arguments and without
extensions does none of that but the last step, yet paid for all of it: an invoice's ~70 fields
on a page of 50 are ~3,000 such calls a request.

`lean_resolvers` gives those fields, once the schema is built, a resolver that makes only that
call, with the same arguments (the source as `self`, `root` or `parent`, a strawberry `Info`
when asked for), so the answers and errors are the same. A resolver made by
`schema.context.reads_context` is called with the request's context instead of an `Info`
(`ContextCall`). Fields with arguments or extensions
(the root fields, the mutations, `guarded` ones) keep strawberry's wrapper; so does everything
when the schema has exception handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLField, GraphQLObjectType, GraphQLResolveInfo
from strawberry import Schema
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from schema.context import Context, context_read_of


class MethodCall:
    """The resolver of a field whose method asks for nothing but `self`: `method(source)`
    (schema/execution.py reads such a field without building an `Info`)."""

    __slots__ = ("method",)

    def __init__(self, method: Callable[[Any], Any]) -> None:
        self.method = method

    def __call__(self, source: Any, _info: GraphQLResolveInfo[Any]) -> Any:
        return self.method(source)


class ContextCall:
    """The resolver of a field made by `reads_context`, which needs nothing of the `Info` but
    the context: `read(source, context)` (schema/execution.py calls it without an `Info`)."""

    __slots__ = ("read",)

    def __init__(self, read: Callable[[Any, Context], Any]) -> None:
        self.read = read

    def __call__(self, source: Any, info: GraphQLResolveInfo[Any]) -> Any:
        return self.read(source, info.context)


def lean_resolver(schema: Schema, field: StrawberryField) -> Callable[..., Any] | None:
    """A direct call of the field's resolver, or None when the field needs strawberry's own."""
    resolver = field.base_resolver
    if (
        resolver is None
        or field.extensions
        or field.arguments
        or field.is_subscription
        or schema.exception_handlers
        or not callable(resolver.wrapped_func)
    ):
        return None
    call = resolver.wrapped_func
    context_read = context_read_of(call)
    if context_read is not None:
        return ContextCall(context_read)
    info_class = schema.config.info_class
    wants_self = resolver.self_parameter is not None
    source_names = tuple(
        parameter.name
        for parameter in (resolver.parent_parameter, resolver.root_parameter)
        if parameter is not None
    )
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None

    if wants_self and info_name is not None and not source_names:
        # The common case (a method asking for `info`), without building keyword arguments.
        def resolve_with_info(source: Any, info: GraphQLResolveInfo[Any]) -> Any:
            return call(source, **{info_name: info_class(_raw_info=info, _field=field)})

        return resolve_with_info

    if wants_self and info_name is None and not source_names:
        return MethodCall(call)

    def resolve(source: Any, info: GraphQLResolveInfo[Any]) -> Any:
        kwargs: dict[str, Any] = dict.fromkeys(source_names, source)
        if info_name is not None:
            kwargs[info_name] = info_class(_raw_info=info, _field=field)
        return call(source, **kwargs) if wants_self else call(**kwargs)

    return resolve


def lean_resolvers(schema: Schema) -> int:
    """Gives every field that can have one a lean resolver; how many fields got one."""
    replaced = 0
    for type_ in schema._schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        graphql_field: GraphQLField
        for graphql_field in type_.fields.values():
            field = (graphql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if not isinstance(field, StrawberryField):
                continue
            resolve = lean_resolver(schema, field)
            if resolve is not None:
                graphql_field.resolve = resolve
                replaced += 1
    return replaced
