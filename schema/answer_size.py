"""A cap on the size of an answer being built: every list item the executor completes counts
against the request's budget, and past it the list is answered with a `QUERY_TOO_COMPLEX`
error instead of more rows. The static cost limit (`schema.query_cost`) prices lists without a
`first` at a nominal size; this cap bounds what they really hold. The lists that
schema/execution.py completes itself are counted alike (`count_list_items`)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Sized
from typing import Any

from graphql import GraphQLError, GraphQLList, GraphQLOutputType, GraphQLResolveInfo
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


def answer_size_limited(
    base: type[StrawberryGraphQLCoreExecutionContext], max_items: int
) -> type[StrawberryGraphQLCoreExecutionContext]:
    """An execution context class like `base` whose answers hold at most `max_items` list
    items."""

    class AnswerSizeLimited(base):  # type: ignore[valid-type,misc]
        answer_items = 0

        def count_answer_items(self, items: Sized) -> None:
            """Counts a list's items against the budget."""
            self.answer_items += len(items)
            if self.answer_items > max_items:
                raise GraphQLError(
                    f"The answer would hold more than {max_items} list items; ask for"
                    " smaller pages",
                    extensions={
                        "code": "QUERY_TOO_COMPLEX",
                        "limit": "answerItems",
                        "maximum": max_items,
                        "value": self.answer_items,
                    },
                )

        # The hook schema/execution.py calls for the lists it completes itself, when this class
        # is above it (below it, its lists are graphql-core's, counted here).
        count_list_items = count_answer_items

        def complete_list_value(
            self,
            return_type: GraphQLList[GraphQLOutputType],
            field_details_list: FieldDetailsList,
            info: GraphQLResolveInfo[Any],
            path: Path,
            result: AsyncIterable[Any] | Iterable[Any],
            position_context: Any,
        ) -> AwaitableOrValue[list[Any]]:
            if isinstance(result, Sized):
                self.count_answer_items(result)
            return super().complete_list_value(  # type: ignore[no-any-return]
                return_type, field_details_list, info, path, result, position_context
            )

    return AnswerSizeLimited
