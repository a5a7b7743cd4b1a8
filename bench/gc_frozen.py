"""The app factory of `bench/api.py --gc-freeze`: the app, then `gc.freeze()`, so that what is
alive once the app is built (modules, the GraphQL schema, the ORM's mappers) is left out of the
garbage collector's later scans. An experiment, not part of the app."""

from __future__ import annotations

import gc

from starlette.applications import Starlette

from app import create_app as create


def create_app() -> Starlette:
    app = create()
    gc.collect()
    gc.freeze()
    return app
