"""The unsubscribe link of every email: `GET /notifications/unsubscribe?token=…` shows a
confirmation page (link scanners and previews follow GETs, so a GET changes nothing);
`POST` to the same address — the page's button, or a mail client's RFC 8058 one-click
request (`List-Unsubscribe=One-Click`) — turns the person's email off. It works without
signing in: the token names the user and is signed with the server's key; a forged or
altered one is refused with 400."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse

from adapters.dispatcher import UNSUBSCRIBE_PATH, unsubscribed_user
from adapters.mail_templates import render_page
from resolvers.notifications import save_preferences
from schema.services import Services

__all__ = ["UNSUBSCRIBE_PATH", "handle_unsubscribe"]


async def handle_unsubscribe(services: Services, request: Request) -> HTMLResponse:
    token = request.query_params.get("token", "")
    user_id = unsubscribed_user(services.vault, token)
    if user_id is None:
        return HTMLResponse(render_page("unsubscribe.html", state="invalid"), status_code=400)
    if request.method != "POST":
        action = f"{UNSUBSCRIBE_PATH}?token={token}"
        return HTMLResponse(render_page("unsubscribe.html", state="confirm", action=action))
    async with services.db.writer() as session, session.begin():
        await save_preferences(session, user_id, email_enabled=False)
    return HTMLResponse(render_page("unsubscribe.html", state="done"))
