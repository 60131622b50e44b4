"""What every report takes: the window, the filter, the time zone, and how periods are cut."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from zoneinfo import ZoneInfo

from oms_graphql.domain.errors import DomainError


class Interval(Enum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


@dataclass(frozen=True)
class ReportFilter:
    channel_codes: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    location_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Window:
    """Orders placed in [start, end), taken to whole days in the report time zone: the
    aggregates are daily, so a bound inside a day counts that whole day."""

    start: datetime
    end: datetime
    zone: ZoneInfo
    filter: ReportFilter = field(default_factory=ReportFilter)

    @property
    def first_day(self) -> date:
        return self.start.astimezone(self.zone).date()

    @property
    def end_day(self) -> date:
        """The first day not reported."""
        local = self.end.astimezone(self.zone)
        return local.date() if local.time() == time(0) else local.date() + timedelta(days=1)

    @property
    def days(self) -> int:
        return max(0, (self.end_day - self.first_day).days)


MAX_DAYS = 3 * 366 + 1


def check_window(start: datetime, end: datetime, zone: ZoneInfo, report_filter: ReportFilter | None) -> Window:
    if start.tzinfo is None or end.tzinfo is None:
        raise DomainError("from and to need a time zone (ISO-8601 with Z or an offset).", ("from",), "INVALID")
    if end <= start:
        raise DomainError("to must be after from.", ("to",), "INVALID")
    window = Window(start, end, zone, report_filter or ReportFilter())
    if window.days > MAX_DAYS:
        raise DomainError(f"A report covers at most {MAX_DAYS} days; ask for a shorter window.", ("to",), "INVALID")
    return window


def period_of(day: date, interval: Interval) -> date:
    if interval is Interval.WEEK:
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if interval is Interval.MONTH:
        return day.replace(day=1)
    return day


def from_e4(value: int | None) -> Decimal:
    return Decimal(int(value or 0)).scaleb(-4)


def rate(part: int, whole: int) -> float | None:
    """A fraction in [0, 1]; None over an empty set (API.md: a rate over an empty set is null)."""
    return None if whole == 0 else part / whole


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)
