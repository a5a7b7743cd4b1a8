"""How a live subscription ends when its token stops being valid — it expires, or is revoked
(logout: tests/test_subscriptions.py) — as docs/API.md describes: one result whose error has
`extensions.code = "UNAUTHENTICATED"`, then `complete`; the socket stays open."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from models import AuthSession
from models.base import utcnow
from tests.factories import World
from tests.live_server import LEGACY_WS, TRANSPORT_WS, LiveServer, subscribed


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_an_expiring_token_ends_its_subscription_with_unauthenticated(
    live_server: LiveServer, world: World, protocol: str
) -> None:
    token = await world.token(world.c2, "CLIENT")
    async with subscribed(live_server, token, protocol=protocol) as socket:
        # The token's lifetime runs out (set in the database: no waiting for a clock).
        async with world.db.writer() as session, session.begin():
            await session.execute(
                update(AuthSession)
                .where(AuthSession.token_hash == world.services.vault.token_hash(token))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        result = await socket.next_result(within=30)
        assert result["data"] is None
        assert [e["extensions"]["code"] for e in result["errors"]] == ["UNAUTHENTICATED"]
        assert (await socket.receive())["type"] == "complete"
