"""The query limits, checked before graphql-core's standard validation: one linear pass over
the document (`schema.query_cost`) refuses documents too deep, too aliased, too large once
fragments are expanded, or too costly, with a top-level `QUERY_TOO_COMPLEX` error naming the
limit. Only documents within every limit reach the standard rules, some of which
(OverlappingFieldsCanBeMerged) take time quadratic in the expanded size."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from graphql import DocumentNode, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from schema.documents import DocumentCache
from schema.pagination import DEFAULT_PAGE_SIZE
from schema.query_cost import Analysis, CostModel, analyse
from settings import Settings

TOO_COMPLEX = "QUERY_TOO_COMPLEX"


@dataclass(frozen=True)
class QueryLimits:
    max_depth: int
    max_aliases: int
    max_fields: int
    max_cost: int
    max_duplicates: int
    cost_model: CostModel


def query_limits(settings: Settings) -> QueryLimits:
    return QueryLimits(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_fields=settings.max_query_fields,
        max_cost=settings.max_query_cost,
        max_duplicates=settings.max_duplicate_fields,
        cost_model=CostModel(
            default_page_size=min(DEFAULT_PAGE_SIZE, settings.max_page_size),
            max_page_size=settings.max_page_size,
            nominal_list_size=settings.nominal_list_size,
        ),
    )


def too_complex(message: str, limit: str, maximum: int, value: int) -> GraphQLError:
    return GraphQLError(
        message,
        extensions={"code": TOO_COMPLEX, "limit": limit, "maximum": maximum, "value": value},
    )


def refusal(analysis: Analysis, limits: QueryLimits) -> GraphQLError | None:
    """The first limit the analysed document exceeds, as the error the client gets."""
    checks = (
        (
            "fields",
            analysis.fields,
            limits.max_fields,
            "The query selects {value} fields once its fragments are expanded,"
            " more than the limit of {limit}",
        ),
        (
            "duplicates",
            analysis.duplicates,
            limits.max_duplicates,
            "The query selects one field {value} times in one place, more than"
            " the limit of {limit}",
        ),
        (
            "depth",
            analysis.depth,
            limits.max_depth,
            "The query exceeds maximum operation depth of {limit} (its depth is {value})",
        ),
        (
            "aliases",
            analysis.aliases,
            limits.max_aliases,
            "{value} aliases found. Allowed: {limit}",
        ),
        (
            "cost",
            analysis.cost,
            limits.max_cost,
            "The query's cost is {value}, more than the limit of {limit}"
            " (each field costs 1, multiplied by the page size of every list around it)",
        ),
    )
    for name, value, limit, message in checks:
        if value > limit:
            return too_complex(message.format(value=value, limit=limit), name, limit, value)
    return None


class QueryGuard(SchemaExtension):
    """Refuses a document over a limit before the standard validation rules see it. A kept
    document's figures (schema/documents.py) are found again rather than recomputed."""

    def __init__(self, *, limits: QueryLimits, documents: DocumentCache | None = None) -> None:
        self.limits = limits
        self.documents = documents

    def analysis(self, context: ExecutionContext, document: DocumentNode) -> Analysis:
        facts = self.documents.facts(context) if self.documents is not None else None
        known = facts.analysis(context.variables) if facts is not None else None
        if known is not None:
            return known
        model = self.limits.cost_model
        analysis = analyse(document, context.schema._schema, model, context.variables)
        if facts is not None:
            facts.keep_analysis(context.variables, analysis)
        return analysis

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            try:
                analysis = self.analysis(context, document)
            except RecursionError:
                error: GraphQLError | None = too_complex(
                    "The query nests deeper than the server can analyse",
                    "depth",
                    self.limits.max_depth,
                    self.limits.max_depth + 1,
                )
            else:
                error = refusal(analysis, self.limits)
            if error is not None:
                # Set before the standard validation runs, these errors stand in for its own.
                context.pre_execution_errors = [error]
        yield
