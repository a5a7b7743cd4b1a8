"""The aging report: the amounts due on UNPAID invoices by age in days, in total, per bucket,
per client and per client and bucket."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    and_,
    case,
    cast,
    literal_column,
    null,
    select,
    union_all,
)

from models.enums import InvoiceStatus
from models.invoice import Invoice, amount_due_per_row
from models.reports.aggregates import GRAIN_TOTAL, Rows, constants, figure_cells, summed
from models.reports.periods import check_in_range, midnight_utc
from models.scope import Viewer, visible_invoices
from models.user import User


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
    check_in_range(as_of, "asOf")


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
    cells = figure_cells(
        in_view,
        {"client_id": Invoice.client_id, "bucket": bucket},
        {
            "invoice": {
                "count": literal_column("1", BigInteger),
                "amount": amount_due_per_row()["invoice"],
            },
            "payment": {"amount": amount_due_per_row()["payment"]},
        },
    )
    figures = summed(cells, ("count", "amount"))

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
    bucket_table = constants("buckets", [b.index for b in AGING_BUCKETS])
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
