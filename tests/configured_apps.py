"""`client_of(**settings)`: httpx clients of apps configured differently from the suite's,
on the test database, each with its lifespan started and stopped around the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app import create_app
from settings import Settings
from tests.asgi import running


@pytest.fixture
async def client_of(settings: Settings) -> AsyncIterator[Any]:
    stack: list[Any] = []

    async def make(**overrides: Any) -> httpx.AsyncClient:
        values: dict[str, Any] = {
            "database_url": settings.database_url,
            "secret_key": settings.secret_key,
        }
        values.update(overrides)
        lifespan = running(create_app(Settings(**values)))
        served = await lifespan.__aenter__()
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=served.app), base_url="http://carebill.test"
        )
        stack.append((lifespan, http))
        return http

    yield make
    for lifespan, http in reversed(stack):
        await http.aclose()
        await lifespan.__aexit__(None, None, None)
