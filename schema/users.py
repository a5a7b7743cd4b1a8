"""Users and the viewer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, TypeAlias

import strawberry

from models import User as UserRow
from schema.context import Info, viewer_of
from schema.enums import Role
from schema.errors import UserError
from schema.loaders import MISSING
from schema.node import Node, encode_id
from schema.notifications import NotificationPreferences, preferences_of
from schema.preload import later
from schema.rows import PersonRow

if TYPE_CHECKING:
    from schema.practice import PracticeType


# A user as a type shows them: the read side's light row, or the ORM row a mutation holds.
Person: TypeAlias = UserRow | PersonRow


@strawberry.type(name="User", description="A person in the viewer's practice")
class UserType(Node):
    row: strawberry.Private[Person]

    # Plain values, set from the row: a field without a resolver costs a fraction of one with.
    id: strawberry.ID = strawberry.field(default=strawberry.ID(""), description="Global, opaque id")
    name: str = ""
    email: str = ""

    def __post_init__(self) -> None:
        self.id = encode_id("User", self.row.id)
        self.name = self.row.name
        self.email = self.row.email

    @strawberry.field(description="The roles this user holds in the viewer's practice")
    def roles(self, info: Info) -> list[Role]:
        viewer_of(info)
        roles = info.context.loaders.roles.known(self.row.id)
        if roles is MISSING:
            return later(info.context.loaders.roles.load(self.row.id))
        return roles


@strawberry.type(name="Viewer", description="Who is logged in, in which practice and active role")
class ViewerType:
    user_row: strawberry.Private[Person]
    role: Role
    roles: list[Role]

    @strawberry.field
    def user(self) -> UserType:
        return UserType(row=self.user_row)

    @strawberry.field(description="How you hear of alerts outside the app")
    async def notification_preferences(self, info: Info) -> NotificationPreferences:
        return await preferences_of(info, self.user_row.id)

    @strawberry.field
    async def practice(
        self, info: Info
    ) -> Annotated[PracticeType, strawberry.lazy("schema.practice")]:
        from schema.practice import PracticeType

        viewer = viewer_of(info)
        row = await info.context.loaders.practices.load(viewer.practice_id)
        assert row is not None  # a viewer always belongs to their practice
        return PracticeType(row=row)


@strawberry.type
class LoginPayload:
    token: str | None = None
    viewer: ViewerType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
    retry_after_seconds: int | None = strawberry.field(
        default=None,
        description="With a TOO_MANY_ATTEMPTS error: seconds before a login may be tried again",
    )


@strawberry.input
class AddMemberInput:
    email: str
    name: str
    role: Role
    password: str | None = strawberry.field(
        default=None,
        description="For an email without an account: the password the invitation is accepted"
        " with (never applied to an account that exists)",
    )


@strawberry.type
class MemberPayload:
    user: UserType | None = None
    invite_token: str | None = strawberry.field(
        default=None,
        description="One-time token for acceptInvite, for anyone not yet a member of the"
        " practice (whether or not the email has an account); shown once",
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class AssignClientInput:
    provider_id: strawberry.ID
    client_id: strawberry.ID
