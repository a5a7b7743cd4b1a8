"""GraphiQL, served offline: the page and every asset come from CareBill itself (development
only). The assets under web/static/graphiql/ are vendored from npm with their licences by
scripts/vendor-graphiql.sh; web/static/carebill-graphiql.js wires GraphiQL to the endpoint."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/static"

# Relative to /graphql, so that the page also works behind a path prefix.
PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>CareBill · GraphiQL</title>
    <link rel="stylesheet" href="static/graphiql/graphiql.min.css">
    <style>html, body, #graphiql { height: 100%; margin: 0; overflow: hidden; }</style>
  </head>
  <body>
    <div id="graphiql">Loading…</div>
    <script src="static/graphiql/react.production.min.js"></script>
    <script src="static/graphiql/react-dom.production.min.js"></script>
    <script src="static/graphiql/graphiql.min.js"></script>
    <script src="static/carebill-graphiql.js"></script>
  </body>
</html>
"""


def assets() -> Mount:
    """The route that serves GraphiQL's assets."""
    return Mount(PREFIX, app=StaticFiles(directory=STATIC), name="static")
