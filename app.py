"""The Starlette application: `/graphql` over HTTP and websocket, health checks, webhooks."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from adapters.crypto import Vault
from adapters.database import Database
from resolvers.context import Context, Services
from resolvers.payments import close_payment_processors, install_payment_processors
from resolvers.sessions import authenticate
from resolvers.webhooks import handle_webhook
from schema.root import build_schema
from settings import Settings

log = logging.getLogger("carebill")


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class CareBillGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with our per-request context."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            build_schema(settings),
            graphql_ide=None if settings.production else "graphiql",
            allow_queries_via_get=False,
            keep_alive=True,
            keep_alive_interval=15,
            allowed_origins=settings.allowed_origins,
        )
        # Set by the app's lifespan: nothing connects before the server starts.
        self.services: Services | None = None

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        services = self.services
        if services is None:
            raise RuntimeError("the application's lifespan has not started")
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        token = bearer_token(request.headers.get("authorization"))
        viewer = await authenticate(services, token) if token else None
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
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        services = Services(settings=settings, db=db, vault=Vault(settings.secret_key))
        app.state.services = graphql.services = services
        install_payment_processors(services)
        try:
            yield
        finally:
            graphql.services = None
            await close_payment_processors(services)
            await db.dispose()

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> JSONResponse:
        services = graphql.services
        ok = services is not None and await services.db.ping()
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "database": ok},
            status_code=200 if ok else 503,
        )

    async def webhook(request: Request) -> JSONResponse:
        """A payment processor's event (see resolvers/webhooks.py)."""
        services = graphql.services
        if services is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        answer = await handle_webhook(
            services,
            request.path_params["processor_type"],
            request.path_params["processor_id"],
            await request.body(),
            request.headers,
        )
        return JSONResponse(answer.body, status_code=answer.status)

    routes: list[Any] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/webhooks/{processor_type}/{processor_id}", webhook, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
