"""Notification preferences and the unsubscribe link: the viewer's own settings, and a
signed link that works without signing in — GET shows a page and changes nothing, POST (RFC
8058 one-click) turns email off, a forged or altered link is refused."""

from __future__ import annotations

from urllib.parse import urlsplit

from adapters.dispatcher import unsubscribe_token
from models.enums import Role
from schema.services import Services
from tests.api import Api
from tests.factories import World, make_world
from tests.notifications import MailServer, ManualClock, deliveries, dispatcher

VIEWER = "{ viewer { notificationPreferences { emailEnabled paymentReceivedEmails } } }"
UPDATE = """mutation($input: UpdateNotificationPreferencesInput!) {
  updateNotificationPreferences(input: $input) {
    preferences { emailEnabled paymentReceivedEmails } errors { code field message } } }"""
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


async def _preferences(api: Api, token: str) -> dict[str, bool]:
    data = await api.data(VIEWER, token=token)
    preferences: dict[str, bool] = data["viewer"]["notificationPreferences"]
    return preferences


async def test_the_viewer_reads_and_changes_their_own_preferences(api: Api, world: World) -> None:
    client = await world.token(world.c1, Role.CLIENT)
    other = await world.token(world.c2, Role.CLIENT)
    assert await _preferences(api, client) == {"emailEnabled": True, "paymentReceivedEmails": False}

    changed = await api.data(UPDATE, {"input": {"emailEnabled": False}}, client)
    assert changed == {
        "updateNotificationPreferences": {
            "preferences": {"emailEnabled": False, "paymentReceivedEmails": False},
            "errors": [],
        }
    }
    assert await _preferences(api, client) == {
        "emailEnabled": False,
        "paymentReceivedEmails": False,
    }
    assert await _preferences(api, other) == {"emailEnabled": True, "paymentReceivedEmails": False}
    again = await api.data(
        UPDATE, {"input": {"emailEnabled": True, "paymentReceivedEmails": True}}, client
    )
    assert again["updateNotificationPreferences"]["preferences"] == {
        "emailEnabled": True,
        "paymentReceivedEmails": True,
    }
    body = await api.post(UPDATE, {"input": {"emailEnabled": False}})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert await _preferences(api, client) == {"emailEnabled": True, "paymentReceivedEmails": True}


async def test_the_unsubscribe_link_shows_a_page_then_unsubscribes_in_one_click(
    api: Api, world: World
) -> None:
    client = await world.token(world.c1, Role.CLIENT)
    path = (
        f"/notifications/unsubscribe?token={unsubscribe_token(world.services.vault, world.c1.id)}"
    )

    page = await api.http.get(path)
    assert page.status_code == 200
    assert "Stop notification emails?" in page.text
    assert 'method="post"' in page.text
    assert (await _preferences(api, client))["emailEnabled"] is True  # a GET changes nothing

    done = await api.http.post(path, data=ONE_CLICK)
    assert done.status_code == 200
    assert "no more notification emails" in done.text
    assert (await _preferences(api, client))["emailEnabled"] is False
    assert (await api.http.post(path, data=ONE_CLICK)).status_code == 200  # twice is harmless


async def test_a_forged_or_altered_unsubscribe_link_is_refused(api: Api, world: World) -> None:
    other = await world.token(world.c2, Role.CLIENT)
    signature = unsubscribe_token(world.services.vault, world.c1.id).split(".", 1)[1]
    for token in (
        f"{world.c2.id}.{signature}",  # c1's signature on c2's id
        f"{world.c2.id}.{signature[:-1]}A",
        f"{world.c2.id}.",
        f"{world.c2.id}",
        "",
        "x" * 10_000,
        f"-{world.c2.id}.{signature}",
    ):
        for method in ("GET", "POST"):
            response = await api.http.request(
                method, "/notifications/unsubscribe", params={"token": token}, data=ONE_CLICK
            )
            assert response.status_code == 400, (token[:20], method)
            assert "not valid" in response.text
    assert (await _preferences(api, other))["emailEnabled"] is True


async def test_unsubscribing_from_an_email_stops_the_next_ones(
    own_database: Services, own_api: Api, mail_server: MailServer
) -> None:
    world = await make_world(own_database)
    await world.invoice(world.c1)
    clock = ManualClock()
    sender = dispatcher(own_database, mail_server, clock)
    await sender.run_once()
    (message,) = mail_server.mailbox.received()
    link = urlsplit(message["List-Unsubscribe"].strip("<>"))

    response = await own_api.http.post(f"{link.path}?{link.query}", data=ONE_CLICK)
    assert response.status_code == 200
    await world.invoice(world.c1)
    await world.invoice(world.c2)
    await sender.run_once()

    assert [m["To"] for m in mail_server.mailbox.received()] == [world.c1.email, world.c2.email]
    assert [d.recipient for d in await deliveries(own_database, world.practice_id)] == [
        world.c1.email,
        world.c2.email,
    ]
