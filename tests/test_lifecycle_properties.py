"""Property-based test of the invoice lifecycle: random sequences of actions by random roles,
through the GraphQL API, checking the contract's invariants after every step."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import httpx
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_config
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from adapters.database import Database
from app import create_app
from schema.services import Services
from settings import Settings
from tests.api import Api
from tests.asgi import running
from tests.factories import Person, World, make_world
from tests.lifecycle import FORGIVE, RECORD, REFUND, SEND, VOID, client_gid, mutate

T = TypeVar("T")

TERMINAL = {"VOID", "FORGIVEN", "REFUNDED"}
STATE = """query($id: ID!) { invoice(id: $id) {
  status total { amount } amountPaid { amount } amountRefunded { amount } amountDue { amount }
  refundableAmount { amount } history { action } } }"""

amounts = st.integers(min_value=1, max_value=12_000)


class Harness:
    """The real app, a client and a practice, on an event loop of the state machine's own."""

    def __init__(self, app_settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.stack = AsyncExitStack()
        self.app_settings = app_settings

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    async def start(self) -> None:
        app = create_app(self.app_settings)
        served = await self.stack.enter_async_context(running(app))
        http = await self.stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=served.app), base_url="http://t")
        )
        self.api = Api(http)
        db = Database(self.app_settings.database_url)
        self.stack.push_async_callback(db.dispose)
        services = Services.build(self.app_settings, db)
        self.world: World = await make_world(services)

    def close(self) -> None:
        self.run(self.stack.aclose())
        self.loop.close()


def lifecycle_machine(app_settings: Settings) -> type[RuleBasedStateMachine]:
    class InvoiceLifecycle(RuleBasedStateMachine):
        invoices = Bundle("invoices")

        def __init__(self) -> None:
            super().__init__()
            self.h = Harness(app_settings)
            self.h.run(self.h.start())
            w = self.h.world
            self.actors: dict[str, tuple[Person, str]] = {
                "admin": (w.admin, "ADMIN"),
                "provider": (w.provider, "PROVIDER"),
                "other_provider": (w.provider2, "PROVIDER"),
                "client": (w.c1, "CLIENT"),
                "other_client": (w.c2, "CLIENT"),
            }
            self.successes: dict[str, int] = {}
            self.terminal: dict[str, str] = {}

        def teardown(self) -> None:
            self.h.close()

        def token(self, actor: str) -> str:
            person, role = self.actors[actor]
            return self.h.run(self.h.world.token(person, role))

        @rule(target=invoices, amount=amounts)
        def send(self, amount: int) -> str:
            payload = self.h.run(
                mutate(
                    self.h.api,
                    SEND,
                    self.token("provider"),
                    clientId=client_gid(self.h.world.c1),
                    description="prop",
                    amount=amount,
                )
            )
            assert payload["errors"] == []
            invoice_id: str = payload["invoice"]["id"]
            self.successes[invoice_id] = 0
            return invoice_id

        def act(self, invoice: str, actor: str, operation: str, **fields: Any) -> None:
            payload = self.h.run(
                mutate(self.h.api, operation, self.token(actor), invoiceId=invoice, **fields)
            )
            if payload["errors"]:
                assert payload["invoice"] is None
                codes = {e["code"] for e in payload["errors"]}
                assert codes <= {"VALIDATION", "INVALID_STATE", "FORBIDDEN", "NOT_FOUND"}, payload
            else:
                self.successes[invoice] += 1

        @rule(
            invoice=invoices,
            actor=st.sampled_from(["admin", "provider", "other_provider", "client"]),
            amount=amounts,
            method=st.sampled_from(["CASH", "CHECK", "BANK_TRANSFER", "OTHER"]),
        )
        def record_payment(self, invoice: str, actor: str, amount: int, method: str) -> None:
            self.act(invoice, actor, RECORD, amount=amount, method=method)

        @rule(invoice=invoices, actor=st.sampled_from(["admin", "provider"]))
        def pay_what_is_due(self, invoice: str, actor: str) -> None:
            """Random amounts rarely add up to a total: settle the balance to reach PAID."""
            state = self.h.run(self.h.api.data(STATE, {"id": invoice}, token=self.token("admin")))
            due = state["invoice"]["amountDue"]["amount"]
            self.act(invoice, actor, RECORD, amount=max(due, 1), method="CASH")

        @rule(invoice=invoices, actor=st.sampled_from(["admin", "provider", "client"]))
        def forgive(self, invoice: str, actor: str) -> None:
            self.act(invoice, actor, FORGIVE, reason="prop")

        @rule(invoice=invoices, actor=st.sampled_from(["admin", "provider", "other_client"]))
        def void(self, invoice: str, actor: str) -> None:
            self.act(invoice, actor, VOID)

        @rule(
            invoice=invoices,
            actor=st.sampled_from(["admin", "provider", "client"]),
            amount=st.none() | amounts,
        )
        def refund(self, invoice: str, actor: str, amount: int | None) -> None:
            self.act(invoice, actor, REFUND, amount=amount, reason="prop")

        @precondition(lambda self: bool(self.successes))
        @invariant()
        def amounts_and_status_agree(self) -> None:
            admin = self.token("admin")
            for invoice, successes in self.successes.items():
                data = self.h.run(self.h.api.data(STATE, {"id": invoice}, token=admin))["invoice"]
                total = data["total"]["amount"]
                paid = data["amountPaid"]["amount"]
                refunded = data["amountRefunded"]["amount"]
                status = data["status"]
                assert 0 <= refunded <= paid <= total, data
                assert data["amountDue"]["amount"] == (total - paid if status == "UNPAID" else 0)
                expected_refundable = paid - refunded if status == "PAID" else 0
                assert data["refundableAmount"]["amount"] == expected_refundable
                consistent = {
                    "UNPAID": paid < total and refunded == 0,
                    "PAID": paid == total and refunded < paid,
                    "REFUNDED": paid == total and refunded == paid,
                    "FORGIVEN": paid < total and refunded == 0,
                    "VOID": paid == 0 and refunded == 0,
                }[status]
                assert consistent, data
                if invoice in self.terminal:
                    assert status == self.terminal[invoice], "a terminal state changed"
                elif status in TERMINAL:
                    self.terminal[invoice] = status
                assert len(data["history"]) == 1 + successes, data

    return InvoiceLifecycle


PROPERTY_RUNS = hypothesis_config(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_invoice_lifecycle_invariants(settings: Settings) -> None:
    runner = lifecycle_machine(settings).TestCase
    runner.settings = PROPERTY_RUNS
    runner().runTest()
