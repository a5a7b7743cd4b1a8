"""The Starlette application: `/graphql` over HTTP and websocket, health checks, webhooks."""

from __future__ import annotations

import functools
import gc
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UnsetType

from adapters.http_limits import HttpLimits, RequestLimits
from adapters.notifier import build_notifier
from adapters.relay import Relay
from models.base import utcnow
from resolvers import exports
from resolvers.payments.reconciliation import Reconciler
from resolvers.root import build_schema
from resolvers.sessions import authenticate
from resolvers.unsubscribe import UNSUBSCRIBE_PATH, handle_unsubscribe
from resolvers.webhooks import handle_webhook
from schema.context import Context
from schema.services import Services
from settings import Settings
from web import graphiql, graphql_http
from web.cors import OriginPolicy
from web.sockets import AuthenticationUnavailable, LegacySocketHandler, TransportSocketHandler

log = logging.getLogger("carebill")
DATABASE_UNAVAILABLE = "The database is unavailable; try again shortly"
# The collector's thresholds in a serving process (Python's defaults: 700, 10, 10). A request
# keeps tens of thousands of objects alive until it is answered (rows, answer trees, tasks); at
# 700 the collector ran ~30 times a request, scanning each of them again and again, and a full
# collection (~175,000 objects once started) came every few requests. Cyclic garbage waits a
# little longer for its collection; nothing else changes. See bench/README.md, "Execution".
GC_THRESHOLDS = (50_000, 20, 100)
# Where an HTTP request's ASGI scope holds its context until the request is over.
_CONTEXT = "carebill.context"


@functools.cache  # once a process: a second app (the tests build many) adds nothing to freeze
def tune_garbage_collector() -> None:
    """What is alive after start-up (modules, the schema, the ORM's mappers) is frozen out of
    every later collection (`gc.freeze`), and the thresholds are raised."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class State(TypedDict):
    """What the lifespan returns: Starlette copies it into every request's `request.state`."""

    services: Services


def services_of(connection: HTTPConnection) -> Services:
    """The services of the lifespan serving this request or socket."""
    services: Services = connection.state.services
    return services


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def connection_token(params: object) -> str | None:
    """The token in a websocket `connection_init` payload: `{"Authorization": "Bearer <t>"}`,
    the key in any case; `authorization` or `token` may also hold the bare token."""
    if not isinstance(params, dict):
        return None
    for key, value in params.items():
        if str(key).lower() in ("authorization", "token") and isinstance(value, str):
            return bearer_token(value) or value.strip() or None
    return None


@dataclass
class SocketContext(Context):
    """A websocket's context, for the whole connection: strawberry fills `connection_params`
    from `connection_init`, then `on_ws_connect` authenticates it. Its operations take their
    own sessions: the socket outlives them and must not keep a connection."""

    connection_params: dict[str, Any] | None = None


class CareBillGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with our per-request context."""

    graphql_transport_ws_handler_class = TransportSocketHandler
    graphql_ws_handler_class = LegacySocketHandler

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            build_schema(settings),
            graphql_ide=None if settings.production else "graphiql",
            # Queries only (mutations over GET are refused with 405 in `execute_single`).
            allow_queries_via_get=True,
            keep_alive=True,
            keep_alive_interval=15,
            # A socket must authenticate soon: unauthenticated ones are closed (4408) after this.
            connection_init_wait_timeout=timedelta(seconds=10),
            allowed_origins=settings.allowed_origins,
        )
        self.origins = OriginPolicy.of(settings)

    def parse_json(self, data: str | bytes) -> Any:
        """A request body is one JSON object (an array, a batch, is refused next). Strawberry's
        own parser answers 500 to other JSON (a bare string) and to bodies that are not UTF-8
        or nest too deep; those are the client's mistakes: 400."""
        try:
            document = self.decode_json(data)
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
            raise HTTPException(400, "Unable to parse request body as JSON") from None
        if not isinstance(document, dict | list):
            raise HTTPException(400, "The request body must be a JSON object")
        return document

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL from CareBill's own assets (web/graphiql.py): it works offline."""
        return HTMLResponse(graphiql.PAGE)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        """The response headers an operation may set; the media type is the client's choice."""
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = graphql_http.response_media_type(request.headers.get("accept"))
        return sub_response

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Over GET, queries only (never a mutation: GET must stay safe for caches, prefetchers
        and links); any operation over POST. Subscriptions use the websocket."""
        get = request_adapter.method == "GET"
        allowed = {OperationType.QUERY} if get else {OperationType.QUERY, OperationType.MUTATION}
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason()) from exc
        except InvalidOperationTypeError as exc:
            if get:
                raise graphql_http.MethodNotAllowed(exc.as_http_error_reason("GET")) from exc
            raise HTTPException(400, exc.as_http_error_reason(request_adapter.method)) from exc
        except MissingQueryError as exc:
            raise HTTPException(400, "No GraphQL query found in the request") from exc
        finally:
            # Also when the operation failed or was cancelled (the client went away).
            await context.close()

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """`application/graphql-response+json` has no `data` entry when nothing was executed.
        An unexpected error while the database is down (a login, say, needs it without a token
        to authenticate first) is a 503 the client may retry, as /readyz says."""
        masked = any(
            (error.extensions or {}).get("code") == "INTERNAL_SERVER_ERROR"
            for error in result.errors or ()
        )
        if masked and not await services_of(request).db.ping():
            raise HTTPException(503, DATABASE_UNAVAILABLE)
        body = await super().process_result(request, result)
        media_type = graphql_http.response_media_type(request.headers.get("accept"))
        if media_type == graphql_http.GRAPHQL_RESPONSE_JSON and graphql_http.is_request_error(
            result
        ):
            body.pop("data", None)
        return body

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        media_type = sub_response.media_type or graphql_http.JSON
        response.headers["content-type"] = f"{media_type}; charset=utf-8"
        if isinstance(response_data, dict) and not sub_response.status_code:
            response.status_code = graphql_http.status_code(media_type, dict(response_data))
        # A GET answer depends on who asks and in which media type: caches must key on both.
        response.headers["vary"] = "Accept, Authorization"
        return response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except graphql_http.MethodNotAllowed as exc:
            response = PlainTextResponse(exc.reason, 405, headers={"Allow": "POST"})
        except HTTPException as exc:
            response = PlainTextResponse(exc.reason, status_code=exc.status_code)
        finally:
            # `execute_single` gives the read connection back when the operation ends; a request
            # refused before it runs (a body that is not JSON, a bad token's 503) does so here.
            context: Context | None = scope.pop(_CONTEXT, None)
            if context is not None:
                await context.close()
        await response(scope, receive, send)

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        """Cross-origin browser sockets (strawberry always lets same-origin and non-browser
        ones through) follow the same policy as CORS (web/cors.py)."""
        return self.origins.allows(origin)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """connection_init: a socket without a valid token gets nothing (closed with 4403)."""
        if not await self.authenticate_socket(context):
            raise ConnectionRejectionError({"message": "a valid bearer token is required"})
        return UnsetType()  # the singleton UNSET: acknowledge without a payload

    async def authenticate_socket(self, context: Context) -> bool:
        """Authenticate a websocket from its connection_init payload (or, for non-browser
        clients, its handshake's Authorization header)."""
        if context.viewer is None:
            token = connection_token(getattr(context, "connection_params", None)) or context.token
            context.token = token
            try:
                viewer = await authenticate(context.services, token)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("websocket authentication failed: the database is unavailable: %s", exc)
                raise AuthenticationUnavailable from exc
            context.act_as(viewer)
        return context.viewer is not None

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        services = services_of(request)
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        token = bearer_token(request.headers.get("authorization"))
        if isinstance(request, WebSocket):
            # Authenticated once the client sends connection_init (`on_ws_connect`).
            return SocketContext(
                services=services,
                viewer=None,
                request_id=request_id[:64],
                token=token,
                request=request,
                response=response,
            )
        context = Context(
            services=services,
            viewer=None,
            request_id=request_id[:64],
            token=token,
            request=request,
            response=response,
            shares_connection=True,
        )
        # Given back when the request ends, however it ends (`__call__`): the token is checked
        # on the request's one read connection, which the operation then reads through.
        request.scope[_CONTEXT] = context
        if token:
            try:
                context.act_as(await authenticate(services, token, context.db))
            except (SQLAlchemyError, OSError):
                # The database is down (as /readyz says): a 503 the client may retry, not a 500.
                log.exception("request %s: the database is unavailable", request_id[:64])
                raise HTTPException(503, DATABASE_UNAVAILABLE) from None
        return context


def http_limits(settings: Settings) -> HttpLimits:
    """Body limits by path (docs/limits.md): /graphql, the processors' webhooks, the rest."""

    def body_limit_for(path: str) -> int:
        if path == "/graphql":
            return settings.max_body_bytes
        if path.startswith("/webhooks/"):
            return settings.max_webhook_body_bytes
        return min(settings.max_body_bytes, settings.max_webhook_body_bytes)

    return HttpLimits(
        body_limit_for=body_limit_for,
        body_timeout_seconds=settings.body_timeout_seconds,
        max_in_flight=settings.max_concurrent_requests,
    )


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], datetime] = utcnow
) -> Starlette:
    """The application; `clock` is the time its rules see (tests move it on, never sleep)."""
    settings = settings or Settings.from_env()
    graphql = CareBillGraphQL(settings)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[State]:
        services = Services.build(settings, clock=clock)
        # The alert outbox: the relay publishes committed alerts through the broker, whose
        # doorbells wake this process's subscriptions.
        broker = services.alerts.broker
        await broker.start()
        relay = Relay(services.db, broker)
        relay.start()
        # Reminders and notification email (docs/notifications.md), in one process at a time.
        notifier = build_notifier(settings, services.db, services.vault)
        notifier.start()
        # Unresolved money moves are looked up at the processor now and then (one process
        # at a time, see resolvers/payments/reconciliation.py).
        reconciler = Reconciler(services, settings.reconcile_interval_seconds)
        reconciler.start()
        tune_garbage_collector()
        try:
            yield {"services": services}
        finally:
            await reconciler.stop()
            await notifier.stop()
            await relay.stop()
            await broker.close()
            await services.processors.aclose()
            await services.db.dispose()

    async def healthz(request: Request) -> JSONResponse:
        subscribers = services_of(request).alerts.live
        return JSONResponse({"status": "ok", "alertSubscribers": subscribers})

    async def readyz(request: Request) -> JSONResponse:
        ok = await services_of(request).db.ping()
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "database": ok},
            status_code=200 if ok else 503,
        )

    async def webhook(request: Request) -> JSONResponse:
        """A payment processor's event (see resolvers/webhooks.py)."""
        answer = await handle_webhook(
            services_of(request),
            request.path_params["processor_type"],
            request.path_params["processor_id"],
            await request.body(),
            request.headers,
        )
        return JSONResponse(answer.body, status_code=answer.status)

    async def export(request: Request) -> Response:
        """A CSV export (see resolvers/exports.py) for the viewer of the bearer token."""
        handler = exports.HANDLERS.get(request.path_params["name"])
        if handler is None:
            return JSONResponse({"error": "no such export"}, status_code=404)
        services = services_of(request)
        token = bearer_token(request.headers.get("authorization"))
        try:
            viewer = await authenticate(services, token)
            # Before the first row is sent: the client may retry, as /readyz tells.
            return await handler(services, viewer, request)
        except (SQLAlchemyError, OSError):
            log.exception("export: the database is unavailable")
            return JSONResponse({"status": "unavailable"}, status_code=503)

    async def unsubscribe(request: Request) -> Response:
        """An email's unsubscribe link (see resolvers/unsubscribe.py); no sign-in needed."""
        return await handle_unsubscribe(services_of(request), request)

    routes: list[Any] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/webhooks/{processor_type}/{processor_id}", webhook, methods=["POST"]),
        Route("/exports/{name}", export),
        Route(UNSUBSCRIBE_PATH, unsubscribe, methods=["GET", "POST"]),
    ]
    if not settings.production:
        routes.append(graphiql.assets())
    limits = Middleware(RequestLimits, http_limits(settings))
    middleware = [graphql.origins.middleware(), limits]
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
