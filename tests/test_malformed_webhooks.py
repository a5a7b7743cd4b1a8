"""Validly signed events that can never be read answer 400 (sending them again cannot help),
change nothing and log no traceback; only what a retry can fix answers 5xx."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.api import Api
from tests.factories import World
from tests.snapshots import snapshot
from tests.stripe_server import LocalStripe, deliver, enable_cards, event_body, sign

INTENT = {"id": "pi_malformed", "object": "payment_intent", "status": "succeeded", "amount": 500}


def envelope(obj: dict[str, Any]) -> bytes:
    """A payment_intent.succeeded event about INTENT with `obj`'s fields changed."""
    return event_body("evt_malformed", "payment_intent.succeeded", {**INTENT, **obj})


MALFORMED: dict[str, bytes] = {
    "a list": b"[]",
    "a number": b"5",
    "an empty object": b"{}",
    "no type": b'{"id": "evt_1", "data": {"object": {}}}',
    "no id": b'{"type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}}',
    "a numeric type": b'{"id": "evt_1", "type": 7}',
    "an amount in letters": envelope({"amount": "abc"}),
    "an amount of 1e400": event_body("evt_big", "payment_intent.succeeded", INTENT).replace(
        b'"amount": 500', b'"amount": 1e400'
    ),
    "a fractional amount": envelope({"amount": 12.5}),
    "a negative amount": envelope({"amount": -5}),
    "a boolean amount": envelope({"amount": True}),
    "metadata as a list": envelope({"metadata": [1, 2]}),
    "data as a string": b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": "x"}',
    "an object without an id": envelope({"id": None}),
    "a lone surrogate": b'{"id": "evt_\\ud800", "type": "payment_intent.succeeded"}',
    "a NUL": b'{"id": "evt_\\u0000", "type": "charge.refunded"}',
    "refunds of the wrong shape": event_body(
        "evt_r",
        "charge.refunded",
        {"id": "ch_1", "payment_intent": "pi_1", "refunds": {"data": [{"amount": "x"}]}},
    ),
    "not JSON": b"{not json",
    "nested too deep": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_a_signed_event_that_never_parses_is_a_400(
    api: Api,
    world: World,
    localstripe: LocalStripe,
    caplog: pytest.LogCaptureFixture,
    name: str,
) -> None:
    path = await enable_cards(api, world)
    body = MALFORMED[name]
    before = await snapshot(world.db, world.practice_id)
    with caplog.at_level(logging.WARNING):
        response = await deliver(api, path, body, sign(body))
    assert (response.status_code, response.json()) == (400, {"status": "malformed event"})
    assert await snapshot(world.db, world.practice_id) == before
    assert not [r for r in caplog.records if r.exc_info], "no traceback is logged"
