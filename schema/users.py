"""Users and the viewer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from models import User as UserRow
from schema.context import Info, viewer_of
from schema.enums import Role
from schema.errors import UserError
from schema.node import Node
from schema.notifications import NotificationPreferences, preferences_of

if TYPE_CHECKING:
    from schema.practice import PracticeType


@strawberry.type(name="User", description="A person in the viewer's practice")
class UserType(Node):
    row: strawberry.Private[UserRow]

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def email(self) -> str:
        return self.row.email

    @strawberry.field(description="The roles this user holds in the viewer's practice")
    async def roles(self, info: Info) -> list[Role]:
        viewer_of(info)
        return await info.context.loaders.roles.load(self.row.id)


@strawberry.type(name="Viewer", description="Who is logged in, in which practice and active role")
class ViewerType:
    user_row: strawberry.Private[UserRow]
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
