"""Customer behaviour: RFM scores and named segments, repeat-purchase rate, preferences per
segment, cohort retention.

From ``report_customer_days`` (paid, not cancelled orders per customer and day), and for the
preferences ``report_customer_categories`` / ``report_customer_channels``. The scores are
computed by the database (from quintile thresholds: see ``score``), so a report reads a few rows
per segment.

- Recency = days from a customer's last order in the window to the window's last day;
  frequency = orders in the window; monetary = revenue in the window.
- Each is scored 1–5 by quintile among the window's customers (5 best: most recent, most
  orders, most revenue); equal values get the same score (the quintile of the first of them).
- Segments, first match wins: CHAMPIONS (R ≥ 4, F ≥ 4), NEW (R ≥ 4, one order), LOYAL
  (R ≥ 3, F ≥ 3), AT_RISK (R ≤ 2, F ≥ 3), LOST (R = 1), POTENTIAL (R ≥ 3), else
  NEEDS_ATTENTION.
- repeatRate = customers with two orders or more ÷ customers (of the segment).
- Preferences: a segment's orders with a line of a category (or on a channel) ÷ its orders.
- Cohorts: customers by the month of their first order ever; retention[k] = share of the
  cohort with an order in the k-th month after (retention[0] = 1).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, String, and_, case, cast, func, literal, select, text, true, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import (
    Channel,
    ReportCustomerCategory,
    ReportCustomerChannel,
    ReportCustomerDay,
    ReportDailySales,
)
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


def whole(total: Any) -> Any:
    """A sum kept a BIGINT (PostgreSQL sums BIGINTs as NUMERIC, several times slower to sort)."""
    return cast(total, BigInteger)


def score(column: Any) -> Any:
    """1 + ⌊(customers with a smaller value) × 5 ÷ customers⌋, so equal values share the score
    of the first of them; in SQL as 1 + how many of the quintile thresholds the value is above.

    With N customers and x₍ᵢ₎ the i-th smallest value, "at least c smaller values" is
    "above x₍c₎", and ⌊5c ÷ N⌋ ≥ k − 1 is c ≥ t_k = ⌈(k − 1)N ÷ 5⌉: so the score is
    1 + #{k = 2…5 : value > x₍t_k₎}, and x₍t₎ is the least value with t customers at or below
    it. The thresholds come from the values' histogram (a last day or an order count has a few
    hundred distinct values at most), where rank() sorted every customer's row once per score."""
    histogram = select(column.label("value"), func.count().label("customers")).group_by(column).subquery()
    value, customers = histogram.c.value, histogram.c.customers
    cumulative = select(
        value,
        whole(func.sum(customers).over(order_by=value)).label("at_or_below"),
        whole(func.sum(customers).over()).label("everyone"),
    ).subquery()
    at_or_below, everyone = cumulative.c.at_or_below, cumulative.c.everyone
    thresholds = select(
        *(
            func.min(case((at_or_below >= ((k - 1) * everyone + 4) // 5, cumulative.c.value))).label(f"x{k}")
            for k in range(2, 6)
        )
    ).cte(f"{column.name}_quintiles")
    above = [case((column > select(thresholds.c[f"x{k}"]).scalar_subquery(), 1), else_=0) for k in range(2, 6)]
    return 1 + above[0] + above[1] + above[2] + above[3]


async def prepare_scoring(session: AsyncSession, window: Window) -> bool:
    """Set the transaction up for scoring the window's customers, and say whether the window's
    sales are all in one currency (the small daily sales table knows), so that a customer is one
    row: no per-currency step to group and join back. On PostgreSQL the rest of the transaction
    (a report's reads) hashes and sorts in memory (4 MB, the default work_mem, spills to disk
    from ~50k customers) and skips JIT (compiling the plan cost ~1 s of 9 at 1M rows on the
    shared bench box, for a plan that runs once)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
        await session.execute(text("SET LOCAL jit = off"))
    sales = ReportDailySales
    currencies = await session.scalars(
        select(sales.currency).where(sales.day >= window.first_day, sales.day < window.end_day).distinct().limit(2)
    )
    return len(currencies.all()) <= 1


def scored_customers(window: Window, single_currency: bool = False) -> tuple[Any, Any]:
    """(per customer and currency, per customer with its R, F, M scores and segment): two
    subqueries, so the database scores every customer and the reports read a few rows.
    Monetary ranks the amounts of all currencies as they are (a merchant usually has one).
    With ``single_currency`` a customer is one row and the first is None."""
    table = ReportCustomerDay
    in_window = [table.day >= window.first_day, table.day < window.end_day, table.orders > 0]
    per_currency: Any = None
    source: Any = table
    if not single_currency:
        per_currency = (
            select(
                table.customer_id,
                table.currency,
                func.max(table.day).label("day"),
                whole(func.sum(table.orders)).label("orders"),
                whole(func.sum(table.revenue_e4)).label("revenue_e4"),
            )
            .where(*in_window)
            .group_by(table.customer_id, table.currency)
            .cte("per_currency")
        )
        source, in_window = per_currency.c, []
    per_customer = (
        select(
            source.customer_id,
            func.min(source.currency).label("first_currency"),
            func.max(source.day).label("last_day"),
            whole(func.sum(source.orders)).label("orders"),
            whole(func.sum(source.revenue_e4)).label("revenue_e4"),
        )
        .where(*in_window)
        .group_by(source.customer_id)
        .cte("per_customer")
    )
    ranked = select(
        per_customer,
        score(per_customer.c.last_day).label("r"),
        score(per_customer.c.orders).label("f"),
        score(per_customer.c.revenue_e4).label("m"),
    ).subquery("ranked")
    r, f = ranked.c.r, ranked.c.f
    segment = case(
        (and_(r >= 4, f >= 4), "CHAMPIONS"),
        (and_(r >= 4, ranked.c.orders == 1), "NEW"),
        (and_(r >= 3, f >= 3), "LOYAL"),
        (and_(r <= 2, f >= 3), "AT_RISK"),
        (r == 1, "LOST"),
        (r >= 3, "POTENTIAL"),
        else_="NEEDS_ATTENTION",
    )
    return per_currency, select(ranked, segment.label("segment")).cte("scored")


def per_currency_rows(per_currency: Any, scored: Any) -> tuple[Any, Any, Any, Any]:
    """(rows, currency, revenue, counted): each customer's revenue per currency beside its scores,
    and whether a row is the one its customer counts on (a customer with orders in two
    currencies has two rows: it counts on its first currency's)."""
    if per_currency is None:
        return scored, scored.c.first_currency, scored.c.revenue_e4, true()
    joined = scored.join(per_currency, per_currency.c.customer_id == scored.c.customer_id)
    return (
        joined,
        per_currency.c.currency,
        per_currency.c.revenue_e4,
        per_currency.c.currency == scored.c.first_currency,
    )


async def customer_rfm(session: AsyncSession, window: Window) -> list[CustomerRfm]:
    """Every customer of the window with its scores, by customer id."""
    per_currency, scored = scored_customers(window, await prepare_scoring(session, window))
    rows, currency, revenue, _ = per_currency_rows(per_currency, scored)
    found_rows = await session.execute(
        select(
            scored.c.customer_id,
            scored.c.last_day,
            scored.c.orders,
            scored.c.r,
            scored.c.f,
            scored.c.m,
            scored.c.segment,
            currency,
            revenue,
        )
        .select_from(rows)
        .order_by(scored.c.customer_id, currency)
    )
    last_day = date.fromordinal(window.end_day.toordinal() - 1)
    found: dict[int, CustomerRfm] = {}
    for customer_id, latest, orders, r, f, m, segment, in_currency, amount in found_rows:
        latest = date.fromisoformat(latest) if isinstance(latest, str) else latest
        entry = found.setdefault(
            customer_id, CustomerRfm(customer_id, (last_day - latest).days, int(orders), {}, r, f, m, segment)
        )
        entry.revenue[in_currency] = from_e4(amount)
    return list(found.values())


async def customer_segments(session: AsyncSession, window: Window) -> list[Segment]:
    per_currency, scored = scored_customers(window, await prepare_scoring(session, window))
    rows, currency, revenue, counted = per_currency_rows(per_currency, scored)
    found_rows = await session.execute(
        select(
            scored.c.segment,
            currency,
            func.sum(case((counted, 1), else_=0)),
            func.sum(case((and_(counted, scored.c.orders >= 2), 1), else_=0)),
            func.sum(revenue),
        )
        .select_from(rows)
        .group_by(scored.c.segment, currency)
        .order_by(scored.c.segment, currency)
    )
    segments = {name: Segment(name) for name in SEGMENTS}
    for name, in_currency, customers, repeat_customers, amount in found_rows:
        segment = segments[name]
        segment.customers += int(customers)
        segment.repeat_customers += int(repeat_customers)
        segment.revenue[in_currency] = round_money(from_e4(amount), in_currency)
    return [segment for segment in segments.values() if segment.customers]


@dataclass
class Preference:
    key: str
    orders: int
    share: float  # the segment's orders with it ÷ the segment's orders


@dataclass
class Preferences:
    top_categories: list[Preference] = field(default_factory=list)
    top_channels: list[Preference] = field(default_factory=list)


async def segment_preferences(session: AsyncSession, window: Window, top: int = 3) -> dict[str, Preferences]:
    """Per segment, its customers' most ordered categories and channels in the window: for each,
    the segment's orders with a line of the category (or placed on the channel) ÷ its orders.
    An order with lines of two categories counts for both, so category shares can add up to more
    than 1; channel shares add up to 1. Ties: by key."""
    _, scored = scored_customers(window, await prepare_scoring(session, window))

    def tagged(kind: str) -> Any:
        return cast(literal(kind), String).label("kind")

    categories, channels = ReportCustomerCategory, ReportCustomerChannel
    in_window = [categories.day >= window.first_day, categories.day < window.end_day, categories.orders > 0]
    on_channels = [channels.day >= window.first_day, channels.day < window.end_day, channels.orders > 0]
    # One statement, so the database scores the customers once for the three parts.
    query = union_all(
        select(scored.c.segment, tagged("total"), cast(literal(""), String), whole(func.sum(scored.c.orders))).group_by(
            scored.c.segment
        ),
        select(scored.c.segment, tagged("category"), categories.category, whole(func.sum(categories.orders)))
        .join(categories, categories.customer_id == scored.c.customer_id)
        .where(*in_window)
        .group_by(scored.c.segment, categories.category),
        select(scored.c.segment, tagged("channel"), Channel.code, whole(func.sum(channels.orders)))
        .join(channels, channels.customer_id == scored.c.customer_id)
        .join(Channel, Channel.id == channels.channel_id)
        .where(*on_channels)
        .group_by(scored.c.segment, Channel.code),
    )
    rows = (await session.execute(query)).all()
    totals = {segment: int(orders) for segment, kind, _, orders in rows if kind == "total"}
    found = {name: Preferences() for name in totals}
    for segment, kind, key, orders in rows:
        if kind != "total":
            listed = found[segment].top_categories if kind == "category" else found[segment].top_channels
            listed.append(Preference(key, int(orders), int(orders) / totals[segment]))
    for each in found.values():
        for items in (each.top_categories, each.top_channels):
            items.sort(key=lambda p: (-p.orders, p.key))
            del items[top:]
    return found


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
