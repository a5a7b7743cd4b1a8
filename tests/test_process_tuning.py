"""A serving process tunes its garbage collector once started (app.py): what start-up built is
frozen out of later collections, and the thresholds suit a server's requests."""

from __future__ import annotations

import gc

from app import GC_THRESHOLDS, create_app
from settings import Settings
from tests.asgi import running


async def test_a_started_app_freezes_its_start_up_and_raises_the_thresholds(
    settings: Settings,
) -> None:
    async with running(create_app(settings)):
        assert gc.get_threshold() == GC_THRESHOLDS
        # The modules, the schema and the ORM's mappers at least.
        assert gc.get_freeze_count() > 10_000
