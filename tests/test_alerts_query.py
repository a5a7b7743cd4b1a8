"""The `alerts` inbox and `markAlertsRead`: newest first in commit order, paged, scoped to the
viewer's active role and practice, read state per user — and refusals that change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from models import ProviderClient
from tests.api import Api
from tests.factories import Person, World
from tests.lifecycle import gid

INBOX = """
query($first: Int, $after: String, $unread: Boolean) {
  alerts(first: $first, after: $after, unreadOnly: $unread) {
    totalCount unreadCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id kind readAt invoice { id status } } }
  }
}
"""
MARK = "mutation($upTo: ID!) { markAlertsRead(upTo: $upTo) }"


async def inbox(api: Api, token: str, **variables: Any) -> dict[str, Any]:
    data = await api.data(INBOX, variables, token=token)
    result: dict[str, Any] = data["alerts"]
    return result


def entries(page: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, invoice id) of each alert of a page, in order."""
    return [(e["node"]["kind"], e["node"]["invoice"]["id"]) for e in page["edges"]]


async def three_invoices(world: World) -> tuple[str, str, str]:
    """i1 (c1) sent; i2 (c2) sent then paid; i3 (c1) sent then forgiven: five alerts."""
    i1 = gid("Invoice", await world.invoice(world.c1))
    i2 = gid("Invoice", await world.invoice(world.c2, paid=10_000))
    i3 = gid("Invoice", await world.invoice(world.c1, forgive=True))
    return i1, i2, i3


async def test_inbox_is_newest_first_and_pages_by_cursor(api: Api, world: World) -> None:
    i1, i2, i3 = await three_invoices(world)
    token = await world.token(world.admin, "ADMIN")

    first = await inbox(api, token, first=2)
    second = await inbox(api, token, first=2, after=first["pageInfo"]["endCursor"])
    last = await inbox(api, token, first=2, after=second["pageInfo"]["endCursor"])

    assert entries(first) + entries(second) + entries(last) == [
        ("INVOICE_FORGIVEN", i3),
        ("INVOICE_SENT", i3),
        ("INVOICE_PAID", i2),
        ("INVOICE_SENT", i2),
        ("INVOICE_SENT", i1),
    ]
    assert [p["pageInfo"]["hasNextPage"] for p in (first, second, last)] == [True, True, False]
    assert {(p["totalCount"], p["unreadCount"]) for p in (first, second, last)} == {(5, 5)}
    assert first["pageInfo"]["endCursor"] == first["edges"][-1]["cursor"]
    assert first["edges"][0]["node"]["invoice"]["status"] == "FORGIVEN"
    assert first["edges"][0]["node"]["readAt"] is None


async def test_inbox_holds_what_the_active_role_sees(
    api: Api, world: World, other_world: World
) -> None:
    i1, i2, i3 = await three_invoices(world)
    o1 = gid("Invoice", await other_world.invoice(other_world.c1, other_world.provider))

    async def seen(w: World, person: Any, role: str) -> list[tuple[str, str]]:
        return entries(await inbox(api, await w.token(person, role), first=50))

    everything = [
        ("INVOICE_FORGIVEN", i3),
        ("INVOICE_SENT", i3),
        ("INVOICE_PAID", i2),
        ("INVOICE_SENT", i2),
        ("INVOICE_SENT", i1),
    ]
    assert await seen(world, world.admin, "ADMIN") == everything
    assert await seen(world, world.provider, "PROVIDER") == everything  # c1 and c2 are theirs
    assert await seen(world, world.admin, "PROVIDER") == []  # no client assigned to the admin
    assert await seen(world, world.provider2, "PROVIDER") == []
    assert await seen(world, world.c1, "CLIENT") == [everything[0], everything[1], everything[4]]
    assert await seen(world, world.c2, "CLIENT") == everything[2:4]
    assert await seen(world, world.c3, "CLIENT") == []
    assert await seen(other_world, other_world.admin, "ADMIN") == [("INVOICE_SENT", o1)]


async def test_mark_read_up_to_an_alert_counts_what_it_newly_marked(api: Api, world: World) -> None:
    _i1, _i2, i3 = await three_invoices(world)
    token = await world.token(world.c1, "CLIENT")
    newest, middle, oldest = (e["node"]["id"] for e in (await inbox(api, token))["edges"])

    assert await api.data(MARK, {"upTo": middle}, token=token) == {"markAlertsRead": 2}
    page = await inbox(api, token)
    assert [e["node"]["readAt"] is not None for e in page["edges"]] == [False, True, True]
    assert (page["totalCount"], page["unreadCount"]) == (3, 1)
    unread = await inbox(api, token, unread=True)
    assert entries(unread) == [("INVOICE_FORGIVEN", i3)]
    assert (unread["totalCount"], unread["unreadCount"]) == (1, 1)

    assert await api.data(MARK, {"upTo": middle}, token=token) == {"markAlertsRead": 0}
    assert await api.data(MARK, {"upTo": oldest}, token=token) == {"markAlertsRead": 0}
    assert await api.data(MARK, {"upTo": newest}, token=token) == {"markAlertsRead": 1}
    assert (await inbox(api, token))["unreadCount"] == 0

    # Read state belongs to the user: the provider who sees the same alerts has read nothing.
    provider = await inbox(api, await world.token(world.provider, "PROVIDER"))
    assert provider["unreadCount"] == 5


async def test_marking_read_an_alert_outside_the_inbox_is_not_found_and_changes_nothing(
    api: Api, world: World, other_world: World
) -> None:
    await three_invoices(world)
    await other_world.invoice(other_world.c1, other_world.provider)
    token = await world.token(world.c1, "CLIENT")
    c2_alert = (await inbox(api, await world.token(world.c2, "CLIENT")))["edges"][0]["node"]
    elsewhere = (await inbox(api, await other_world.token(other_world.admin, "ADMIN")))["edges"]

    for up_to in (elsewhere[0]["node"]["id"], gid("InvoiceAlert", 0), "junk"):
        assert await api.error_codes(MARK, {"upTo": up_to}, token=token) == ["NOT_FOUND"]
    assert (await inbox(api, token))["unreadCount"] == 3
    assert await api.error_codes(MARK, {"upTo": c2_alert["id"]}) == ["UNAUTHENTICATED"]
    assert await api.error_codes(INBOX, {}) == ["UNAUTHENTICATED"]


async def reassign(world: World, client: Person, provider: Person) -> None:
    """The client now belongs to `provider` alone (as when a practice moves a client)."""
    async with world.db.writer() as session, session.begin():
        await session.execute(
            update(ProviderClient)
            .where(
                ProviderClient.practice_id == world.practice_id,
                ProviderClient.client_id == client.id,
            )
            .values(provider_id=provider.id)
        )


async def test_a_cursor_that_left_the_view_still_marks_what_came_before_it(
    api: Api, world: World
) -> None:
    # Given a provider's inbox: c2's invoice, then c1's, then c2's again
    first = gid("Invoice", await world.invoice(world.c2))
    await world.invoice(world.c1)
    last = gid("Invoice", await world.invoice(world.c2))
    token = await world.token(world.provider, "PROVIDER")
    (_, of_c1, _) = [e["node"]["id"] for e in (await inbox(api, token))["edges"]]
    # When c1 is reassigned to another provider, taking its alert out of this inbox
    await reassign(world, world.c1, world.provider2)
    assert entries(await inbox(api, token)) == [("INVOICE_SENT", last), ("INVOICE_SENT", first)]
    # Then marking read up to that alert marks what came before it in the inbox, and only that
    assert await api.data(MARK, {"upTo": of_c1}, token=token) == {"markAlertsRead": 1}
    unread = await inbox(api, token, unread=True)
    assert entries(unread) == [("INVOICE_SENT", last)]
    # And the provider who has c1 now has read nothing
    theirs = await inbox(api, await world.token(world.provider2, "PROVIDER"), unread=True)
    assert theirs["unreadCount"] == 1


@pytest.mark.parametrize(
    "variables", [{"after": "bm90IGEgY3Vyc29y"}, {"after": "!"}, {"first": -1}, {"first": 101}]
)
async def test_bad_paging_arguments_are_validation_errors(
    api: Api, world: World, variables: dict[str, Any]
) -> None:
    token = await world.token(world.admin, "ADMIN")
    assert await api.error_codes(INBOX, variables, token=token) == ["VALIDATION"]
