"""Loading a page's nested data up front: when a list (or one invoice) resolves, one batched,
scoped statement per relation its selection asks for — the loaders' own batches, so the scope
stays in the SQL of each — before its fields resolve. Those fields then answer from what the
loaders hold (`known`) without awaiting anything, which graphql-core completes far more cheaply
than a coroutine per field; a field whose data was not preloaded loads it as before."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, TypeVar, cast

from strawberry.types.nodes import Selection

from models import Invoice
from models.invoice import Operation, amounts_of
from models.permissions import can
from schema.context import Info, viewer_of
from schema.loaders import MISSING, Missing
from schema.rows import EventLine, PaymentLine, RefundLine

T = TypeVar("T")

# Fields of an invoice that need its payments and refunds (the amounts, the capabilities).
_AMOUNT_FIELDS = frozenset(
    {
        "amountPaid",
        "amountRefunded",
        "amountDue",
        "refundableAmount",
        "payments",
        "refunds",
        "canPay",
        "canRecordPayment",
        "canForgive",
        "canVoid",
        "canRefund",
    }
)


def later(awaitable: Awaitable[T]) -> T:
    """The value a synchronous resolver answers when its data must still be loaded: graphql-core
    awaits whatever awaitable a resolver returns, so the field is declared with its value's type
    (for strawberry's schema) and answers at once when the data is there."""
    return cast(T, awaitable)


def _names(selections: Iterable[Selection], into: set[str]) -> set[str]:
    for selection in selections:
        name = getattr(selection, "name", None)
        if name is not None and not hasattr(selection, "type_condition"):
            into.add(name)
        _names(selection.selections, into)
    return into


def selected_names(info: Info) -> frozenset[str]:
    """Every field name selected anywhere under the current field (fragments included;
    directives not evaluated: a skipped field only loads what it would have shown)."""
    return frozenset(_names(info.selected_fields, set()))


def top_names(info: Info) -> frozenset[str]:
    """The field names selected directly on the current field's type (through fragments)."""
    found: set[str] = set()
    pending: list[Selection] = [s for f in info.selected_fields for s in f.selections]
    while pending:
        selection = pending.pop()
        if hasattr(selection, "type_condition"):  # a fragment: its fields are at this level
            pending.extend(selection.selections)
        else:
            found.add(selection.name)
    return frozenset(found)


async def preload_invoices(info: Info, invoices: Sequence[Invoice], names: frozenset[str]) -> None:
    """What the fields `names` of `invoices` (one practice's) need, loaded in as few rounds as
    the relations allow: their own rows, then the people they name."""
    if not invoices:
        return
    loaders = info.context.loaders
    ids = [invoice.id for invoice in invoices]
    clients = list(dict.fromkeys(invoice.client_id for invoice in invoices))
    providers = list(dict.fromkeys(invoice.provider_id for invoice in invoices))
    practice_id = invoices[0].practice_id
    first: list[Awaitable[Any]] = []
    if names & _AMOUNT_FIELDS:
        first += [loaders.payments.load_many(ids), loaders.refunds.load_many(ids)]
    if "history" in names:
        first.append(loaders.events.load_many(ids))
    if "overdue" in names or "balance" in names:
        first.append(loaders.practices.load(practice_id))
    if "client" in names and "balance" in names:
        first.append(loaders.balances.load_many(clients))
    if "client" in names and "providers" in names:
        first.append(loaders.providers_of_client.load_many(clients))
    if "roles" in names:
        first.append(loaders.roles.load_many([*providers, *clients]))
    await asyncio.gather(*first)
    people: list[int] = []
    if "client" in names:
        people += clients
    if "provider" in names:
        people += providers
    if "recordedBy" in names:
        people += _named(loaders.payments.known(i) for i in ids)
    if "createdBy" in names:
        people += _named(loaders.refunds.known(i) for i in ids)
    if "actor" in names:
        people += _named(loaders.events.known(i) for i in ids)
    then: list[Awaitable[Any]] = []
    if people:
        then.append(loaders.people.load_many(list(dict.fromkeys(people))))
    if "canPay" in names and _payable(info, invoices):
        then.append(loaders.processors.load(practice_id))
    await asyncio.gather(*then)


def _payable(info: Info, invoices: Sequence[Invoice]) -> bool:
    """Whether the viewer may pay one of `invoices` (whose amounts are loaded) by card: only
    then does `canPay` read the practice's processors."""
    viewer = viewer_of(info)
    loaders = info.context.loaders
    for invoice in invoices:
        payments, refunds = loaders.payments.known(invoice.id), loaders.refunds.known(invoice.id)
        if payments is MISSING or refunds is MISSING:
            return True  # not known: canPay will load what it needs
        if can(viewer, invoice, amounts_of(invoice, payments, refunds), Operation.PAY):
            return True
    return False


def _named(groups: Iterable[Sequence[PaymentLine | RefundLine | EventLine] | Missing]) -> list[int]:
    """The people the loaded rows name: who recorded a payment, made a refund, acted."""
    found: list[int] = []
    for group in groups:
        if group is MISSING:
            continue
        for row in group:
            if isinstance(row, PaymentLine):
                person = row.recorded_by_id
            elif isinstance(row, RefundLine):
                person = row.created_by_id
            else:
                person = row.actor_id
            if person is not None:
                found.append(person)
    return found
