"""Loading a page's nested data up front: when a list (or one invoice) resolves, one batched,
scoped statement per relation its selection asks for — the loaders' own batches, so the scope
stays in the SQL of each — before its fields resolve. Those fields then answer from what the
loaders hold (`known`) without awaiting anything, which graphql-core completes far more cheaply
than a coroutine per field; a field whose data was not preloaded loads it as before."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)

from models import Invoice
from models.invoice import Operation, amounts_of
from models.permissions import can
from schema.context import Info, viewer_of
from schema.loaders import MISSING, Missing, Named
from schema.rows import EventLine, PaymentLine, PersonRow, RefundLine

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


# What the selection under a field asks for, kept by the field's nodes in the parsed document
# (schema/documents.py keeps a document's nodes from one request to the next): converting the
# selection to strawberry's `selected_fields` cost a tenth of an `invoice(id:)`. Entries hold
# their nodes, so an id is never another node's while its entry lives; past the bound the
# whole table is dropped (documents come back and are walked again).
_SELECTIONS_KEPT = 2048
_selections: dict[tuple[int, ...], tuple[tuple[FieldNode, ...], Selected]] = {}


@dataclass(frozen=True, slots=True)
class Selected:
    """The field names selected under one field: anywhere below it (`everywhere`, with the
    field's own name) and directly on its type (`top`), through fragments."""

    everywhere: frozenset[str]
    top: frozenset[str]


def _walk(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    everywhere: set[str],
    top: set[str] | None,
) -> None:
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            everywhere.add(selection.name.value)
            if top is not None:
                top.add(selection.name.value)
            _walk(selection.selection_set, fragments, everywhere, None)
        elif isinstance(selection, InlineFragmentNode):  # its fields are at this level
            _walk(selection.selection_set, fragments, everywhere, top)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                _walk(fragment.selection_set, fragments, everywhere, top)


def selection_of(info: Info) -> Selected:
    """The names selected under the current field (directives not evaluated: a skipped field
    only loads what it would have shown)."""
    raw = info._raw_info
    nodes = tuple(raw.field_nodes)
    key = tuple(map(id, nodes))
    kept = _selections.get(key)
    if kept is not None and all(a is b for a, b in zip(kept[0], nodes, strict=True)):
        return kept[1]
    everywhere: set[str] = set()
    top: set[str] = set()
    for node in nodes:
        everywhere.add(node.name.value)
        _walk(node.selection_set, raw.fragments, everywhere, top)
    selected = Selected(frozenset(everywhere), frozenset(top))
    if len(_selections) >= _SELECTIONS_KEPT:
        _selections.clear()
    _selections[key] = (nodes, selected)
    return selected


def selected_names(info: Info) -> frozenset[str]:
    """Every field name selected anywhere under the current field (fragments included)."""
    return selection_of(info).everywhere


def top_names(info: Info) -> frozenset[str]:
    """The field names selected directly on the current field's type (through fragments)."""
    return selection_of(info).top


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
    amounts, history = bool(names & _AMOUNT_FIELDS), "history" in names
    lines_first = amounts or history
    if lines_first:  # one statement for the invoices' own rows and the people they name
        named = Named(
            clients="client" in names,
            providers="provider" in names,
            recorded_by="recordedBy" in names,
            created_by="createdBy" in names,
            actors="actor" in names,
        )
        lines = loaders.load_lines(
            ids, payments=amounts, refunds=amounts, events=history, named=named
        )
        first.append(lines)
    if "overdue" in names or "balance" in names:
        first.append(loaders.practices.load(practice_id))
    if "client" in names and "balance" in names:
        first.append(loaders.balances.load_many(clients))
    if "client" in names and "providers" in names:
        first.append(loaders.providers_of_client.load_many(clients))
    if "roles" in names:
        first.append(loaders.roles.load_many([*providers, *clients]))
    # The people the lines' statement read (None: not read, the people loader reads them).
    seen: dict[int, PersonRow] | None = (await asyncio.gather(*first))[0] if lines_first else None
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
    if people and seen is not None:
        for person in dict.fromkeys(people):  # whom it did not return, the viewer may not see
            loaders.people.prime(person, seen.get(person))
    elif people:
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
