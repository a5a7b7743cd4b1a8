"""The app in-process, as an ASGI server runs it: its lifespan started, and the state that
lifespan returns handed to every request (a copy each, as uvicorn does)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from schema.services import Services


@dataclass(frozen=True)
class Running:
    app: ASGIApp
    services: Services


@asynccontextmanager
async def running(application: Starlette) -> AsyncIterator[Running]:
    async with application.router.lifespan_context(application) as state:
        assert state is not None, "the app's lifespan returns its state"

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await application({**scope, "state": dict(state)}, receive, send)

        yield Running(app=app, services=state["services"])
