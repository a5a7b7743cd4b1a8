"""Static analysis of a GraphQL document before it is validated or executed: its depth, its
aliases, its size once every fragment is expanded, and its cost (page sizes multiply).

Every figure is computed in one pass over the document that memoises each fragment's summary,
so the time is linear in the document's size however often fragments spread each other (a
chain of fragments each spreading the previous one twice expands to 2^n fields in n lines).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from graphql.type.definition import GraphQLInterfaceType, GraphQLObjectType


@dataclass(frozen=True)
class CostModel:
    """How a document is priced: one unit per field, times the size of every list around it."""

    default_page_size: int
    max_page_size: int
    # The size assumed for a list without a `first` argument (an invoice's payments, history…).
    nominal_list_size: int


@dataclass
class Summary:
    """What a selection set amounts to once its fragments are expanded."""

    fields: int = 0  # field selections after expansion
    depth: int = 0  # nested field levels below this selection set (a leaf field counts 1)
    aliases: int = 0
    cost: int = 0
    # The most selections sharing one response key in one selection set, once expanded.
    duplicates: int = 0
    # How often each response key occurs at this level (fragments and inline fragments
    # selected here add theirs): graphql-core compares every pair of them.
    keys: Counter[str] = field(default_factory=Counter)

    def add(self, other: Summary) -> None:
        self.fields += other.fields
        self.depth = max(self.depth, other.depth)
        self.aliases += other.aliases
        self.cost += other.cost
        self.duplicates = max(self.duplicates, other.duplicates)
        self.keys.update(other.keys)


@dataclass
class Analysis:
    """The figures of the document's heaviest operation and how much work finding them took."""

    fields: int = 0
    depth: int = 0
    aliases: int = 0
    cost: int = 0
    duplicates: int = 0
    # Selections visited: a fragment is visited once, however often it is spread.
    work: int = 0
    # The variables a `first:` reads: the only ones the figures depend on (with the document).
    priced_variables: tuple[str, ...] = ()


@dataclass
class _Walker:
    schema: GraphQLSchema
    model: CostModel
    variables: Mapping[str, Any]
    fragments: dict[str, FragmentDefinitionNode]
    memo: dict[str, Summary] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)
    work: int = 0
    read: dict[str, None] = field(default_factory=dict)  # variables read, in order

    def fragment(self, name: str) -> Summary:
        known = self.memo.get(name)
        if known is not None:
            return known
        definition = self.fragments.get(name)
        if definition is None or name in self.active:
            # Unknown fragments and cycles are standard validation errors, reported later.
            return Summary()
        self.active.add(name)
        parent = self.schema.get_type(definition.type_condition.name.value)
        summary = self.selections(definition.selection_set, parent)
        self.active.discard(name)
        self.memo[name] = summary
        return summary

    def selections(self, selection_set: SelectionSetNode, parent: Any) -> Summary:
        total = Summary()
        for selection in selection_set.selections:
            self.work += 1
            if isinstance(selection, FieldNode):
                total.add(self.field(selection, parent))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                total.add(self.selections(selection.selection_set, inner))
            elif isinstance(selection, FragmentSpreadNode):
                total.add(self.fragment(selection.name.value))
        if total.keys:
            total.duplicates = max(total.duplicates, max(total.keys.values()))
        return total

    def field(self, node: FieldNode, parent: Any) -> Summary:
        definition = _field_definition(parent, node.name.value)
        child_type: GraphQLNamedType | None = None
        if definition is not None:
            child_type = get_named_type(definition.type)
        inner = Summary()
        if node.selection_set is not None:
            inner = self.selections(node.selection_set, child_type)
        multiplier = self.multiplier(node, parent, definition)
        key = (node.alias or node.name).value
        return Summary(
            fields=1 + inner.fields,
            # Introspection is bounded by the schema itself; GraphiQL's query nests deeply.
            depth=0 if node.name.value.startswith("__") else 1 + inner.depth,
            aliases=(1 if node.alias is not None else 0) + inner.aliases,
            cost=1 + multiplier * inner.cost,
            duplicates=inner.duplicates,
            keys=Counter({key: 1}),
        )

    def multiplier(self, node: FieldNode, parent: Any, definition: GraphQLField | None) -> int:
        """How many times the field's selection may be answered: its page size for a paged
        connection; the nominal size for another list (a connection's `edges` are already
        counted by the connection's page size, introspection's by the schema's own size)."""
        if definition is None:
            return 1
        if "first" in definition.args:
            return self.page_size(node)
        if not _is_list(definition.type):
            return 1
        parent_name = getattr(parent, "name", "")
        if parent_name.endswith("Connection") or parent_name.startswith("__"):
            return 1
        return self.model.nominal_list_size

    def page_size(self, node: FieldNode) -> int:
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            value: int | None = None
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                name = argument.value.name.value
                self.read[name] = None
                value = page_value(self.variables.get(name))
            if value is not None:
                # Beyond the maximum the resolver refuses the page: it costs nothing more.
                return max(0, min(value, self.model.max_page_size))
        return self.model.default_page_size


def page_value(value: object) -> int | None:
    """A variable's value as the page size it asks for; None (the default size) when it is not
    an integer: such a variable fails to coerce before anything is executed."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _field_definition(parent: Any, name: str) -> GraphQLField | None:
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        definition: GraphQLField | None = parent.fields.get(name)
        return definition
    return None


def _is_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def analyse(
    document: DocumentNode,
    schema: GraphQLSchema,
    model: CostModel,
    variables: Mapping[str, Any] | None = None,
) -> Analysis:
    """The largest figures over the document's operations (raises RecursionError on a
    document nested deeper than Python's stack, which the caller refuses as too complex)."""
    fragments: dict[str, FragmentDefinitionNode] = {}
    operations: list[OperationDefinitionNode] = []
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments.setdefault(definition.name.value, definition)
        elif isinstance(definition, OperationDefinitionNode):
            operations.append(definition)
    walker = _Walker(schema, model, variables or {}, fragments)
    result = Analysis()
    roots = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }
    for operation in operations:
        summary = walker.selections(operation.selection_set, roots.get(operation.operation))
        result.fields = max(result.fields, summary.fields)
        # Root fields are at depth 0, as strawberry's depth limiter counted them.
        result.depth = max(result.depth, summary.depth - 1)
        result.aliases = max(result.aliases, summary.aliases)
        result.cost = max(result.cost, summary.cost)
        result.duplicates = max(result.duplicates, summary.duplicates)
    for name in fragments:
        # Unused fragments are refused by standard validation, which would walk them first.
        summary = walker.fragment(name)
        result.fields = max(result.fields, summary.fields)
        result.duplicates = max(result.duplicates, summary.duplicates)
    result.work = walker.work
    result.priced_variables = tuple(walker.read)
    return result
