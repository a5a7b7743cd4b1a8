"""Reports as SQL aggregates: billing totals, aging of unpaid balances, client statements and
the invoice export.

Every figure is a SUM/COUNT computed by the database; Python only builds the statements and
reads their (few) rows. Dates are calendar days in the practice's time zone: their boundaries
are turned into UTC instants here, in Python, so the SQL only compares timestamps and runs the
same on SQLite and PostgreSQL (no database time-zone functions).

Definitions, for the invoices of a report (`paid` = sum of the invoice's payment rows,
`refunded` = sum of its refund rows; refunds never lower `paid`):
    invoiced    = sum of totals of the invoices that are not VOID (tax included)
    collected   = sum of `paid` (gross: payments received, refunds not deducted)
    refunded    = sum of `refunded`
    outstanding = sum of total - paid over UNPAID invoices (their amount due)
    forgiven    = sum of total - paid over FORGIVEN invoices (the written-off balance)
    voided      = sum of totals of VOID invoices (never paid, so outside the identity)
Since PAID and REFUNDED invoices were paid in full and VOID ones never paid,
invoiced = collected + outstanding + forgiven, to the cent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    SQLColumnExpression,
    String,
    and_,
    case,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import aliased

from models.enums import InvoiceStatus
from models.errors import validation
from models.invoice import Invoice, Payment, Refund
from models.scope import Viewer, visible_invoices
from models.user import User

# Reports cover at most five years (leap days included): bounded work and at most 61 months.
MAX_PERIOD_DAYS = 5 * 365 + 2
# Far enough from datetime's limits that a day ± the largest UTC offset never overflows.
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(9998, 12, 31)

# A SELECT of any columns.
Rows: TypeAlias = Select[*tuple[Any, ...]]


def midnight_utc(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which `day` begins in `zone`."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def today_in(zone: ZoneInfo, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(zone).date()


def _check_in_range(day: date, field: str) -> None:
    if not MIN_DATE <= day <= MAX_DATE:
        raise validation(f"dates must be between {MIN_DATE} and {MAX_DATE}", field)


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month of a period, clamped to the period's first and last day."""

    index: int
    label: str  # "2026-11"
    first: date
    last: date
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive


@dataclass(frozen=True, slots=True)
class Period:
    """Calendar days `first` to `last` inclusive, in the time zone `zone`."""

    first: date
    last: date
    zone: ZoneInfo

    @classmethod
    def of(cls, first: date, last: date, time_zone: str) -> Period:
        """A valid period, or a VALIDATION `DomainError` saying what is wrong with it."""
        _check_in_range(first, "from")
        _check_in_range(last, "to")
        if first > last:
            raise validation("`from` must be on or before `to`", "from")
        if (last - first).days + 1 > MAX_PERIOD_DAYS:
            raise validation(f"a period may cover at most {MAX_PERIOD_DAYS} days", "to")
        return cls(first, last, ZoneInfo(time_zone))

    @property
    def start(self) -> datetime:
        return midnight_utc(self.first, self.zone)

    @property
    def end(self) -> datetime:
        return midnight_utc(self.last + timedelta(days=1), self.zone)

    def contains(self, column: SQLColumnExpression[datetime]) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.end)

    def months(self) -> list[Month]:
        months: list[Month] = []
        first = self.first
        while first <= self.last:
            next_first = (first.replace(day=1) + timedelta(days=32)).replace(day=1)
            last = min(self.last, next_first - timedelta(days=1))
            months.append(
                Month(
                    index=len(months),
                    label=f"{first.year:04d}-{first.month:02d}",
                    first=first,
                    last=last,
                    start=midnight_utc(first, self.zone),
                    end=midnight_utc(last + timedelta(days=1), self.zone),
                )
            )
            first = next_first
        return months


def _total(expression: SQLColumnExpression[Any]) -> ColumnElement[int]:
    """SUM that is 0, not NULL, over no rows, and an integer on both backends."""
    return cast(func.coalesce(func.sum(expression), 0), BigInteger)


def _index_of(
    column: SQLColumnExpression[datetime], starts: Sequence[datetime], offset: int
) -> Any:
    """Index (from `offset`) of the last of `starts` at or before `column`, as a balanced tree
    of CASEs, so each row costs log2(n) comparisons, not n. `column` is never before starts[0]."""
    if len(starts) == 1:
        return literal_column(str(offset), Integer)
    middle = len(starts) // 2
    return case(
        (column < starts[middle], _index_of(column, starts[:middle], offset)),
        else_=_index_of(column, starts[middle:], offset + middle),
    )


def _constants(name: str, values: Sequence[int]) -> Any:
    """A one-column table of `values` (UNION ALL of SELECTs: SQLite has no VALUES aliases)."""
    selects = [select(literal_column(str(v), Integer).label("idx")) for v in values]
    return (selects[0] if len(selects) == 1 else union_all(*selects)).subquery(name)


def _cells(
    in_view: ColumnElement[bool], keys: dict[str, Any], figures: dict[str, dict[str, Any]]
) -> CTE:
    """Figures summed per `keys`, in one GROUP BY over the rows of the invoices `in_view`
    (`figures["invoice"]`), of their payments (`["payment"]`) and of their refunds
    (`["refund"]`): each figure is an expression on one such row, 0 where not given.

    Keys and figures are expressions on `invoices` (and `payments`/`refunds`), which each
    payment or refund row reaches by a many-to-one join: every row is read once, and the
    plans stay linear even before the planner has statistics (a join to per-invoice sums
    would not: without them PostgreSQL nests loops over the aggregate, quadratically)."""
    names = sorted({name for per_row in figures.values() for name in per_row})

    def rows(kind: str) -> Any:
        per_row = figures.get(kind, {})
        return select(
            *(key.label(name) for name, key in keys.items()),
            *(per_row.get(name, literal_column("0", BigInteger)).label(name) for name in names),
        )

    parts = [rows("invoice").where(in_view)]
    if "payment" in figures:
        parts.append(rows("payment").join_from(Payment, Invoice).where(in_view))
    if "refund" in figures:
        parts.append(rows("refund").join_from(Refund, Invoice).where(in_view))
    union = union_all(*parts).subquery("figure_rows")
    return (
        select(*(union.c[k] for k in keys), *(_total(union.c[n]).label(n) for n in names))
        .group_by(*(union.c[k] for k in keys))
        .cte("cells")
    )


# --- billing report ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BillingFigures:
    """The billing figures of a set of invoices, in minor units (see the module docstring)."""

    invoiced_count: int
    invoiced: int
    tax: int
    collected: int
    refunded: int
    forgiven: int
    outstanding: int
    voided_count: int
    voided: int

    @classmethod
    def of(cls, row: Any) -> BillingFigures:
        return cls(**{name: int(getattr(row, name)) for name in cls.__slots__})


# Rows of the billing report statement, by their `grain` column.
GRAIN_TOTAL, GRAIN_PROVIDER, GRAIN_MONTH = 0, 1, 2


def _billing_figures() -> dict[str, dict[str, Any]]:
    """Per-row expressions of `BillingFigures`, for `_cells`. An invoice counts its total in
    `forgiven`/`outstanding` and each of its payments takes its amount off again, so those
    are total - paid, summed."""
    status = Invoice.status
    not_void = status != InvoiceStatus.VOID
    unpaid = status == InvoiceStatus.UNPAID
    forgiven = status == InvoiceStatus.FORGIVEN
    void = status == InvoiceStatus.VOID
    total = Invoice.total_amount
    paid = Payment.amount
    return {
        "invoice": {
            "invoiced_count": case((not_void, 1), else_=0),
            "invoiced": case((not_void, total), else_=0),
            "tax": case((not_void, Invoice.tax_amount), else_=0),
            "forgiven": case((forgiven, total), else_=0),
            "outstanding": case((unpaid, total), else_=0),
            "voided_count": case((void, 1), else_=0),
            "voided": case((void, total), else_=0),
        },
        "payment": {
            "collected": paid,
            "forgiven": case((forgiven, -paid), else_=0),
            "outstanding": case((unpaid, -paid), else_=0),
        },
        "refund": {"refunded": Refund.amount},
    }


def _summed(cells: CTE, names: Sequence[str]) -> list[Any]:
    return [_total(cells.c[name]).label(name) for name in names]


def billing_report_query(viewer: Viewer, period: Period) -> Rows:
    """One statement for the whole report: a row per grain — the total (one row), each
    provider with invoices in the period (by name), each month of the period (in order, also
    the empty ones) — with the figures of `BillingFigures`, over the viewer's invoices sent in
    the period.

    The invoices, payments and refunds are read once, into `cells`: the figures per provider
    and month (a few dozen rows); the three grains are SUMs over those cells."""
    months = period.months()
    sent_at = Invoice.sent_at
    cells = _cells(
        and_(visible_invoices(viewer), period.contains(sent_at)),
        {
            "provider_id": Invoice.provider_id,
            "month": _index_of(sent_at, [m.start for m in months], 0),
        },
        _billing_figures(),
    )
    figures = _summed(cells, BillingFigures.__slots__)

    def keys(grain: int, key: Any, name: Any) -> list[Any]:
        return [
            literal_column(str(grain), Integer).label("grain"),
            key.label("key"),
            name.label("name"),
        ]

    no_key = cast(null(), Integer)
    no_name = cast(null(), String)
    total = select(*keys(GRAIN_TOTAL, no_key, no_name), *figures).select_from(cells)
    by_provider = (
        select(*keys(GRAIN_PROVIDER, cells.c.provider_id, User.name), *figures)
        .select_from(cells.join(User, User.id == cells.c.provider_id))
        .group_by(cells.c.provider_id, User.name)
    )
    month_table = _constants("months", [m.index for m in months])
    by_month = (
        select(*keys(GRAIN_MONTH, month_table.c.idx, no_name), *figures)
        .select_from(month_table.outerjoin(cells, cells.c.month == month_table.c.idx))
        .group_by(month_table.c.idx)
    )
    rows = union_all(total, by_provider, by_month).subquery("report")
    return select(rows).order_by(rows.c.grain, rows.c.name, rows.c.key)


@dataclass(frozen=True, slots=True)
class ProviderFigures:
    provider_id: int
    name: str
    figures: BillingFigures


@dataclass(frozen=True, slots=True)
class MonthFigures:
    month: Month
    figures: BillingFigures


@dataclass(frozen=True, slots=True)
class BillingReportData:
    period: Period
    total: BillingFigures
    by_provider: list[ProviderFigures]
    by_month: list[MonthFigures]

    @classmethod
    def of(cls, period: Period, rows: Sequence[Any]) -> BillingReportData:
        """The report from the rows of `billing_report_query`."""
        months = period.months()
        total = next(BillingFigures.of(r) for r in rows if r.grain == GRAIN_TOTAL)
        return cls(
            period=period,
            total=total,
            by_provider=[
                ProviderFigures(r.key, r.name, BillingFigures.of(r))
                for r in rows
                if r.grain == GRAIN_PROVIDER
            ],
            by_month=[
                MonthFigures(months[r.key], BillingFigures.of(r))
                for r in rows
                if r.grain == GRAIN_MONTH
            ],
        )


# --- aging report ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bucket:
    index: int
    label: str
    min_days: int
    max_days: int | None


AGING_BUCKETS = (
    Bucket(0, "0-30", 0, 30),
    Bucket(1, "31-60", 31, 60),
    Bucket(2, "61-90", 61, 90),
    Bucket(3, "91+", 91, None),
)

GRAIN_BUCKET, GRAIN_CLIENT, GRAIN_CLIENT_BUCKET = 1, 2, 3  # and GRAIN_TOTAL


def check_as_of(as_of: date) -> None:
    _check_in_range(as_of, "asOf")


def aging_query(viewer: Viewer, as_of: date, zone: ZoneInfo) -> Rows:
    """One statement: the amount due and count of the viewer's UNPAID invoices sent on or
    before `as_of`, by age in days (as_of minus the sent date, both in `zone`): in total
    (grain 0), per bucket (1, all four), per client (2, by name) and per client and bucket
    (3, only buckets with invoices)."""
    sent_at = Invoice.sent_at
    # Sent on day `as_of - d` or later <=> at most d days old.
    bounds = [
        midnight_utc(as_of - timedelta(days=b.max_days), zone)
        for b in AGING_BUCKETS
        if b.max_days is not None
    ]
    bucket = case(*((sent_at >= bound, i) for i, bound in enumerate(bounds)), else_=len(bounds))
    in_view = and_(
        visible_invoices(viewer),
        Invoice.status == InvoiceStatus.UNPAID,
        sent_at < midnight_utc(as_of + timedelta(days=1), zone),
    )
    cells = _cells(
        in_view,
        {"client_id": Invoice.client_id, "bucket": bucket},
        {
            "invoice": {"count": literal_column("1", BigInteger), "amount": Invoice.total_amount},
            "payment": {"amount": -Payment.amount},  # amount due = total - paid
        },
    )
    figures = _summed(cells, ("count", "amount"))

    def keys(grain: int, client_id: Any, name: Any, bucket: Any) -> list[Any]:
        return [
            literal_column(str(grain), Integer).label("grain"),
            client_id.label("client_id"),
            name.label("name"),
            bucket.label("bucket"),
        ]

    no_key = cast(null(), Integer)
    no_name = cast(null(), String)
    total = select(*keys(GRAIN_TOTAL, no_key, no_name, no_key), *figures).select_from(cells)
    bucket_table = _constants("buckets", [b.index for b in AGING_BUCKETS])
    by_bucket = (
        select(*keys(GRAIN_BUCKET, no_key, no_name, bucket_table.c.idx), *figures)
        .select_from(bucket_table.outerjoin(cells, cells.c.bucket == bucket_table.c.idx))
        .group_by(bucket_table.c.idx)
    )
    with_client = cells.join(User, User.id == cells.c.client_id)
    by_client = (
        select(*keys(GRAIN_CLIENT, cells.c.client_id, User.name, no_key), *figures)
        .select_from(with_client)
        .group_by(cells.c.client_id, User.name)
    )
    by_client_bucket = select(
        *keys(GRAIN_CLIENT_BUCKET, cells.c.client_id, User.name, cells.c.bucket),
        *(cells.c[name] for name in ("count", "amount")),
    ).select_from(with_client)
    rows = union_all(total, by_bucket, by_client, by_client_bucket).subquery("aging")
    return select(rows).order_by(rows.c.grain, rows.c.name, rows.c.client_id, rows.c.bucket)


@dataclass(frozen=True, slots=True)
class AgingAmount:
    amount: int
    count: int


@dataclass(frozen=True, slots=True)
class ClientAgingData:
    client_id: int
    total: AgingAmount
    buckets: list[AgingAmount]  # one per AGING_BUCKETS entry


@dataclass(frozen=True, slots=True)
class AgingReportData:
    as_of: date
    total: AgingAmount
    buckets: list[AgingAmount]
    by_client: list[ClientAgingData]

    @classmethod
    def of(cls, as_of: date, rows: Sequence[Any]) -> AgingReportData:
        """The report from the rows of `aging_query`."""

        def amount(row: Any) -> AgingAmount:
            return AgingAmount(int(row.amount), int(row.count))

        empty = AgingAmount(0, 0)
        per_client: dict[int, list[AgingAmount]] = {}
        for row in rows:
            if row.grain == GRAIN_CLIENT_BUCKET:
                buckets = per_client.setdefault(row.client_id, [empty] * len(AGING_BUCKETS))
                buckets[row.bucket] = amount(row)
        return cls(
            as_of=as_of,
            total=next(amount(r) for r in rows if r.grain == GRAIN_TOTAL),
            buckets=[amount(r) for r in rows if r.grain == GRAIN_BUCKET],
            by_client=[
                ClientAgingData(r.client_id, amount(r), per_client[r.client_id])
                for r in rows
                if r.grain == GRAIN_CLIENT
            ],
        )


# --- client statement ---------------------------------------------------------------------


def _clients_invoices(viewer: Viewer, client_id: int) -> ColumnElement[bool]:
    return and_(visible_invoices(viewer), Invoice.client_id == client_id)


def statement_invoices_query(viewer: Viewer, client_id: int, period: Period) -> Rows:
    """The client's invoices sent in the period (VOID ones too), oldest first."""
    return (
        select(Invoice)
        .where(_clients_invoices(viewer, client_id), period.contains(Invoice.sent_at))
        .order_by(Invoice.sent_at, Invoice.id)
    )


def statement_payments_query(viewer: Viewer, client_id: int, period: Period) -> Rows:
    """(Payment, Invoice) for payments received in the period on any of the client's
    invoices, oldest first."""
    return (
        select(Payment, Invoice)
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(_clients_invoices(viewer, client_id), period.contains(Payment.received_at))
        .order_by(Payment.received_at, Payment.id)
    )


def statement_refunds_query(viewer: Viewer, client_id: int, period: Period) -> Rows:
    """(Refund, Invoice) for refunds made in the period on the client's invoices."""
    return (
        select(Refund, Invoice)
        .join(Invoice, Invoice.id == Refund.invoice_id)
        .where(_clients_invoices(viewer, client_id), period.contains(Refund.created_at))
        .order_by(Refund.created_at, Refund.id)
    )


@dataclass(frozen=True, slots=True)
class StatementFigures:
    balance: int
    invoiced_count: int
    invoiced: int
    outstanding: int
    paid: int
    refunded: int

    @classmethod
    def of(cls, row: Any) -> StatementFigures:
        return cls(**{name: int(getattr(row, name)) for name in cls.__slots__})


def statement_figures_query(viewer: Viewer, client_id: int, period: Period) -> Rows:
    """One row of `StatementFigures`: `balance` is due now on all the client's UNPAID
    invoices; `invoiced`/`outstanding` are over the invoices sent in the period; `paid` and
    `refunded` over the payments received and refunds made in the period."""
    mine = _clients_invoices(viewer, client_id)
    in_period = period.contains(Invoice.sent_at)
    paid_on_invoice = (
        select(func.coalesce(func.sum(Payment.amount), 0))
        .where(Payment.invoice_id == Invoice.id)
        .correlate(Invoice)
        .scalar_subquery()
    )
    due = _total(Invoice.total_amount - paid_on_invoice)
    unpaid = Invoice.status == InvoiceStatus.UNPAID
    not_void = Invoice.status != InvoiceStatus.VOID
    return select(
        select(due).where(mine, unpaid).scalar_subquery().label("balance"),
        select(func.count())
        .where(mine, in_period, not_void)
        .scalar_subquery()
        .label("invoiced_count"),
        select(_total(Invoice.total_amount))
        .where(mine, in_period, not_void)
        .scalar_subquery()
        .label("invoiced"),
        select(due).where(mine, in_period, unpaid).scalar_subquery().label("outstanding"),
        select(_total(Payment.amount))
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(mine, period.contains(Payment.received_at))
        .scalar_subquery()
        .label("paid"),
        select(_total(Refund.amount))
        .join(Invoice, Invoice.id == Refund.invoice_id)
        .where(mine, period.contains(Refund.created_at))
        .scalar_subquery()
        .label("refunded"),
    )


# --- invoice export -------------------------------------------------------------------------


def _sum_per_invoice(amount: Any, invoice_id: Any) -> Any:
    """SUM of `amount` over the rows of the current invoice: an index lookup per invoice, so
    the export streams its first rows at once, whatever the planner knows."""
    return select(_total(amount)).where(invoice_id == Invoice.id).correlate(Invoice)


def invoice_export_query(viewer: Viewer, period: Period) -> Rows:
    """The viewer's invoices sent in the period, oldest first, one row each with the names of
    its client and provider and its amounts (paid and refunded summed from its rows, due)."""
    paid = _sum_per_invoice(Payment.amount, Payment.invoice_id).scalar_subquery()
    refunded = _sum_per_invoice(Refund.amount, Refund.invoice_id).scalar_subquery()
    client = aliased(User, name="client")
    provider = aliased(User, name="provider")
    unpaid = Invoice.status == InvoiceStatus.UNPAID
    return (
        select(
            Invoice.id,
            Invoice.number,
            Invoice.sent_at,
            Invoice.due_date,
            Invoice.status,
            Invoice.description,
            Invoice.currency,
            Invoice.subtotal_amount,
            Invoice.tax_amount,
            Invoice.total_amount,
            paid.label("paid"),
            refunded.label("refunded"),
            case((unpaid, Invoice.total_amount - paid), else_=0).label("due"),
            client.name.label("client_name"),
            client.email.label("client_email"),
            provider.name.label("provider_name"),
        )
        .join(client, client.id == Invoice.client_id)
        .join(provider, provider.id == Invoice.provider_id)
        .where(visible_invoices(viewer), period.contains(Invoice.sent_at))
        .order_by(Invoice.sent_at, Invoice.id)
    )
