"""What a mutation asks the database: its payload comes from the rows it just wrote (nothing
read back), an idempotency key costs one statement, a send's checks one more — and the
shortcuts change no answer: a payload after an earlier change in the same operation is the
new one, a replayed or refused send draws no invoice number."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from tests.api import Api
from tests.conftest import StatementCounter
from tests.factories import World
from tests.lifecycle import SEND, client_gid, gid, invoice_count, mutate

# The fields a client shows after a change: each would be read again without the primed rows.
PAYLOAD = """
invoice { id number status total { amount } amountPaid { amount } amountDue { amount }
  refundableAmount { amount } canRecordPayment canForgive canVoid canRefund
  payments { amount { amount } method reference } refunds { amount { amount } } }
errors { code field message }
"""
SEND_SHORT = f"mutation($input: SendInvoiceInput!) {{ sendInvoice(input: $input) {{ {PAYLOAD} }} }}"
RECORD_SHORT = (
    f"mutation($input: RecordPaymentInput!) {{ recordPayment(input: $input) {{ {PAYLOAD} }} }}"
)
TWO_PAYMENTS = f"""
mutation($id: ID!) {{
  first: recordPayment(input: {{invoiceId: $id, amount: 1000, method: CASH}}) {{ {PAYLOAD} }}
  second: recordPayment(input: {{invoiceId: $id, amount: 2500, method: CHECK}}) {{ {PAYLOAD} }}
}}
"""


def _tables_read(counter: StatementCounter) -> list[str]:
    """The tables named after FROM in each SELECT run (the lock's and the checks' included)."""
    return [
        table
        for statement in counter.queries()
        if statement.lstrip().upper().startswith("SELECT")
        for table in re.findall(r"\bFROM (\w+)", statement)
    ]


async def test_record_payment_builds_its_payload_from_what_it_wrote(
    api: Api, world: World, count_statements: Callable[[], StatementCounter]
) -> None:
    token = await world.token(world.provider, "PROVIDER")
    invoice_id = await world.invoice(amount=10_000)
    target = gid("Invoice", invoice_id)

    counter = count_statements()
    payload = await mutate(
        api, RECORD_SHORT, token, invoiceId=target, amount=4_000, method="CASH",
        idempotencyKey="pay-once",
    )  # fmt: skip

    assert payload["errors"] == []
    assert payload["invoice"]["amountPaid"] == {"amount": 4_000}
    assert payload["invoice"]["amountDue"] == {"amount": 6_000}
    assert payload["invoice"]["payments"] == [
        {"amount": {"amount": 4_000}, "method": "CASH", "reference": None}
    ]
    # Payments and refunds are read once, with the invoice's lock, never again for the answer.
    read = _tables_read(counter)
    assert read.count("payments") == 1, counter.queries()
    assert read.count("refunds") == 1, counter.queries()
    # auth, lock (+ its payments and refunds), the key's INSERT … ON CONFLICT, the payment,
    # the invoice's UPDATE, its event and its alert: 12 before.
    assert counter.count <= 9, counter.queries()


async def test_send_builds_its_payload_from_what_it_wrote(
    api: Api, world: World, count_statements: Callable[[], StatementCounter]
) -> None:
    token = await world.token(world.provider, "PROVIDER")
    await mutate(api, SEND_SHORT, token, clientId=client_gid(world.c1), description="a", amount=1)

    counter = count_statements()
    payload = await mutate(
        api, SEND_SHORT, token, clientId=client_gid(world.c1), description="Session",
        amount=7_000, idempotencyKey="send-once",
    )  # fmt: skip

    assert payload["errors"] == []
    invoice = payload["invoice"]
    assert (invoice["number"], invoice["status"]) == ("INV-000002", "UNPAID")
    assert invoice["amountDue"] == {"amount": 7_000}
    assert (invoice["payments"], invoice["refunds"]) == ([], [])
    assert (invoice["canRecordPayment"], invoice["canRefund"]) == (True, False)
    read = _tables_read(counter)
    assert "payments" not in read, counter.queries()
    assert "refunds" not in read, counter.queries()
    # auth, one SELECT for the key and who may send to whom, the practice's lock drawing the
    # number, the invoice, its event, its alert and its key: 12 before.
    assert counter.count <= 7, counter.queries()


async def test_a_payload_after_an_earlier_change_in_the_same_operation_is_the_new_one(
    api: Api, world: World
) -> None:
    """Mutation root fields run one after the other; the second answers after both changes."""
    token = await world.token(world.provider, "PROVIDER")
    invoice_id = await world.invoice(amount=10_000)

    data = await api.data(TWO_PAYMENTS, {"id": gid("Invoice", invoice_id)}, token)

    first, second = data["first"]["invoice"], data["second"]["invoice"]
    assert first["amountPaid"] == {"amount": 1_000}
    assert [p["amount"]["amount"] for p in first["payments"]] == [1_000]
    assert second["amountPaid"] == {"amount": 3_500}
    assert second["amountDue"] == {"amount": 6_500}
    assert [p["amount"]["amount"] for p in second["payments"]] == [1_000, 2_500]


async def test_ten_identical_concurrent_sends_send_once(api: Api, world: World) -> None:
    """The key is looked up before the practice's lock and written after the invoice: a send
    whose key was written meanwhile is rolled back and answers the first result."""
    token = await world.token(world.provider, "PROVIDER")
    fields = {
        "clientId": client_gid(world.c1),
        "description": "Session",
        "amount": 5_000,
        "idempotencyKey": "burst",
    }

    results = await asyncio.gather(*(mutate(api, SEND, token, **fields) for _ in range(10)))

    assert all(r["errors"] == [] for r in results)
    assert {r["invoice"]["number"] for r in results} == {"INV-000001"}
    assert await invoice_count(world) == 1
    after = await mutate(api, SEND, token, clientId=client_gid(world.c2), description="x", amount=1)
    assert after["invoice"]["number"] == "INV-000002"


async def test_replayed_and_refused_sends_draw_no_number(api: Api, world: World) -> None:
    token = await world.token(world.provider, "PROVIDER")
    keyed = {
        "clientId": client_gid(world.c1),
        "description": "Session",
        "amount": 5_000,
        "idempotencyKey": "k",
    }
    assert (await mutate(api, SEND, token, **keyed))["invoice"]["number"] == "INV-000001"
    replay = await mutate(api, SEND, token, **keyed)
    assert (replay["errors"], replay["invoice"]["number"]) == ([], "INV-000001")
    conflict = await mutate(api, SEND, token, **(keyed | {"amount": 6_000}))
    assert [e["code"] for e in conflict["errors"]] == ["CONFLICT"]
    invalid = await mutate(
        api, SEND, token, clientId=client_gid(world.c1), description=" ", amount=1
    )
    assert [e["code"] for e in invalid["errors"]] == ["VALIDATION"]
    not_mine = await mutate(
        api, SEND, token, clientId=client_gid(world.c3), description="x", amount=1
    )
    assert [e["code"] for e in not_mine["errors"]] == ["NOT_FOUND"]

    after = await mutate(api, SEND, token, clientId=client_gid(world.c2), description="x", amount=1)

    assert (after["errors"], after["invoice"]["number"]) == ([], "INV-000002")
