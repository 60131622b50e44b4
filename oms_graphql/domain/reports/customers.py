"""Customer behaviour: RFM scores and named segments, repeat-purchase rate, cohort retention.

From ``report_customer_days`` (paid, not cancelled orders per customer and day).

- Recency = days from a customer's last order in the window to the window's last day;
  frequency = orders in the window; monetary = revenue in the window.
- Each is scored 1–5 by quintile among the window's customers (5 best: most recent, most
  orders, most revenue); equal values get the same score (the quintile of the first of them).
- Segments, first match wins: CHAMPIONS (R ≥ 4, F ≥ 4), NEW (R ≥ 4, one order), LOYAL
  (R ≥ 3, F ≥ 3), AT_RISK (R ≤ 2, F ≥ 3), LOST (R = 1), POTENTIAL (R ≥ 3), else
  NEEDS_ATTENTION.
- repeatRate = customers with two orders or more ÷ customers (of the segment).
- Cohorts: customers by the month of their first order ever; retention[k] = share of the
  cohort with an order in the k-th month after (retention[0] = 1).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import ReportCustomerDay
from oms_graphql.domain.money import round_money
from oms_graphql.domain.reports.common import Window, from_e4

SEGMENTS = ("CHAMPIONS", "LOYAL", "NEW", "POTENTIAL", "AT_RISK", "NEEDS_ATTENTION", "LOST")


@dataclass
class CustomerRfm:
    customer_id: int
    recency_days: int
    orders: int
    revenue: dict[str, Decimal]
    r: int = 0
    f: int = 0
    m: int = 0
    segment: str = ""


@dataclass
class Segment:
    name: str
    customers: int = 0
    repeat_customers: int = 0
    revenue: dict[str, Decimal] = field(default_factory=dict)

    @property
    def repeat_rate(self) -> float:
        return self.repeat_customers / self.customers if self.customers else 0.0


def quintile_scores(values: list[float]) -> list[int]:
    ordered = sorted(values)
    count = len(values)
    return [1 + (bisect_left(ordered, value) * 5) // count for value in values]


def segment_of(r: int, f: int, orders: int) -> str:
    if r >= 4 and f >= 4:
        return "CHAMPIONS"
    if r >= 4 and orders == 1:
        return "NEW"
    if r >= 3 and f >= 3:
        return "LOYAL"
    if r <= 2 and f >= 3:
        return "AT_RISK"
    if r == 1:
        return "LOST"
    if r >= 3:
        return "POTENTIAL"
    return "NEEDS_ATTENTION"


async def customer_rfm(session: AsyncSession, window: Window) -> list[CustomerRfm]:
    table = ReportCustomerDay
    rows = await session.execute(
        select(
            table.customer_id, table.currency, func.max(table.day), func.sum(table.orders), func.sum(table.revenue_e4)
        )
        .where(table.day >= window.first_day, table.day < window.end_day, table.orders > 0)
        .group_by(table.customer_id, table.currency)
    )
    last_day = date.fromordinal(window.end_day.toordinal() - 1)
    found: dict[int, CustomerRfm] = {}
    for customer_id, currency, latest, orders, revenue in rows:
        entry = found.setdefault(customer_id, CustomerRfm(customer_id, (last_day - latest).days, 0, {}))
        entry.recency_days = min(entry.recency_days, (last_day - latest).days)
        entry.orders += int(orders)
        entry.revenue[currency] = entry.revenue.get(currency, Decimal(0)) + from_e4(revenue)
    customers = sorted(found.values(), key=lambda c: c.customer_id)
    if not customers:
        return []
    recency = quintile_scores([-c.recency_days for c in customers])
    frequency = quintile_scores([c.orders for c in customers])
    # Across currencies the amounts are ranked as they are (a merchant usually has one).
    monetary = quintile_scores([float(sum(c.revenue.values(), Decimal(0))) for c in customers])
    for customer, r, f, m in zip(customers, recency, frequency, monetary, strict=True):
        customer.r, customer.f, customer.m = r, f, m
        customer.segment = segment_of(r, f, customer.orders)
    return customers


async def customer_segments(session: AsyncSession, window: Window) -> list[Segment]:
    segments = {name: Segment(name) for name in SEGMENTS}
    for customer in await customer_rfm(session, window):
        segment = segments[customer.segment]
        segment.customers += 1
        segment.repeat_customers += 1 if customer.orders >= 2 else 0
        for currency, amount in customer.revenue.items():
            segment.revenue[currency] = segment.revenue.get(currency, Decimal(0)) + amount
    for segment in segments.values():
        segment.revenue = {c: round_money(a, c) for c, a in sorted(segment.revenue.items())}
    return [segment for segment in segments.values() if segment.customers]


@dataclass
class Cohort:
    month: date
    customers: int
    retention: list[float]


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


async def customer_cohorts(session: AsyncSession, window: Window) -> list[Cohort]:
    table = ReportCustomerDay
    first_days = (
        select(table.customer_id, func.min(table.day).label("first"))
        .where(table.orders > 0)
        .group_by(table.customer_id)
        .subquery()
    )
    rows = await session.execute(
        select(table.customer_id, table.day, first_days.c.first)
        .join(first_days, first_days.c.customer_id == table.customer_id)
        .where(
            first_days.c.first >= window.first_day,
            first_days.c.first < window.end_day,
            table.day < window.end_day,
            table.orders > 0,
        )
    )
    active: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    for customer_id, day, first in rows:
        cohort = _month_index(first)
        active[cohort][_month_index(day) - cohort].add(customer_id)
    last = _month_index(date.fromordinal(window.end_day.toordinal() - 1))
    cohorts = []
    for cohort in sorted(active):
        size = len(active[cohort][0])
        retention = [len(active[cohort].get(k, ())) / size for k in range(last - cohort + 1)]
        cohorts.append(Cohort(date(cohort // 12, cohort % 12 + 1, 1), size, retention))
    return cohorts
