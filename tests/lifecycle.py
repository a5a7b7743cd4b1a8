"""Operation strings and small helpers shared by the invoice lifecycle tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from models import Alert, IdempotencyKey, Invoice, InvoiceEvent, Payment, Refund
from schema.node import encode_id
from tests.api import Api
from tests.factories import Person, World

INVOICE_FIELDS = """
  id number description status
  client { id name } provider { id name }
  subtotal { amount currency } tax { amount } total { amount formatted }
  amountPaid { amount } amountRefunded { amount } amountDue { amount }
  refundableAmount { amount }
  canPay canRecordPayment canForgive canVoid canRefund
  payments { amount { amount } method reference }
  refunds { amount { amount } reason }
  history { action actor { name } amount { amount } note }
"""

SEND = (
    "mutation($input: SendInvoiceInput!) { sendInvoice(input: $input) {"
    f" invoice {{ {INVOICE_FIELDS} dueDate }} errors {{ code field message }} }} }}"
)
RECORD = (
    "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) {"
    f" invoice {{ {INVOICE_FIELDS} }} errors {{ code field message }} }} }}"
)
FORGIVE = (
    "mutation($input: InvoiceActionInput!) { forgiveInvoice(input: $input) {"
    f" invoice {{ {INVOICE_FIELDS} }} errors {{ code field message }} }} }}"
)
VOID = (
    "mutation($input: InvoiceActionInput!) { voidInvoice(input: $input) {"
    f" invoice {{ {INVOICE_FIELDS} }} errors {{ code field message }} }} }}"
)
REFUND = (
    "mutation($input: RefundInvoiceInput!) { refundInvoice(input: $input) {"
    f" invoice {{ {INVOICE_FIELDS} }} errors {{ code field message }} }} }}"
)
INVOICE = f"query($id: ID!) {{ invoice(id: $id) {{ {INVOICE_FIELDS} }} }}"


def gid(type_name: str, pk: int) -> str:
    return str(encode_id(type_name, pk))


async def mutate(api: Api, operation: str, token: str, **input_fields: Any) -> dict[str, Any]:
    """The payload (invoice + errors) of one lifecycle mutation."""
    data = await api.data(operation, {"input": input_fields}, token=token)
    payload: dict[str, Any] = next(iter(data.values()))
    return payload


async def snapshot(world: World, invoice_id: int) -> dict[str, Any]:
    """Everything a change could touch, to assert that a refused request changed nothing."""
    async with world.db.reader() as session:
        invoice = await session.get_one(Invoice, invoice_id)

        async def count(model: Any) -> int:
            return int(
                (
                    await session.execute(
                        select(func.count())
                        .select_from(model)
                        .where(model.invoice_id == invoice_id)
                    )
                ).scalar_one()
            )

        return {
            "status": invoice.status,
            "version": invoice.version,
            "payments": await count(Payment),
            "refunds": await count(Refund),
            "events": await count(InvoiceEvent),
            "alerts": await count(Alert),
            "keys": int(
                (
                    await session.execute(
                        select(func.count())
                        .select_from(IdempotencyKey)
                        .where(IdempotencyKey.invoice_id == invoice_id)
                    )
                ).scalar_one()
            ),
        }


async def invoice_count(world: World) -> int:
    async with world.db.reader() as session:
        return int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(Invoice)
                    .where(Invoice.practice_id == world.practice_id)
                )
            ).scalar_one()
        )


def client_gid(person: Person) -> str:
    return gid("Client", person.id)
