"""Typed access to the per-request context from a resolver's `info`."""

from __future__ import annotations

from typing import TypeAlias

from strawberry.types import Info as StrawberryInfo

from models.enums import Role
from models.scope import Viewer
from resolvers.context import Context
from schema.errors import forbidden_field, unauthenticated

Info: TypeAlias = StrawberryInfo[Context, None]


def context_of(info: Info) -> Context:
    return info.context


def viewer_of(info: Info) -> Viewer:
    """The authenticated viewer, or a top-level UNAUTHENTICATED error."""
    viewer = info.context.viewer
    if viewer is None:
        raise unauthenticated()
    return viewer


def require_role(info: Info, *roles: Role) -> Viewer:
    """The viewer if their active role is one of `roles`, else a top-level FORBIDDEN error."""
    viewer = viewer_of(info)
    if viewer.role not in roles:
        raise forbidden_field()
    return viewer
