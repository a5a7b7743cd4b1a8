"""The execution of a field without arguments, from its plan (schema/field_plans.py).

graphql-core executes every field alike: a `Path`, a `GraphQLResolveInfo`, the middleware
wrapper, the resolver's call, an awaitable check, then `complete_value` through the type's
wrappers (non-null, list, leaf or object) down to the scalar's serializer — ≈ 3,750 times for
a page of 50 invoices. Most of those fields need far less: an invoice's `number`, `status` or
`dueDate` is an attribute of the object, or a method that asks for nothing but `self`
(`schema/lean_resolvers.py`), and its type is a scalar or an enum.

`reads_plainly(base)` makes an execution context that plans each field without arguments
once per schema (when there is no middleware): whether its value is a plain read of the source
(strawberry's default resolver, a `MethodCall`, `__typename`), a read in the request's context
(a `ContextCall`, made by `schema.context.reads_context`) or its resolver's call with an `Info`,
and how it completes — a scalar or an enum is serialized on the spot, an object type has its
selection executed on the value (at once, when there is no `@defer`: `selection_at_once`), a
list of an object type has its items completed one by one. A `Path` and an `Info` are then
built only when something needs them (the resolver, an error's path, an object's fields, an
`is_type_of` that a value of the type's own class does not need). Lists of leaves, lists under a
directive (`@stream`), abstract types and anything unexpected a field or an item is (an
awaitable, an exception, a value of another class) take graphql-core's own completion, and
fields with arguments its `execute_field`, so the answers and the errors — their message, `path`
and `locations` — are the same (tests/test_plain_reads.py). A subclass that changes how
graphql-core completes lists (unless it counts them with `count_list_items`, as
schema/answer_size.py does) or executes objects keeps graphql-core's path for those.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, ClassVar, TypeVar, cast

from graphql import GraphQLObjectType, GraphQLOutputType, GraphQLResolveInfo
from graphql.execution import Executor
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import collect_iterator_awaitables, to_nodes
from graphql.pyutils import AwaitableOrValue, Path, Undefined, gather_with_cancel
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE

from schema.field_plans import PLAIN_RESULTS, PLAIN_VALUES, FieldPlan, ListPlan, plan_of

E = TypeVar("E", bound=Executor[Any])

# graphql-core's steps from an object to its fields' execution (`selection_at_once`).
SELECTION_METHODS = (
    "collect_and_execute_subfields",
    "collect_subfields",
    "execute_collected_subfields",
)


def reads_plainly(base: type[E]) -> type[E]:
    """An execution context class like `base` that reads and completes plain fields on the
    spot (see the module's docstring)."""
    # Per schema field (the schema's own objects, so a class serves one schema).
    plans: dict[GraphQLObjectType, dict[str, FieldPlan | None]] = {}

    class ReadsPlainly(base):  # type: ignore[valid-type,misc]
        # Whether the plans complete lists: not when a subclass changed graphql-core's
        # completion of a list without seeing, through `count_list_items`, the plans' lists.
        plans_lists: ClassVar[bool] = base.complete_list_value.__module__.startswith("graphql.")
        # Whether an object's selection may be executed at once (`selection_at_once`): not when
        # a class changed how graphql-core collects or executes an object's fields.
        executes_selections_at_once: ClassVar[bool] = all(
            getattr(base, name).__module__.startswith("graphql.") for name in SELECTION_METHODS
        )

        def __init_subclass__(cls, **kwargs: Any) -> None:
            super().__init_subclass__(**kwargs)
            cls.plans_lists = (
                cls.complete_list_value is ReadsPlainly.complete_list_value
                or cls.count_list_items is not ReadsPlainly.count_list_items
            ) and ReadsPlainly.plans_lists
            cls.executes_selections_at_once = ReadsPlainly.executes_selections_at_once and all(
                getattr(cls, name) is getattr(ReadsPlainly, name) for name in SELECTION_METHODS
            )

        def count_list_items(self, items: list[Any]) -> None:
            """Called with each list whose items the plans complete, before them (graphql-core's
            `complete_list_value` is not called for it): a subclass that counts list items
            (schema/answer_size.py) counts these too."""

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
            context = self.context_value
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
                            plan_of(parent_type, field_name, field) if field is not None else None
                        )
                    if plan is not None and plan.reads_without_info and plan.serialize is not None:
                        # A scalar or an enum read from the source, most of a page's fields:
                        # a plain value and its plain serialization need no awaitable check.
                        try:
                            if plan.read is not None:
                                value = plan.read(source_value)
                            else:
                                assert plan.read_in_context is not None  # `reads_without_info`
                                value = plan.read_in_context(source_value, context)
                            if value.__class__ in plan.plain:
                                coerced = plan.serialize(value)
                                if coerced.__class__ in PLAIN_VALUES:
                                    results[response_name] = coerced
                                    continue
                            result = self.complete_planned(
                                plan,
                                parent_type,
                                field_details_list,
                                path,
                                response_name,
                                None,
                                None,
                                value,
                                position_context,
                            )
                        except Exception as raw_error:
                            self.handle_field_error(
                                raw_error,
                                plan.type,
                                field_details_list,
                                Path(path, response_name, parent_type.name),
                            )
                            result = None
                    elif plan is not None:
                        result = self.execute_planned(
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
                    if result.__class__ not in PLAIN_RESULTS and is_awaitable(result):
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

        def execute_planned(
            self,
            plan: FieldPlan,
            parent_type: GraphQLObjectType,
            source: Any,
            field_details_list: FieldDetailsList,
            parent_path: Path | None,
            response_name: str,
            position_context: Any,
        ) -> AwaitableOrValue[Any]:
            """`execute_field` after its plan: the same value, error or null."""
            path: Path | None = None
            info: GraphQLResolveInfo[Any] | None = None
            try:
                if plan.read is not None:
                    value = plan.read(source)
                elif plan.read_in_context is not None:
                    value = plan.read_in_context(source, self.context_value)
                else:
                    assert plan.resolve is not None
                    path = Path(parent_path, response_name, parent_type.name)
                    info = self.build_resolve_info(
                        plan.field, to_nodes(field_details_list), parent_type, path
                    )
                    value = plan.resolve(source, info)
                return self.complete_planned(
                    plan,
                    parent_type,
                    field_details_list,
                    parent_path,
                    response_name,
                    path,
                    info,
                    value,
                    position_context,
                )
            except Exception as raw_error:
                self.handle_field_error(
                    raw_error,
                    plan.type,
                    field_details_list,
                    path or Path(parent_path, response_name, parent_type.name),
                )
                return None

        def complete_planned(
            self,
            plan: FieldPlan,
            parent_type: GraphQLObjectType,
            field_details_list: FieldDetailsList,
            parent_path: Path | None,
            response_name: str,
            path: Path | None,
            info: GraphQLResolveInfo[Any] | None,
            value: Any,
            position_context: Any,
        ) -> AwaitableOrValue[Any]:
            """The field's value completed after its plan (the `Path` and `Info` of the call,
            if it made them); raises what `execute_field` would catch."""
            if value is None or value is Undefined:  # neither awaitable nor an exception
                if plan.non_null:
                    msg = f"Cannot return null for non-nullable field {parent_type}.{plan.name}."
                    raise TypeError(msg)
                return None
            if value.__class__ not in plan.plain and (
                self.is_awaitable(value) or isinstance(value, Exception)
            ):
                return self.complete_read(
                    plan,
                    parent_type,
                    field_details_list,
                    path or Path(parent_path, response_name, parent_type.name),
                    info,
                    value,
                    position_context,
                )
            if plan.serialize is not None:
                coerced = plan.serialize(value)
                if coerced is None or coerced is Undefined:
                    # graphql-core's error (`complete_leaf_value`) for a serializer's null.
                    return self.complete_leaf_value(plan.leaf, value)
                return coerced
            if path is None:
                path = Path(parent_path, response_name, parent_type.name)
            if (
                plan.items is not None
                and value.__class__ is list
                and self.plans_lists
                and not field_details_list[0].node.directives  # `@stream` is graphql-core's
            ):
                self.count_list_items(value)
                items = self.complete_planned_items(
                    plan,
                    plan.items,
                    parent_type,
                    field_details_list,
                    path,
                    info,
                    value,
                    position_context,
                )
                if isinstance(items, list):
                    return items
                return self.await_completed(items, plan.type, field_details_list, path)
            object_type = plan.object_type
            if object_type is None:
                return self.complete_read(
                    plan, parent_type, field_details_list, path, info, value, position_context
                )
            if object_type.is_type_of is None or (
                value.__class__ is plan.own_class
                and getattr(value, TYPE_CAST_ATTRIBUTE, None) is None
            ):
                selection = self.selection_at_once(
                    object_type, field_details_list, position_context
                )
                completed = (
                    self.execute_fields(object_type, value, path, selection, None)
                    if selection is not None
                    else self.collect_and_execute_subfields(
                        object_type, field_details_list, path, value, position_context
                    )
                )
            else:  # `is_type_of` is given the Info
                if info is None:
                    info = self.build_resolve_info(
                        plan.field, to_nodes(field_details_list), parent_type, path
                    )
                completed = self.complete_object_value(
                    object_type, field_details_list, info, path, value, position_context
                )
            if completed.__class__ is not dict and self.is_awaitable(completed):
                return self.await_completed(
                    cast("Awaitable[Any]", completed), plan.type, field_details_list, path
                )
            return completed

        def complete_planned_items(
            self,
            plan: FieldPlan,
            items: ListPlan,
            parent_type: GraphQLObjectType,
            field_details_list: FieldDetailsList,
            path: Path,
            info: GraphQLResolveInfo[Any] | None,
            value: list[Any],
            position_context: Any,
        ) -> AwaitableOrValue[list[Any]]:
            """A list's items completed after its plan, as graphql-core's
            `complete_iterable_value` completes them: the same values, errors (at the item's
            path) and nulls; raises what it would raise."""
            completed: list[Any] = []
            awaitable_indices: list[int] = []
            is_awaitable = self.is_awaitable
            item_type = items.item_type
            object_type = items.object_type
            selection = self.selection_at_once(object_type, field_details_list, position_context)
            iterator = iter(value)
            try:
                for index, item in enumerate(iterator):
                    item_path = Path(path, index, None)
                    if item.__class__ is not items.item_class or (
                        items.checks_cast and getattr(item, TYPE_CAST_ATTRIBUTE, None) is not None
                    ):
                        # graphql-core's completion of the item, with the list's Info.
                        if info is None:
                            info = self.build_resolve_info(
                                plan.field, to_nodes(field_details_list), parent_type, path
                            )
                        if is_awaitable(item):
                            completed.append(
                                self.complete_awaitable_list_item_value(
                                    item,
                                    item_type,
                                    field_details_list,
                                    info,
                                    item_path,
                                    position_context,
                                )
                            )
                            awaitable_indices.append(index)
                        elif self.complete_list_item_value(
                            item,
                            completed,
                            item_type,
                            field_details_list,
                            info,
                            item_path,
                            position_context,
                        ):
                            awaitable_indices.append(index)
                        continue
                    try:
                        fields = (
                            self.execute_fields(object_type, item, item_path, selection, None)
                            if selection is not None
                            else self.collect_and_execute_subfields(
                                object_type, field_details_list, item_path, item, position_context
                            )
                        )
                        if fields.__class__ is not dict and is_awaitable(fields):
                            fields = self.await_completed(
                                cast("Awaitable[Any]", fields),
                                item_type,
                                field_details_list,
                                item_path,
                            )
                            awaitable_indices.append(index)
                    except Exception as raw_error:
                        self.handle_field_error(raw_error, item_type, field_details_list, item_path)
                        fields = None
                    completed.append(fields)
            except Exception:
                # As graphql-core does: the awaitables begun, and those left in the list, are
                # settled in the background.
                awaitables = [completed[index] for index in awaitable_indices]
                awaitables.extend(collect_iterator_awaitables(iterator, is_awaitable))
                if awaitables:
                    self.settle_in_background(awaitables)
                raise
            if not awaitable_indices:
                return completed
            return self.gather_items(completed, awaitable_indices)

        def selection_at_once(
            self,
            object_type: GraphQLObjectType,
            field_details_list: FieldDetailsList,
            position_context: Any,
        ) -> GroupedFieldSet | None:
            """The fields of an object's selection when they execute at once, as graphql-core's
            `execute_collected_subfields` executes them without `@defer` (no delivery group, no
            new defer usage); None otherwise, and when collecting them fails (graphql-core's
            `collect_and_execute_subfields` then raises it where it would)."""
            if position_context is not None or not self.executes_selections_at_once:
                return None
            try:
                grouped_field_set, new_defer_usages, _ = self.collect_subfields(
                    object_type, field_details_list
                )
            except Exception:
                return None
            return None if new_defer_usages else grouped_field_set

        async def gather_items(
            self, completed: list[Any], awaitable_indices: list[int]
        ) -> list[Any]:
            """As graphql-core's `complete_iterable_value` does for the items still awaited."""
            if len(awaitable_indices) == 1:
                index = awaitable_indices[0]
                completed[index] = await completed[index]
            else:
                awaited = await gather_with_cancel(*(completed[i] for i in awaitable_indices))
                for index, item in zip(awaitable_indices, awaited, strict=True):
                    completed[index] = item
            return completed

        def complete_read(
            self,
            plan: FieldPlan,
            parent_type: GraphQLObjectType,
            field_details_list: FieldDetailsList,
            path: Path,
            info: GraphQLResolveInfo[Any] | None,
            value: Any,
            position_context: Any,
        ) -> AwaitableOrValue[Any]:
            """What `execute_field` does with a resolver's value (graphql-core's completion,
            with an `Info`); raises what it would catch."""
            if info is None:
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
                return self.await_completed(completed, plan.type, field_details_list, path)
            return completed

        async def await_completed(
            self,
            completed: Awaitable[Any],
            return_type: GraphQLOutputType,
            field_details_list: FieldDetailsList,
            path: Path,
        ) -> Any:
            try:
                return await completed
            except Exception as raw_error:
                self.handle_field_error(raw_error, return_type, field_details_list, path)
                return None

    return ReadsPlainly
