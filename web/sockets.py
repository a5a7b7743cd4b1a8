"""The websocket protocols' handlers: `graphql-transport-ws` and the legacy `graphql-ws`
(subscriptions-transport-ws, which Python's `gql` and older Apollo clients speak).

Both close a socket whose token is not a valid session with 4403, and one whose token could not
be checked (the database is busy or down) with 1013 "try again later": a client logs its user
out on 4403, and must not for a passing failure. The legacy protocol carries every operation,
not only subscriptions.

Each operation's task runs with a `DirectSend` (schema/shared_events.py) when the server offers
to send at once (adapters/http_server.py, `PUSH`): the alert feed then writes the operation's
`next` (legacy: `data`) messages itself, built around the shared encoding, with no await and no
result passing through strawberry's stream — while the operation is live, and for results that
hold data only, which strawberry's per-result hooks leave as they are."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, Protocol, cast
from weakref import WeakKeyDictionary

from graphql import GraphQLError, GraphQLFormattedError, get_operation_ast, parse
from starlette.websockets import WebSocketDisconnect
from strawberry import Schema
from strawberry.extensions import SchemaExtension
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage as TransportInitMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    CompleteMessage,
    ConnectionInitMessage,
    ErrorMessage,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError

from adapters.http_server import PUSH, Push
from schema.shared_events import DirectSend, EncodedData, direct_send

TRY_AGAIN_LATER = 1013  # RFC 6455's registry: "Try Again Later"


class AuthenticationUnavailable(Exception):
    """The token could not be checked: the database is busy or down."""


def _names_no_operation(query: str, operation_name: str | None) -> bool:
    """A document that parses but holds no operation to run (only fragments, or not the one
    named): strawberry would fail on it with an internal error. Parse errors are left to the
    schema, which reports them with their locations."""
    try:
        document = parse(query)
    except GraphQLError:
        return False
    return get_operation_ast(document, operation_name) is None


class SocketAuthenticator(Protocol):
    async def authenticate_socket(self, context: Any) -> bool:
        """Whether the connection_init payload holds a valid session's token; raises
        AuthenticationUnavailable when that cannot be told now."""


def _is_message(message: object) -> bool:
    """A protocol message: a JSON object with a string `type`. Strawberry's handlers raise
    inside on anything else (`[]`, `5`): a logged traceback and a dropped socket."""
    return isinstance(message, dict) and isinstance(message.get("type"), str)


NOT_A_MESSAGE = "WebSocket message must be a JSON object"


def _preencoded_frame(message: Mapping[str, Any]) -> str | None:
    """A result message (`next`, legacy `data`) whose data was JSON-encoded once for all its
    subscribers (an object with `encoded()`, see schema/shared_events.py), as a frame built
    around those bytes; None for any other message."""
    kind = message.get("type")
    if kind not in ("next", "data"):
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict) or len(payload) != 1:
        return None
    encoded = getattr(payload.get("data"), "encoded", None)
    if encoded is None:
        return None
    return f'{{"id":{json.dumps(message["id"])},"type":"{kind}","payload":{{"data":{encoded()}}}}}'


async def _send(websocket: Any, message: Mapping[str, Any]) -> None:
    """Send `message` over strawberry's socket adapter, a shared encoding as it is."""
    frame = _preencoded_frame(message)
    if frame is None:
        await websocket.send_json(message)
        return
    try:
        await websocket.ws.send_text(frame)  # strawberry's ASGIWebSocketAdapter
    except WebSocketDisconnect as exc:
        raise WebSocketDisconnected from exc


_plain: WeakKeyDictionary[Schema, bool] = WeakKeyDictionary()


def _results_plain(schema: object) -> bool:
    """No extension of the schema adds to a result (`get_results`): strawberry would send a
    result without errors exactly as its data."""
    if not isinstance(schema, Schema):
        return False
    plain = _plain.get(schema)
    if plain is None:
        plain = _plain[schema] = all(
            type(extension).get_results is SchemaExtension.get_results
            for extension in schema.get_extensions()
        )
    return plain


class _ResultFrames:
    """Writes one operation's result messages around shared encodings through the socket's
    push, while the operation is live: still `owner` of its id in its handler's `registry`
    (not completed, stopped, or replaced by a new operation of the same id)."""

    __slots__ = ("head", "key", "owner", "push", "registry")

    def __init__(self, push: Push, operation_id: str, kind: str, registry: Mapping[str, object]):
        self.push = push
        self.head = (
            f'{{"id":{json.dumps(operation_id)},"type":"{kind}","payload":{{"data":'.encode()
        )
        self.key = operation_id
        self.registry = registry
        self.owner: object = None

    def __call__(self, data: EncodedData) -> bool:
        if self.owner is None or self.registry.get(self.key) is not self.owner:
            return False
        return self.push(b"".join((self.head, data.encoded_bytes(), b"}}")))


def _direct_send(
    handler: Any, operation_id: str, kind: str, registry: Mapping[str, object]
) -> DirectSend | None:
    """A DirectSend for an operation, when its socket offers `PUSH` (its frames' owner is set
    once the operation is registered)."""
    extensions = handler.websocket.ws.scope.get("extensions") or {}
    push: Push | None = extensions.get(PUSH)
    if push is None or not _results_plain(handler.schema):
        return None
    return DirectSend(_ResultFrames(push, operation_id, kind, registry))


def _forget_headers(websocket: Any) -> None:
    """The handshake's headers are read by now (the origin, the token, the request id, in
    get_context): a socket open for hours need not keep them."""
    headers = websocket.ws.scope.get("headers")
    if isinstance(headers, list):
        headers.clear()  # in place: the starlette WebSocket's `headers` see the same list


class TransportSocketHandler(BaseGraphQLTransportWSHandler[Any, None]):
    async def send_message(self, message: Any) -> None:
        await _send(self.websocket, message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        # The operation's task, made in there, starts with a copy of this context: its
        # results may be written to the socket directly.
        operation_id = message.get("id")
        direct = None
        if isinstance(operation_id, str) and operation_id not in self.operations:
            direct = _direct_send(self, operation_id, "next", self.operations)
        token = direct_send.set(direct)
        try:
            await super().handle_subscribe(message)
        finally:
            direct_send.reset(token)
        if direct is not None:
            frames = cast(_ResultFrames, direct.write)
            frames.owner = self.operations.get(frames.key)

    async def handle_message(self, message: Any) -> None:
        if not _is_message(message):
            await self.handle_invalid_message(NOT_A_MESSAGE)  # closes with 4400
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: TransportInitMessage) -> None:
        _forget_headers(self.websocket)
        try:
            await super().handle_connection_init(message)
        except AuthenticationUnavailable:
            await self.websocket.close(code=TRY_AGAIN_LATER, reason="Try again later")


class LegacySocketHandler(BaseGraphQLWSHandler[Any, None]):
    async def send_message(self, message: Any) -> None:
        await _send(self.websocket, message)

    async def handle_message(self, message: Any) -> None:
        if not _is_message(message):
            await self.websocket.close(code=4400, reason=NOT_A_MESSAGE)
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        """Refuse a bad token with 4403 (as graphql-transport-ws does), not with strawberry's
        1011, which clients read as a server error and retry."""
        _forget_headers(self.websocket)
        payload = message.get("payload")
        view: Any = self.view
        if hasattr(view, "authenticate_socket") and (payload is None or isinstance(payload, dict)):
            self.context.connection_params = payload
            authenticator: SocketAuthenticator = view
            try:
                valid = await authenticator.authenticate_socket(self.context)
            except AuthenticationUnavailable:
                await self.send_message({"type": "connection_error", "payload": {}})
                await self.websocket.close(code=TRY_AGAIN_LATER, reason="Try again later")
                return
            if not valid:
                await self.send_message({"type": "connection_error", "payload": {}})
                await self.websocket.close(code=4403, reason="Forbidden")
                return
        await super().handle_connection_init(message)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        """Queries and mutations too, not only subscriptions: strawberry's handler subscribes to
        whatever comes, and a query fails as an internal error. `schema.stream` runs each
        operation as its type requires (one `data` message for a query or mutation), then
        `complete`; an operation refused before execution gets one `error` message."""
        try:
            if _names_no_operation(query, operation_name):
                error: GraphQLFormattedError = {
                    "message": "The document holds no operation to run (or not the one named)",
                    "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
                }
                await self.send_message(ErrorMessage(type="error", id=operation_id, payload=error))
                return
            results = await self.schema.stream(
                query,
                variable_values=variables,
                context_value=self.context,
                root_value=self.root_value,
                operation_name=operation_name,
            )
            self.subscriptions[operation_id] = results
            first = True
            async for result in results:
                if first and isinstance(result, PreExecutionError):
                    assert result.errors
                    await self.send_message(
                        ErrorMessage(
                            type="error", id=operation_id, payload=result.errors[0].formatted
                        )
                    )
                    return
                first = False
                if isinstance(result, ExecutionResult):
                    await self.send_data_message(result, operation_id)
            await self.send_message(CompleteMessage(type="complete", id=operation_id))
        except asyncio.CancelledError:
            await self.send_message(CompleteMessage(type="complete", id=operation_id))
        finally:
            self.subscriptions.pop(operation_id, None)
            self.tasks.pop(operation_id, None)
