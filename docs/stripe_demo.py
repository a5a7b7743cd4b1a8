"""Pay a demo invoice by card end to end, against localstripe instead of Stripe.

    python docs/stripe_demo.py localstripe          # terminal 1: a fake Stripe on 127.0.0.1:8420
    CAREBILL_STRIPE_API_BASE=http://127.0.0.1:8420 make demo      # terminal 2: CareBill
    python docs/stripe_demo.py pay                  # terminal 3: configure, tokenize, pay

See docs/stripe-demo.md. Needs the dev extras (`pip install -e '.[dev]'`) for localstripe.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

import httpx

# Fake keys: localstripe accepts any key of the right shape. Never put real keys in a script.
SECRET_KEY = "sk_test_carebillDemo0000000001"
PUBLISHABLE_KEY = "pk_test_carebillDemo0000000001"
WEBHOOK_SECRET = "whsec_carebillDemoWebhookSecret01"
PASSWORD = "carebill-demo"  # every demo user's (see the README)

CARDS = {
    "ok": "4242424242424242",
    "declined": "4000000000000341",
    "3ds": "4000002500003155",
}


def run_localstripe(port: int) -> None:
    """localstripe's app on 127.0.0.1 only, its state in memory (its own command listens on
    every interface and writes its state to /tmp)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from aiohttp import web
        from localstripe import resources, server

    resources.store.dump_to_disk = lambda: None
    print(f"localstripe on http://127.0.0.1:{port} (Ctrl-C to stop)")
    web.run_app(server.app, host="127.0.0.1", port=port, print=None)


class CareBill:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def call(self, query: str, variables: dict[str, Any], token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            sys.exit(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def login(self, email: str, role: str) -> str:
        data = self.call(
            "mutation($e: String!, $p: String!, $r: Role) {"
            " login(email: $e, password: $p, role: $r) { token errors { message } } }",
            {"e": email, "p": PASSWORD, "r": role},
        )
        if data["login"]["errors"]:
            sys.exit(f"login failed: {data['login']['errors']}")
        token: str = data["login"]["token"]
        return token


def pay(carebill_url: str, stripe_url: str, card: str) -> None:
    carebill = CareBill(carebill_url)
    stripe = httpx.Client(base_url=stripe_url, timeout=30, auth=(SECRET_KEY, ""))

    # 1. The admin configures Stripe (fake keys: localstripe accepts them).
    admin = carebill.login("admin@demo.test", "ADMIN")
    data = carebill.call(
        "mutation($input: ConfigurePaymentProcessorInput!) { configurePaymentProcessor("
        "input: $input) { paymentProcessor { webhookPath } errors { message } } }",
        {
            "input": {
                "type": "STRIPE",
                "description": "localstripe demo",
                "secretKey": SECRET_KEY,
                "publishableKey": PUBLISHABLE_KEY,
                "webhookSecret": WEBHOOK_SECRET,
            }
        },
        admin,
    )
    payload = data["configurePaymentProcessor"]
    if payload["errors"]:
        sys.exit(f"configurePaymentProcessor: {payload['errors']}")
    webhook_url = carebill_url.rstrip("/") + payload["paymentProcessor"]["webhookPath"]
    # What the Stripe dashboard does: send this account's events to CareBill, signed.
    stripe.post(
        "/_config/webhooks/carebill", data={"url": webhook_url, "secret": WEBHOOK_SECRET}
    ).raise_for_status()
    print(f"Stripe configured; webhooks go to {webhook_url}")

    # 2. In the client's app, Stripe.js turns the card into a PaymentMethod id.
    response = stripe.post(
        "/v1/payment_methods",
        data={
            "type": "card",
            "card[number]": card,
            "card[exp_month]": "12",
            "card[exp_year]": "2034",
            "card[cvc]": "123",
        },
    )
    response.raise_for_status()
    payment_method = response.json()["id"]
    print(f"card tokenized by the app: {payment_method}")

    # 3. The client pays one of their unpaid invoices with that id.
    client = carebill.login("client1@demo.test", "CLIENT")
    data = carebill.call(
        "{ invoices(filter: {status: [UNPAID]}, first: 1) {"
        " edges { node { id number amountDue { formatted } } } } }",
        {},
        client,
    )
    edges = data["invoices"]["edges"]
    if not edges:
        sys.exit("client1@demo.test has no unpaid invoice left: run `carebill seed-demo` anew")
    invoice = edges[0]["node"]
    print(f"paying {invoice['number']}: {invoice['amountDue']['formatted']}")
    pay_invoice = (
        "mutation($input: PayInvoiceInput!) { payInvoice(input: $input) {"
        " invoice { number status amountDue { formatted } payments { method reference } }"
        " requiresAction paymentClientSecret errors { code message } } }"
    )
    data = carebill.call(
        pay_invoice,
        {"input": {"invoiceId": invoice["id"], "paymentMethodId": payment_method}},
        client,
    )
    result = data["payInvoice"]
    if result["errors"]:
        print(f"refused: {result['errors']}")
        return
    if result["requiresAction"]:
        # What Stripe.js does with the client secret: the customer passes 3-D Secure.
        secret = result["paymentClientSecret"]
        intent = secret.split("_secret_")[0]
        httpx.post(
            f"{stripe_url}/v1/payment_intents/{intent}/_authenticate",
            data={"key": PUBLISHABLE_KEY, "client_secret": secret, "success": "true"},
        ).raise_for_status()
        print("3-D Secure passed in the app; waiting for Stripe's webhook…")
        time.sleep(2.5)  # localstripe sends it about a second later
        data = carebill.call(
            "query($id: ID!) { invoice(id: $id) { number status amountDue { formatted }"
            " payments { method reference } } }",
            {"id": invoice["id"]},
            client,
        )
        print(f"after the webhook: {data['invoice']}")
        return
    print(f"paid: {result['invoice']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser("localstripe", help="run localstripe on 127.0.0.1")
    local.add_argument("--port", type=int, default=8420)
    paying = commands.add_parser("pay", help="configure Stripe and pay a demo invoice")
    paying.add_argument("--carebill", default="http://127.0.0.1:8000")
    paying.add_argument("--stripe", default="http://127.0.0.1:8420")
    paying.add_argument("--card", choices=sorted(CARDS), default="ok")
    args = parser.parse_args()
    if args.command == "localstripe":
        run_localstripe(args.port)
    else:
        pay(args.carebill, args.stripe, CARDS[args.card])


if __name__ == "__main__":
    main()
