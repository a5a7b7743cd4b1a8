"""With the database unreachable, what needs it answers 503 (retry later), never a masked
internal error or a bare 500: login, the CSV exports and the processors' webhooks (503, so
Stripe sends the event again)."""

from __future__ import annotations

from typing import Any

import pytest

from schema.node import encode_id
from tests.stripe_server import event_body, sign

UNREACHABLE = [
    "postgresql+asyncpg://postgres@127.0.0.1:1/carebill",  # nothing listens on port 1
    "sqlite+aiosqlite:////nonexistent-directory/carebill.db",
]
LOGIN = """mutation { login(email: "admin@demo.test", password: "carebill-demo") {
  token errors { code message } } }"""


@pytest.mark.parametrize("url", UNREACHABLE)
async def test_login_exports_and_webhooks_answer_503(client_of: Any, url: str) -> None:
    http = await client_of(database_url=url)
    login = await http.post("/graphql", json={"query": LOGIN})
    assert (login.status_code, login.text) == (
        503,
        "The database is unavailable; try again shortly",
    )
    for name in ("invoices.csv", "billing-report.csv"):
        export = await http.get(
            f"/exports/{name}?from=2026-01-01&to=2026-01-31",
            headers={"Authorization": "Bearer some-token"},
        )
        assert export.status_code == 503, name
        assert export.json() == {"status": "unavailable"}
    body = event_body("evt_down", "payment_intent.succeeded", {"id": "pi_1", "amount": 1})
    webhook = await http.post(
        f"/webhooks/stripe/{encode_id('PaymentProcessor', 1)}",
        content=body,
        headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"},
    )
    assert (webhook.status_code, webhook.json()) == (
        503,
        {"status": "database unavailable, send again later"},
    )
