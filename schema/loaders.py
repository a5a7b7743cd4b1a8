"""Per-request dataloaders: each batch is one SQL statement on the request's connection, scoped
to the viewer in the SQL itself, so a nested field can never show what the root would hide.

What a loader has loaded it also answers at once (`known`): a field whose data a list preloaded
(schema/preload.py) answers without awaiting anything."""

from __future__ import annotations

import enum
import functools
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiodataloader import DataLoader
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Executable,
    Select,
    String,
    bindparam,
    exists,
    func,
    literal_column,
    null,
    or_,
    select,
    type_coerce,
    union,
    union_all,
)

from adapters.database import Database
from models import (
    ClientBillingProvider,
    Invoice,
    InvoiceEvent,
    Membership,
    Payment,
    PaymentProcessorConfig,
    Practice,
    ProviderClient,
    Refund,
    User,
)
from models.enums import InvoiceAction, InvoiceStatus, PaymentMethodKind, Role
from models.invoice import amount_due, paid_on_invoice
from models.scope import Viewer, visible_client, visible_invoices
from schema.pagination import Page
from schema.reads import InvoiceQuery, invoice_pages_by_client
from schema.rows import (
    LINE_COLUMNS,
    PERSON_COLUMNS,
    EventLine,
    PaymentLine,
    PersonRow,
    RefundLine,
    people,
)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Missing(enum.Enum):
    """Not loaded yet (a loaded value may be None: nothing in the viewer's view)."""

    MISSING = enum.auto()


MISSING = Missing.MISSING

# The keys of a batch, bound when its statement runs (the statement itself is built once per
# viewer, `_scoped`).
KEYS: BindParameter[Any] = bindparam("keys", expanding=True)
# Statements kept built, each for one loader and one viewer's scope: building one (the scope's
# conditions, its subqueries) cost as much Python time as running it.
STATEMENTS_KEPT = 4096
Build = Callable[[Viewer], Executable]


@functools.lru_cache(maxsize=STATEMENTS_KEPT)
def _scoped(build: Build, user_id: int, practice_id: int, role: Role) -> Executable:
    # The scope is the viewer's user, practice and role; a session id plays no part in it.
    return build(Viewer(user_id=user_id, practice_id=practice_id, role=role, session_id=0))


def scoped(build: Build, viewer: Viewer) -> Executable:
    """The statement `build` makes for `viewer`, built once (its keys bound at each run)."""
    return _scoped(build, viewer.user_id, viewer.practice_id, viewer.role)


class _Loader(DataLoader[K, V], ABC):
    def __init__(self, db: Database, viewer: Viewer) -> None:
        super().__init__()
        self.db = db
        self.viewer = viewer
        self._known: dict[K, V] = {}

    async def rows(self, statement: Executable, keys: Sequence[K] | None = None) -> Sequence[Any]:
        """Rows of columns (`keys`: the batch's keys, for a statement that binds KEYS)."""
        parameters = None if keys is None else {"keys": list(keys)}
        return (await self.db.execute(statement, parameters)).all()

    async def objects(
        self, statement: Executable, keys: Sequence[K] | None = None
    ) -> Sequence[Any]:
        """Rows of ORM objects, through a session on the request's connection."""
        parameters = None if keys is None else {"keys": list(keys)}
        async with self.db.reader() as session:
            return (await session.execute(statement, parameters)).all()

    @abstractmethod
    async def fetch(self, keys: Sequence[K]) -> list[V]:
        """The values of `keys`, in their order: one scoped statement."""

    async def batch_load_fn(self, keys: Sequence[K]) -> list[V]:
        values = await self.fetch(keys)
        self._known.update(zip(keys, values, strict=True))
        return values

    def prime(self, key: K, value: V) -> _Loader[K, V]:
        self._known.setdefault(key, value)
        super().prime(key, value)
        return self

    def clear(self, key: K) -> _Loader[K, V]:
        """Forgets `key`, here and in the DataLoader's cache (a mutation changed it)."""
        self._known.pop(key, None)
        super().clear(key)
        return self

    def known(self, key: K) -> V | Missing:
        """The value of `key` if a batch already loaded it, else MISSING."""
        return self._known.get(key, MISSING)


def _by_key(keys: Sequence[K], rows: Sequence[Any], key: Callable[[Any], K]) -> list[Any]:
    found = {key(row): row for row in rows}
    return [found.get(k) for k in keys]


def _grouped(keys: Sequence[K], rows: Sequence[Any], key: Callable[[Any], K]) -> list[list[Any]]:
    groups: dict[K, list[Any]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return [groups.get(k, []) for k in keys]


class InvoicesByIdLoader(_Loader[int, Invoice | None]):
    @staticmethod
    def statement(viewer: Viewer) -> Executable:
        return select(Invoice).where(Invoice.id.in_(KEYS), visible_invoices(viewer))

    async def fetch(self, ids: Sequence[int]) -> list[Invoice | None]:
        rows = await self.objects(scoped(self.statement, self.viewer), ids)
        return _by_key(ids, [r[0] for r in rows], lambda i: i.id)


class ClientsByIdLoader(_Loader[int, PersonRow | None]):
    """Users who are clients of the practice within the viewer's view."""

    @staticmethod
    def statement(viewer: Viewer) -> Executable:
        return select(*PERSON_COLUMNS).where(User.id.in_(KEYS), visible_client(viewer, User.id))

    async def fetch(self, ids: Sequence[int]) -> list[PersonRow | None]:
        rows = await self.rows(scoped(self.statement, self.viewer), ids)
        return _by_key(ids, people(rows), lambda u: u.id)


def visible_people(viewer: Viewer) -> ColumnElement[bool]:
    """The condition on `users` rows the viewer may name (see `PeopleByIdLoader`)."""
    staff = select(Membership.user_id).where(
        Membership.practice_id == viewer.practice_id,
        Membership.role.in_((Role.ADMIN, Role.PROVIDER)),
    )
    on_invoice = exists().where(
        or_(Invoice.client_id == User.id, Invoice.provider_id == User.id),
        visible_invoices(viewer),
    )
    return or_(
        User.id == viewer.user_id,
        User.id.in_(staff),
        visible_client(viewer, User.id),
        on_invoice,
    )


class PeopleByIdLoader(_Loader[int, PersonRow | None]):
    """Users the viewer may name: themselves, the practice's staff (ADMIN and PROVIDER members),
    the clients within their view, and anyone on a visible invoice (a client or provider whose
    membership has since ended still shows on old invoices). Other clients stay hidden: a
    client never learns who else is treated here."""

    @staticmethod
    def statement(viewer: Viewer) -> Executable:
        return select(*PERSON_COLUMNS).where(User.id.in_(KEYS), visible_people(viewer))

    async def fetch(self, ids: Sequence[int]) -> list[PersonRow | None]:
        rows = await self.rows(scoped(self.statement, self.viewer), ids)
        return _by_key(ids, people(rows), lambda u: u.id)


class _ByVisibleInvoice(_Loader[int, list[V]]):
    """Rows of an invoice's own table (`model`) as `line`s, oldest first."""

    model: Any
    line: Any

    @classmethod
    def statement(cls, viewer: Viewer) -> Executable:
        model = cls.model
        return (
            select(*LINE_COLUMNS[cls.line])
            .join(Invoice, Invoice.id == model.invoice_id)
            .where(model.invoice_id.in_(KEYS), visible_invoices(viewer))
            .order_by(model.id)
        )

    async def fetch(self, invoice_ids: Sequence[int]) -> list[list[V]]:
        line = self.line
        rows = await self.rows(scoped(self.statement, self.viewer), invoice_ids)
        lines = [line(*row) for row in rows]
        return _grouped(invoice_ids, lines, lambda r: r.invoice_id)


class PaymentsByInvoiceIdLoader(_ByVisibleInvoice[PaymentLine]):
    model, line = Payment, PaymentLine


class RefundsByInvoiceIdLoader(_ByVisibleInvoice[RefundLine]):
    model, line = Refund, RefundLine


class EventsByInvoiceIdLoader(_ByVisibleInvoice[EventLine]):
    model, line = InvoiceEvent, EventLine


# One statement for an invoice's payments, refunds and history at once (a list asks for two or
# three of them: one round trip instead of each its own). Each part keeps the scope in its SQL;
# the columns of the three tables line up as below, enums as their stored text.
_LINE_KINDS: tuple[type[_ByVisibleInvoice[Any]], ...] = (
    PaymentsByInvoiceIdLoader,
    RefundsByInvoiceIdLoader,
    EventsByInvoiceIdLoader,
)


_LINE_NAMES = ("id", "invoice_id", "amount", "person_id", "at", "text", "reference", "code")


def _line_part(kind: int, viewer: Viewer) -> Select[Any]:
    nothing = null()
    if kind == 0:
        columns: tuple[Any, ...] = (
            Payment.id,
            Payment.invoice_id,
            Payment.amount,
            Payment.recorded_by_id,
            Payment.received_at,
            Payment.reference,
            Payment.processor_reference,
            type_coerce(Payment.method, String),
        )
    elif kind == 1:
        columns = (
            Refund.id,
            Refund.invoice_id,
            Refund.amount,
            Refund.created_by_id,
            Refund.created_at,
            Refund.reason,
            nothing,
            nothing,
        )
    else:
        columns = (
            InvoiceEvent.id,
            InvoiceEvent.invoice_id,
            InvoiceEvent.amount,
            InvoiceEvent.actor_id,
            InvoiceEvent.at,
            InvoiceEvent.note,
            nothing,
            type_coerce(InvoiceEvent.action, String),
        )
    model = _LINE_KINDS[kind].model
    labelled = (c.label(n) for c, n in zip(columns, _LINE_NAMES, strict=True))
    return (
        select(literal_column(str(kind)).label("kind"), *labelled)
        .join(Invoice, Invoice.id == model.invoice_id)
        .where(model.invoice_id.in_(KEYS), visible_invoices(viewer))
    )


@dataclass(frozen=True, slots=True)
class Named:
    """Which people of a list of invoices its selection shows: their clients, providers, who
    recorded their payments, made their refunds, acted in their history."""

    clients: bool = False
    providers: bool = False
    recorded_by: bool = False
    created_by: bool = False
    actors: bool = False

    def __bool__(self) -> bool:
        return any((self.clients, self.providers, self.recorded_by, self.created_by, self.actors))


_PEOPLE = 3  # the kind of the people's rows in the lines' statement


def _people_part(named: Named, viewer: Viewer) -> Select[Any]:
    """The people the invoices (KEYS) name, as the people loader's rule lets the viewer see
    them, in the lines' columns: id, name as `text`, email as `reference`."""
    ids: list[Select[Any]] = []
    on_invoice: tuple[tuple[bool, Any], ...] = (
        (named.clients, Invoice.client_id),
        (named.providers, Invoice.provider_id),
    )
    for asked, column in on_invoice:
        if asked:
            ids.append(select(column).where(Invoice.id.in_(KEYS), visible_invoices(viewer)))
    on_lines: tuple[tuple[bool, Any, Any], ...] = (
        (named.recorded_by, Payment, Payment.recorded_by_id),
        (named.created_by, Refund, Refund.created_by_id),
        (named.actors, InvoiceEvent, InvoiceEvent.actor_id),
    )
    for asked, model, column in on_lines:
        if asked:
            ids.append(
                select(column)
                .join(Invoice, Invoice.id == model.invoice_id)
                .where(model.invoice_id.in_(KEYS), visible_invoices(viewer))
            )
    nothing = null()
    columns: tuple[Any, ...] = (User.id, *[nothing] * 4, User.name, User.email, nothing)
    labelled = [c.label(n) for c, n in zip(columns, _LINE_NAMES, strict=True)]
    return select(literal_column(str(_PEOPLE)).label("kind"), *labelled).where(
        User.id.in_(union(*ids)), visible_people(viewer)
    )


@functools.cache
def _lines_statement(kinds: tuple[int, ...], named: Named) -> Build:
    """The statement of `kinds`' lines, oldest first within each kind, and of the people
    `named` (one build function per combination, so that `scoped` keeps its statements)."""

    def build(viewer: Viewer) -> Executable:
        parts = [_line_part(kind, viewer) for kind in kinds]
        if named:
            parts.append(_people_part(named, viewer))
        lines = union_all(*parts).subquery()
        return select(lines).order_by(lines.c.kind, lines.c.id)

    return build


def _line(row: Any) -> PaymentLine | RefundLine | EventLine:
    if row.kind == 0:
        return PaymentLine(
            row.id,
            row.invoice_id,
            row.amount,
            PaymentMethodKind(row.code),
            row.text,
            row.reference,
            row.at,
            row.person_id,
        )
    if row.kind == 1:
        return RefundLine(row.id, row.invoice_id, row.amount, row.text, row.at, row.person_id)
    return EventLine(
        row.id, row.invoice_id, InvoiceAction(row.code), row.person_id, row.at, row.amount, row.text
    )


class ProvidersByClientIdLoader(_Loader[int, list[PersonRow]]):
    async def fetch(self, client_ids: Sequence[int]) -> list[list[PersonRow]]:
        rows = await self.rows(
            select(ProviderClient.client_id, *PERSON_COLUMNS)
            .join(User, User.id == ProviderClient.provider_id)
            .where(
                ProviderClient.practice_id == self.viewer.practice_id,
                ProviderClient.client_id.in_(client_ids),
                visible_client(self.viewer, ProviderClient.client_id),
            )
            .order_by(User.name, User.id)
        )
        return [people(group) for group in _grouped(client_ids, rows, lambda r: r[0])]


class BalanceByClientIdLoader(_Loader[int, int]):
    """What each client still owes: total minus payments over their UNPAID invoices."""

    async def fetch(self, client_ids: Sequence[int]) -> list[int]:
        rows = await self.rows(
            select(Invoice.client_id, func.sum(amount_due(paid_on_invoice())))
            .where(
                Invoice.client_id.in_(client_ids),
                Invoice.status == InvoiceStatus.UNPAID,
                visible_invoices(self.viewer),
            )
            .group_by(Invoice.client_id)
        )
        totals = {client: int(owed or 0) for client, owed in rows}
        return [totals.get(k, 0) for k in client_ids]


class RolesByUserIdLoader(_Loader[int, list[Role]]):
    """The roles each user holds in the viewer's practice."""

    async def fetch(self, user_ids: Sequence[int]) -> list[list[Role]]:
        rows = await self.rows(
            select(Membership.user_id, Membership.role).where(
                Membership.practice_id == self.viewer.practice_id,
                Membership.user_id.in_(user_ids),
            )
        )
        grouped = _grouped(user_ids, rows, lambda r: r[0])
        return [sorted((Role(r[1]) for r in g), key=list(Role).index) for g in grouped]


class PracticesByIdLoader(_Loader[int, Practice | None]):
    """Only the viewer's own practice is ever visible."""

    async def fetch(self, ids: Sequence[int]) -> list[Practice | None]:
        rows = await self.objects(
            select(Practice).where(Practice.id.in_(ids), Practice.id == self.viewer.practice_id)
        )
        return _by_key(ids, [r[0] for r in rows], lambda p: p.id)


class BillingProvidersByPracticeIdLoader(_Loader[int, list[PersonRow]]):
    """Providers assigned to each practice's Client Billing service."""

    async def fetch(self, ids: Sequence[int]) -> list[list[PersonRow]]:
        rows = await self.rows(
            select(ClientBillingProvider.practice_id, *PERSON_COLUMNS)
            .join(User, User.id == ClientBillingProvider.user_id)
            .where(
                ClientBillingProvider.practice_id.in_(ids),
                ClientBillingProvider.practice_id == self.viewer.practice_id,
            )
            .order_by(User.name, User.id)
        )
        return [people(g) for g in _grouped(ids, rows, lambda r: r[0])]


class ProcessorsByPracticeIdLoader(_Loader[int, list[PaymentProcessorConfig]]):
    async def fetch(self, ids: Sequence[int]) -> list[list[PaymentProcessorConfig]]:
        rows = await self.objects(
            select(PaymentProcessorConfig)
            .where(
                PaymentProcessorConfig.practice_id.in_(ids),
                PaymentProcessorConfig.practice_id == self.viewer.practice_id,
                PaymentProcessorConfig.removed_at.is_(None),
            )
            .order_by(PaymentProcessorConfig.id)
        )
        return _grouped(ids, [r[0] for r in rows], lambda p: p.practice_id)


InvoicePageKey = tuple[int, InvoiceQuery, int, str | None]  # client, filter, limit, after


class InvoicePagesByClientLoader(_Loader[InvoicePageKey, Page[Invoice]]):
    """`Client.invoices` for every client of a list at once: keys that share the filter and
    paging arguments are answered by one pair of statements."""

    async def fetch(self, keys: Sequence[InvoicePageKey]) -> list[Page[Invoice]]:
        groups: dict[tuple[InvoiceQuery, int, str | None], list[int]] = defaultdict(list)
        for client_id, query, limit, after in keys:
            groups[(query, limit, after)].append(client_id)
        pages: dict[InvoicePageKey, Page[Invoice]] = {}
        for (query, limit, after), client_ids in groups.items():
            found = await invoice_pages_by_client(
                self.db, self.viewer, query, client_ids, limit, after
            )
            for client_id, page in zip(client_ids, found, strict=True):
                pages[(client_id, query, limit, after)] = page
        return [pages[key] for key in keys]


class Loaders:
    """All loaders of one request (created on first use by `Context.loaders`), each created
    when first used: a request uses a few of them."""

    def __init__(self, db: Database, viewer: Viewer) -> None:
        self.db = db
        self.viewer = viewer

    @functools.cached_property
    def invoices(self) -> InvoicesByIdLoader:
        return InvoicesByIdLoader(self.db, self.viewer)

    @functools.cached_property
    def clients(self) -> ClientsByIdLoader:
        return ClientsByIdLoader(self.db, self.viewer)

    @functools.cached_property
    def people(self) -> PeopleByIdLoader:
        return PeopleByIdLoader(self.db, self.viewer)

    @functools.cached_property
    def payments(self) -> PaymentsByInvoiceIdLoader:
        return PaymentsByInvoiceIdLoader(self.db, self.viewer)

    @functools.cached_property
    def refunds(self) -> RefundsByInvoiceIdLoader:
        return RefundsByInvoiceIdLoader(self.db, self.viewer)

    @functools.cached_property
    def events(self) -> EventsByInvoiceIdLoader:
        return EventsByInvoiceIdLoader(self.db, self.viewer)

    @functools.cached_property
    def providers_of_client(self) -> ProvidersByClientIdLoader:
        return ProvidersByClientIdLoader(self.db, self.viewer)

    @functools.cached_property
    def balances(self) -> BalanceByClientIdLoader:
        return BalanceByClientIdLoader(self.db, self.viewer)

    @functools.cached_property
    def roles(self) -> RolesByUserIdLoader:
        return RolesByUserIdLoader(self.db, self.viewer)

    @functools.cached_property
    def practices(self) -> PracticesByIdLoader:
        return PracticesByIdLoader(self.db, self.viewer)

    @functools.cached_property
    def billing_providers(self) -> BillingProvidersByPracticeIdLoader:
        return BillingProvidersByPracticeIdLoader(self.db, self.viewer)

    @functools.cached_property
    def processors(self) -> ProcessorsByPracticeIdLoader:
        return ProcessorsByPracticeIdLoader(self.db, self.viewer)

    @functools.cached_property
    def invoice_pages(self) -> InvoicePagesByClientLoader:
        return InvoicePagesByClientLoader(self.db, self.viewer)

    async def load_lines(
        self,
        invoice_ids: Sequence[int],
        *,
        payments: bool,
        refunds: bool,
        events: bool,
        named: Named = Named(),
    ) -> dict[int, PersonRow] | None:
        """The payments, refunds and history (those asked for) of `invoice_ids`, given to their
        loaders, and in the same statement the people `named` by them whom the viewer may see
        (None: not read)."""
        ids = list(dict.fromkeys(invoice_ids))
        wanted = tuple(
            kind
            for kind, asked in enumerate((payments, refunds, events))
            if asked and any(self._line_loaders[kind].known(i) is MISSING for i in ids)
        )
        if not wanted:
            return None
        statement = scoped(_lines_statement(wanted, named), self.viewer)
        rows = await self.payments.rows(statement, ids)
        found: dict[tuple[int, int], list[Any]] = defaultdict(list)
        people: dict[int, PersonRow] = {}
        for row in rows:
            if row.kind == _PEOPLE:
                people[row.id] = PersonRow(row.id, row.text, row.reference)
            else:
                found[(row.kind, row.invoice_id)].append(_line(row))
        for kind in wanted:
            loader = self._line_loaders[kind]
            for invoice_id in ids:
                loader.prime(invoice_id, found.get((kind, invoice_id), []))
        return people if named else None

    @property
    def _line_loaders(self) -> tuple[_ByVisibleInvoice[Any], ...]:
        return (self.payments, self.refunds, self.events)

    @classmethod
    def create(cls, db: Database, viewer: Viewer) -> Loaders:
        return cls(db, viewer)
