"""Which browser origins may call CareBill, over HTTP (CORS) and websockets alike.

`CAREBILL_ALLOWED_ORIGINS` lists them. With none listed, development admits pages served from
this machine on any port (a front end's dev server: `http://localhost:5173`, …); production
admits no other origin than the listed ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from strawberry.http.websocket_origin import normalize_allowed_origins, normalize_origin

from settings import Settings

# Scheme, a loopback host, any port; nothing after it (an origin has no path).
LOCAL_ORIGIN = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?"
# What a browser may send cross-origin: the bearer token, a JSON body, our request id.
ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Request-Id")
# How long a browser may cache a preflight answer (Chromium caps it at two hours).
PREFLIGHT_MAX_AGE_SECONDS = 7200


@dataclass(frozen=True)
class OriginPolicy:
    origins: tuple[str, ...]
    local_origins_allowed: bool

    @classmethod
    def of(cls, settings: Settings) -> OriginPolicy:
        # In the form browsers send: lowercase, no default port (`https://App.test:443/` is
        # `https://app.test`); something that is not an origin is refused at start-up.
        origins = tuple(sorted(normalize_allowed_origins(settings.allowed_origins)))
        return cls(origins=origins, local_origins_allowed=not origins and not settings.production)

    def allows(self, origin: str) -> bool:
        """Whether a page served from `origin` may read CareBill's answers."""
        normalized = normalize_origin(origin)
        if normalized is None:
            return False
        if normalized in self.origins:
            return True
        return self.local_origins_allowed and re.fullmatch(LOCAL_ORIGIN, normalized) is not None

    def middleware(self) -> Middleware:
        """Starlette's CORS middleware for this policy: preflights and response headers on every
        HTTP route (`/graphql`, the CSV exports under `/exports/`, the health checks). Tokens
        travel in the Authorization header, never in cookies: no credentials mode."""
        return Middleware(
            CORSMiddleware,
            allow_origins=list(self.origins),
            allow_origin_regex=LOCAL_ORIGIN if self.local_origins_allowed else None,
            allow_methods=["GET", "POST"],
            allow_headers=list(ALLOWED_HEADERS),
            expose_headers=["Content-Disposition", "Allow"],
            max_age=PREFLIGHT_MAX_AGE_SECONDS,
        )
