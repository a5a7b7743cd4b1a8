"""Subscription events rendered once for everyone who shares them.

GraphQL runs a subscription's selection set once per event and subscriber. When a thousand
subscribers of one view receive the same alert, that is a thousand identical executions and
JSON encodings. An event that carries a `SharedEvent` is executed instead once per distinct
selection — the same document, operation and values of the variables the selection uses — in
the context the event carries (its view's, not each subscriber's), and every subscriber of that
selection is given the same result, whose data is JSON-encoded once (`EncodedData`). Who shares
an event is decided where it is made (resolvers/alert_feed.py): only subscribers to whom the
selection must answer the same.

Such a result can also reach its sockets without a task per subscriber: an operation that runs
where its socket offers to send at once (web/sockets.py) has a `DirectSend`, the operation's
`direct_send` while its task runs, through which the feed writes each subscriber's message around
the shared bytes itself, in one pass; what it cannot write so goes the usual way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    Node,
    VariableNode,
)
from graphql.execution import Executor
from graphql.pyutils import AwaitableOrValue

E = TypeVar("E", bound=Executor[Any])
T = TypeVar("T")


@dataclass(eq=False)
class SharedEvent:
    """What an event shared by many subscribers renders to, by selection (filled as they ask)."""

    # The context the selection runs in: the view's, the same for all who share the event.
    context: Any
    results: dict[Hashable, AwaitableOrValue[ExecutionResult]] = field(default_factory=dict)


class EncodedData(dict[str, Any]):
    """A result's `data`, JSON-encoded once for every socket it is sent to (web/sockets.py)."""

    _encoded: str | None = None
    _encoded_bytes: bytes | None = None

    def encoded(self) -> str:
        if self._encoded is None:
            self._encoded = json.dumps(self)
        return self._encoded

    def encoded_bytes(self) -> bytes:
        """The same encoding as UTF-8."""
        if self._encoded_bytes is None:
            self._encoded_bytes = self.encoded().encode()
        return self._encoded_bytes


class EventRenderer(Protocol):
    def render_event(self, payload: Any) -> AwaitableOrValue[ExecutionResult]:
        """What a per-event execution of the subscription answers for `payload`."""


class DirectSend:
    """How one operation's shared results reach its socket without the operation's task.

    `write` sends a result message around a shared encoding at once and says whether it could
    (not when the socket's buffer is full or it is closed, or the operation is over);
    `renderer` is the executor of the operation's subscription (graphql-core's, set when it
    subscribes), which renders an event as a per-event execution of it would."""

    __slots__ = ("renderer", "write")

    def __init__(self, write: Callable[[EncodedData], bool]) -> None:
        self.write = write
        self.renderer: EventRenderer | None = None

    def render(self, event: Any) -> AwaitableOrValue[ExecutionResult] | None:
        """The subscription's result for `event` (None before it subscribed)."""
        if self.renderer is None:
            return None
        return self.renderer.render_event(event)


# The DirectSend of the operation the current task runs, when its socket offers one.
direct_send: ContextVar[DirectSend | None] = ContextVar("carebill_direct_send", default=None)


def sendable(result: ExecutionResult) -> EncodedData | None:
    """A result's data when a message holds nothing else (no errors, no extensions)."""
    data = result.data
    if isinstance(data, EncodedData) and not result.errors and not result.extensions:
        return data
    return None


def _variables_in(node: Node, fragments: dict[str, Any], seen: set[str], found: set[str]) -> None:
    """The names of the variables `node` uses, fragments it spreads included."""
    if isinstance(node, VariableNode):
        found.add(node.name.value)
        return
    if isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
        seen.add(node.name.value)
        fragment = fragments.get(node.name.value)
        if fragment is not None:
            _variables_in(fragment, fragments, seen, found)
    for key in node.keys:
        value = getattr(node, key, None)
        children = value if isinstance(value, tuple | list) else (value,)
        for child in children:
            if isinstance(child, Node):
                _variables_in(child, fragments, seen, found)


def _selection_variables(executor: Executor[Any]) -> set[str]:
    """The variables the selection of each event uses: all of the operation's but those only
    the root field's arguments use (`after`, which only decides where the stream starts)."""
    fragments = dict(executor.fragment_definitions)
    found: set[str] = set()
    seen: set[str] = set()
    for selection in executor.operation.selection_set.selections:
        if not isinstance(selection, FieldNode):
            # A root fragment: its root fields' arguments are not told apart.
            _variables_in(selection, fragments, seen, found)
            continue
        for directive in selection.directives or ():
            _variables_in(directive, fragments, seen, found)
        if selection.selection_set is not None:
            _variables_in(selection.selection_set, fragments, seen, found)
    return found


def _selection_key(executor: Executor[Any]) -> Hashable:
    """What decides the rendering of one event: the operation's text and the variables its
    selection uses (an operation without a location is never shared)."""
    operation = executor.operation
    if operation.loc is None:
        return object()
    coerced = executor.variable_values.coerced
    values = tuple(
        (name, json.dumps(coerced.get(name), sort_keys=True, default=str))
        for name in sorted(_selection_variables(executor))
    )
    return (operation.loc.source.body, operation.loc.start, values)


def _encoded_once(result: ExecutionResult) -> ExecutionResult:
    if result.errors or not isinstance(result.data, dict):
        return result
    return ExecutionResult(EncodedData(result.data), None, result.extensions)


class _Rendered:
    """Stands for the per-event executor of a selection already rendered."""

    __slots__ = ("result",)

    def __init__(self, result: AwaitableOrValue[ExecutionResult]) -> None:
        self.result = result

    def execute_operation(self, serially: bool | None = None) -> AwaitableOrValue[ExecutionResult]:
        return self.result


def renders_shared_events(base: type[E]) -> type[E]:
    """An executor class like `base` that renders an event carrying a `SharedEvent` (as its
    `shared` attribute) once per distinct selection."""

    class RendersSharedEvents(base):  # type: ignore[valid-type,misc]
        _shared_key: Hashable | None = None

        def cancellable_iterable(self, iterable: AsyncIterable[T]) -> AsyncIterable[T]:
            # Called once, as graphql-core subscribes: the subscription's executor, which the
            # operation's DirectSend renders its events with.
            direct = direct_send.get()
            if direct is not None and direct.renderer is None:
                direct.renderer = self
            return super().cancellable_iterable(iterable)  # type: ignore[no-any-return]

        def render_event(self, payload: Any) -> AwaitableOrValue[ExecutionResult]:
            """As graphql-core's per-event execution; a shared event's rendering once made."""
            shared = getattr(payload, "shared", None)
            if self._shared_key is not None and isinstance(shared, SharedEvent):
                rendered = shared.results.get(self._shared_key)
                if rendered is not None:
                    return rendered
            executor = self.build_per_event_executor(payload)
            return cast(AwaitableOrValue[ExecutionResult], executor.execute_operation(False))

        def build_per_event_executor(self, payload: Any) -> Executor[Any]:
            shared = getattr(payload, "shared", None)
            if isinstance(shared, SharedEvent):
                if self._shared_key is None:
                    # Once per subscription: the per-event executors are copies of this one.
                    self._shared_key = _selection_key(self)
                rendered = shared.results.get(self._shared_key)
                if rendered is not None:  # no copy of this executor to make
                    return cast(Executor[Any], _Rendered(rendered))
            return super().build_per_event_executor(payload)  # type: ignore[no-any-return]

        def execute_operation(
            self, serially: bool | None = None
        ) -> AwaitableOrValue[ExecutionResult]:
            shared = getattr(self.root_value, "shared", None)
            if not isinstance(shared, SharedEvent) or self._shared_key is None:
                return super().execute_operation(serially)  # type: ignore[no-any-return]
            key = self._shared_key
            if key not in shared.results:
                self.context_value = shared.context
                result = super().execute_operation(serially)
                if self.is_awaitable(result):

                    async def encoded() -> ExecutionResult:
                        return _encoded_once(await result)

                    shared.results[key] = asyncio.ensure_future(encoded())
                else:
                    shared.results[key] = _encoded_once(result)
            return shared.results[key]

    return RendersSharedEvents
