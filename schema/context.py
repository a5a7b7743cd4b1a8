"""The typed per-request context every resolver receives, typed access to it from `info`, and
`reads_context`: the resolvers that need nothing of their `Info` but the context."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

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
    return viewer_in(info.context)


def viewer_in(context: Context) -> Viewer:
    """The authenticated viewer, or a top-level UNAUTHENTICATED error."""
    viewer = context.viewer
    if viewer is None:
        raise unauthenticated()
    return viewer


S = TypeVar("S")
R = TypeVar("R")

# Where `reads_context` keeps, on the resolver it makes, the function it was given.
_CONTEXT_READ = "__context_read__"


def reads_context(read: Callable[[S, Context], R]) -> Callable[[S, Info], R]:
    """The resolver of a field that needs nothing of its `Info` but the request's context:

        @strawberry.field
        @reads_context
        def amount_paid(self, context: Context) -> MoneyType: ...

    strawberry sees `(self, info: Info) -> MoneyType` and calls it as any resolver,
    `read(self, info.context)`; schema/execution.py calls `read(source, context)` itself, without
    building the field's `Path` and `Info` (`context_read_of`). `read` takes the source, whatever
    its first parameter is named, and returns its value (not a coroutine)."""
    if inspect.iscoroutinefunction(read):
        raise TypeError(f"{read.__qualname__}: reads_context takes a plain function")

    def resolve(self: S, info: Info) -> R:
        return read(self, info.context)

    resolve.__name__ = read.__name__
    resolve.__qualname__ = read.__qualname__
    resolve.__module__ = read.__module__  # where strawberry reads the return annotation
    resolve.__doc__ = read.__doc__
    signature = inspect.Signature(
        [
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter("info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Info),
        ],
        return_annotation=inspect.signature(read).return_annotation,
    )
    setattr(resolve, "__signature__", signature)  # noqa: B010 (not an attribute mypy knows)
    setattr(resolve, _CONTEXT_READ, read)
    return resolve


def context_read_of(resolver: object) -> Callable[[Any, Context], Any] | None:
    """The function `reads_context` made `resolver` from, if it did."""
    read: Callable[[Any, Context], Any] | None = getattr(resolver, _CONTEXT_READ, None)
    return read
