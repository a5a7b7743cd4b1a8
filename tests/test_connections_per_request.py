"""One request holds a bounded number of database connections at once, however many sibling
root fields it has (graphql-core resolves them concurrently, each in its own session): unbounded,
a few wide queries exhausted PostgreSQL's connections ("too many clients")."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from sqlalchemy import event

from adapters.database import CONNECTIONS_PER_REQUEST
from models.enums import Role
from tests.api import Api
from tests.asgi import Running
from tests.factories import World

_MINE: ContextVar[bool] = ContextVar("mine", default=False)

WIDE = (
    "{ "
    + " ".join(f"i{n}: invoices(first: 1) {{ totalCount }}" for n in range(12))
    + " "
    + " ".join(f"c{n}: clients(first: 1) {{ totalCount }}" for n in range(12))
    + " }"
)


class HeldConnections:
    """The pool's connections checked out on behalf of this test's request, now and at most."""

    def __init__(self) -> None:
        self.mine: set[int] = set()
        self.most = 0

    def checkout(self, _dbapi: Any, record: Any, _proxy: Any) -> None:
        if _MINE.get():
            self.mine.add(id(record))
            self.most = max(self.most, len(self.mine))

    def checkin(self, _dbapi: Any, record: Any) -> None:
        self.mine.discard(id(record))


async def test_sibling_root_fields_share_a_bounded_number_of_connections(
    served: Running, api: Api, world: World
) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    pool = served.services.db.engine.sync_engine.pool
    held = HeldConnections()
    event.listen(pool, "checkout", held.checkout)
    event.listen(pool, "checkin", held.checkin)
    _MINE.set(True)
    try:
        data = await api.data(WIDE, token=token)
    finally:
        _MINE.set(False)
        event.remove(pool, "checkout", held.checkout)
        event.remove(pool, "checkin", held.checkin)
    assert len(data) == 24
    assert {v["totalCount"] for k, v in data.items() if k.startswith("i")} == {
        data["i0"]["totalCount"]
    }
    assert 1 <= held.most <= CONNECTIONS_PER_REQUEST
    assert held.mine == set()
