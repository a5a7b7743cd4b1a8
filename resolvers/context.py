"""The typed per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.crypto import Vault
from adapters.database import Database
from models.scope import Viewer
from resolvers.loaders import Loaders
from settings import Settings


@dataclass
class Services:
    """What lives as long as the server: built once by the app's lifespan."""

    settings: Settings
    db: Database
    vault: Vault
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    services: Services
    viewer: Viewer | None
    request_id: str
    # The bearer token presented, when there was one (valid or not).
    token: str | None = None
    request: Any = None
    response: Any = None
    _loaders: Loaders | None = field(default=None, repr=False)

    def act_as(self, viewer: Viewer | None) -> None:
        """After login, switchRole or logout the rest of the response speaks for `viewer`."""
        self.viewer = viewer
        self._loaders = None

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def loaders(self) -> Loaders:
        """This request's loaders, scoped to the viewer (created on first use)."""
        if self.viewer is None:
            raise RuntimeError("loaders need an authenticated viewer")
        if self._loaders is None:
            self._loaders = Loaders.create(self.db, self.viewer)
        return self._loaders
