"""A Python client of CareBill with `gql`: log in over HTTP, read the unpaid invoices, then
follow the invoice alerts over a websocket, resuming after the last one seen.

    pip install "gql[httpx,websockets]"
    python carebill_client.py http://127.0.0.1:8000 provider@demo.test carebill-demo --alerts 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) {
    token
    viewer { role }
    errors { code field message }
  }
}"""

UNPAID = """
query Unpaid {
  invoices(first: 5, filter: { status: [UNPAID] }) {
    totalCount
    edges { node { id number amountDue { amount currency formatted } } }
  }
}"""

ALERTS = """
subscription Alerts($after: ID) {
  invoiceAlerts(after: $after) { id kind invoice { number status } }
}"""


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def login(graphql_url: str, email: str, password: str) -> str:
    request = gql(LOGIN)
    request.variable_values = {"email": email, "password": password}
    async with Client(transport=HTTPXAsyncTransport(url=graphql_url)) as session:
        payload = (await session.execute(request))["login"]
    if payload["errors"]:  # expected refusals are data: a code, a field, a message
        raise SystemExit(f"login refused: {payload['errors'][0]['code']}")
    emit(role=payload["viewer"]["role"])
    token: str = payload["token"]
    return token


async def unpaid_invoices(graphql_url: str, token: str) -> None:
    transport = HTTPXAsyncTransport(url=graphql_url, headers={"Authorization": f"Bearer {token}"})
    async with Client(transport=transport) as session:
        try:
            invoices = (await session.execute(gql(UNPAID)))["invoices"]
        except TransportQueryError as error:  # top-level errors: branch on extensions.code
            codes = [e.get("extensions", {}).get("code") for e in error.errors or []]
            raise SystemExit(f"query refused: {codes}") from error
    emit(unpaid=invoices["totalCount"])


async def follow_alerts(ws_url: str, token: str, count: int, after: str | None) -> None:
    # gql negotiates the legacy `graphql-ws` protocol by default; CareBill speaks both.
    transport = WebsocketsTransport(url=ws_url, init_payload={"Authorization": f"Bearer {token}"})
    request = gql(ALERTS)
    request.variable_values = {"after": after}
    async with Client(transport=transport) as session:
        emit(subscribed=True)
        seen = 0
        async for result in session.subscribe(request):
            alert = result["invoiceAlerts"]
            emit(alert=alert)  # keep alert["id"]: resume with after=<it> on reconnect
            seen += 1
            if seen == count:
                return


async def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("base_url")
    options.add_argument("email")
    options.add_argument("password")
    options.add_argument("--alerts", type=int, default=1, help="stop after this many alerts")
    options.add_argument("--after", help="the id of the last alert already seen")
    args = options.parse_args()
    graphql_url = f"{args.base_url.rstrip('/')}/graphql"
    ws_url = graphql_url.replace("http", "ws", 1)
    token = await login(graphql_url, args.email, args.password)
    await unpaid_invoices(graphql_url, token)
    await follow_alerts(ws_url, token, args.alerts, args.after)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
