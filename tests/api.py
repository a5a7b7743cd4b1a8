"""A GraphQL client for the tests, speaking to the real ASGI app over httpx."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class GraphQLErrorResponse(AssertionError):
    """The response had top-level errors where the test expected none."""


@dataclass
class Api:
    http: httpx.AsyncClient

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """The whole response body (data and errors) of one operation."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, (response.status_code, response.text)
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """`data` of an operation that must succeed without top-level errors."""
        body = await self.post(query, variables, token)
        if body.get("errors"):
            raise GraphQLErrorResponse(body["errors"])
        data: dict[str, Any] = body["data"]
        return data

    async def error_codes(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> list[str]:
        """The `extensions.code` of each top-level error."""
        body = await self.post(query, variables, token)
        return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]

    async def login(self, email: str, password: str, role: str | None = None) -> str:
        data = await self.data(
            "mutation($e: String!, $p: String!, $r: Role) {"
            " login(email: $e, password: $p, role: $r) { token errors { code message } } }",
            {"e": email, "p": password, "r": role},
        )
        assert data["login"]["errors"] == [], data
        token: str = data["login"]["token"]
        return token
