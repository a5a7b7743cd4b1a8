"""The days a report covers, as UTC instants.

Dates are calendar days in the practice's time zone: their boundaries are turned into UTC
instants here, in Python, so the SQL only compares timestamps and runs the same on SQLite and
PostgreSQL (no database time-zone functions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, SQLColumnExpression, and_

from models.errors import validation

# Reports cover at most five years (leap days included): bounded work and at most 61 months.
MAX_PERIOD_DAYS = 5 * 365 + 2
# Far enough from datetime's limits that a day ± the largest UTC offset never overflows.
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(9998, 12, 31)


def midnight_utc(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which `day` begins in `zone`."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def today_in(zone: ZoneInfo, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(zone).date()


def check_in_range(day: date, field: str) -> None:
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
        check_in_range(first, "from")
        check_in_range(last, "to")
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
