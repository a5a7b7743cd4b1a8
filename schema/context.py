"""The typed per-request context every resolver receives, and typed access to it from `info`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from strawberry.types import Info as StrawberryInfo

from adapters.database import Database, RequestConnection, SessionPermits
from models.scope import Viewer
from schema.errors import unauthenticated
from schema.loaders import Loaders
from schema.services import Services
from settings import Settings


@dataclass
class Context:
    services: Services
    viewer: Viewer | None
    request_id: str
    # The bearer token presented, when there was one (valid or not).
    token: str | None = None
    request: Any = None
    response: Any = None
    # The connections this request holds at once are bounded (see adapters/database.py).
    permits: SessionPermits = field(default_factory=SessionPermits, repr=False)
    # An HTTP request reads through one connection (`RequestConnection`), given back by
    # `close()`: its handler sets this (app.py). Any other context — a websocket's operations,
    # the alert feed's view — takes its own sessions, within `permits` (a subscription lives
    # long: it must not keep a connection between its reads).
    shares_connection: bool = False
    _connection: RequestConnection | None = field(default=None, repr=False)
    _db: Database | None = field(default=None, repr=False)
    _loaders: Loaders | None = field(default=None, repr=False)

    def act_as(self, viewer: Viewer | None) -> None:
        """After login, switchRole or logout the rest of the response speaks for `viewer`."""
        self.viewer = viewer
        self._loaders = None

    @property
    def db(self) -> Database:
        """The database as this request uses it: open sessions with `ctx.db`."""
        if self._db is None:
            if self.shares_connection:
                self._connection = self.services.db.request_connection()
                self._db = self.services.db.for_request(self.permits, self._connection)
            else:
                self._db = self.services.db.bounded(self.permits)
        return self._db

    async def close(self) -> None:
        """The request is over: its read connection goes back to the pool."""
        if self._connection is not None:
            await self._connection.release()

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def loaders(self) -> Loaders:
        """This request's loaders, scoped to the viewer (created on first use); without a
        viewer, nothing is in scope: a top-level UNAUTHENTICATED error."""
        if self._loaders is None:
            if self.viewer is None:
                raise unauthenticated()
            self._loaders = Loaders.create(self.db, self.viewer)
        return self._loaders


Info: TypeAlias = StrawberryInfo[Context, None]


def context_of(info: Info) -> Context:
    return info.context


def viewer_of(info: Info) -> Viewer:
    """The authenticated viewer, or a top-level UNAUTHENTICATED error."""
    viewer = info.context.viewer
    if viewer is None:
        raise unauthenticated()
    return viewer
