"""The Starlette application: `/graphql` over HTTP and websocket, health checks, webhooks."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypedDict
from urllib.parse import urlsplit

from cross_web import HTTPException
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.websocket_origin import normalize_origin
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import ConnectionInitMessage
from strawberry.types.unset import UnsetType

from adapters.relay import Relay
from resolvers import exports
from resolvers.root import build_schema
from resolvers.sessions import authenticate
from resolvers.webhooks import handle_webhook
from schema.context import Context
from schema.services import Services
from settings import Settings

log = logging.getLogger("carebill")


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
    from `connection_init`, then `on_ws_connect` authenticates it."""

    connection_params: dict[str, Any] | None = None


class LegacySocketHandler(BaseGraphQLWSHandler[Context, None]):
    """Legacy `graphql-ws`: refuse a bad token with 4403 (as graphql-transport-ws does), not
    with strawberry's 1011, which clients read as a server error and retry."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        payload = message.get("payload")
        view = self.view
        if isinstance(view, CareBillGraphQL) and (payload is None or isinstance(payload, dict)):
            self.context.connection_params = payload  # type: ignore[attr-defined]
            if not await view.authenticate_socket(self.context):
                await self.send_message({"type": "connection_error", "payload": {}})
                await self.websocket.close(code=4403, reason="Forbidden")
                return
        await super().handle_connection_init(message)


class CareBillGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with our per-request context."""

    graphql_ws_handler_class = LegacySocketHandler

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            build_schema(settings),
            graphql_ide=None if settings.production else "graphiql",
            allow_queries_via_get=False,
            keep_alive=True,
            keep_alive_interval=15,
            # A socket must authenticate soon: unauthenticated ones are closed (4408) after this.
            connection_init_wait_timeout=timedelta(seconds=10),
            allowed_origins=settings.allowed_origins,
        )
        # No origins configured, in development: a front end's dev server on this machine.
        self.local_origins_allowed = not settings.allowed_origins and not settings.production

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

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        """Cross-origin browser sockets (strawberry always lets same-origin and non-browser
        ones through): those of CAREBILL_ALLOWED_ORIGINS; with none configured, in development
        only, pages served from this machine on any port; in production, none."""
        if not self.local_origins_allowed:
            return super().is_websocket_origin_allowed(request, origin)
        normalized = normalize_origin(origin)
        host = urlsplit(normalized).hostname if normalized else None
        return host in ("localhost", "127.0.0.1", "::1")

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
            context.act_as(await authenticate(context.services, token))
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
        try:
            viewer = await authenticate(services, token) if token else None
        except (SQLAlchemyError, OSError):
            # The database is down (as /readyz says): a 503 the client may retry, not a bare 500.
            log.exception("request %s: the database is unavailable", request_id[:64])
            raise HTTPException(503, "The database is unavailable; try again shortly") from None
        return Context(
            services=services,
            viewer=viewer,
            request_id=request_id[:64],
            token=token,
            request=request,
            response=response,
        )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    graphql = CareBillGraphQL(settings)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[State]:
        services = Services.build(settings)
        # The alert outbox: the relay publishes committed alerts through the broker, whose
        # doorbells wake this process's subscriptions.
        broker = services.alerts.broker
        await broker.start()
        relay = Relay(services.db, broker)
        relay.start()
        try:
            yield {"services": services}
        finally:
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
        return await handler(services, await authenticate(services, token), request)

    routes: list[Any] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/webhooks/{processor_type}/{processor_id}", webhook, methods=["POST"]),
        Route("/exports/{name}", export),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
