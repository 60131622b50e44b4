"""Report types: what `reports { … }` returns (definitions in API.md, "Reports")."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

import strawberry

from oms_graphql.schema.types import Money, UserError


@strawberry.enum(
    description="How sales are bucketed: by day, ISO week (from Monday) or month, in the report time zone."
)
class ReportInterval(Enum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


@strawberry.enum(description="What a sales trend row is per.")
class SalesGroupBy(Enum):
    SKU = "SKU"
    CATEGORY = "CATEGORY"
    CHANNEL = "CHANNEL"
    REGION = "REGION"


@strawberry.enum(description="What a fulfilment KPI row is per.")
class FulfillmentGroupBy(Enum):
    CHANNEL = "CHANNEL"
    LOCATION = "LOCATION"


@strawberry.input(
    description="Narrow a report; a list matches any of its values, and the lists combine with AND. "
    "salesTrend and topProducts: channelCodes, skus, categories, regions (orders then count the orders with a "
    "line of the SKU or category: an order once per SKU, or once per category; with several SKUs and no SKU "
    "grouping (or several categories and no category grouping), an order holding two of them counts once, with "
    "the units of the filtered ones). demandForecast: channelCodes, skus, categories and regions narrow the "
    "sales history, locationCodes the reorder list. fulfillmentKpis: channelCodes and "
    "locationCodes (the order's first dispatching, else allocated, location). inventoryKpis: skus, categories, "
    "locationCodes. customerSegments and customerCohorts are not narrowed (a customer is scored on all its orders)."
)
class ReportFilter:
    channel_codes: list[str] | None = None
    skus: list[str] | None = None
    categories: list[str] | None = None
    regions: list[str] | None = None
    location_codes: list[str] | None = None


@strawberry.type(description="Sales of one period (and key, and currency).")
class SalesTrendPoint:
    period: date = strawberry.field(description="The first day of the period, in the report time zone.")
    key: str | None = strawberry.field(description="The SKU, category, channel code or region; null without groupBy.")
    units: int = strawberry.field(description="Units sold and not refunded or returned.")
    orders: int = strawberry.field(
        description="Paid, not cancelled orders placed in the period; by SKU or CATEGORY (or filtered to them), "
        "those with a line of the key: once per SKU, once per category."
    )
    revenue: Money = strawberry.field(
        description="Order totals net of refunds (per line, net of its discount and returns, for SKU and CATEGORY "
        "grouping or filters)."
    )
    average_order_value: Money = strawberry.field(description="revenue ÷ orders, rounded half-up.")
    moving_average_revenue: Money = strawberry.field(
        description="Mean revenue of this period and the ones before it (7 days, 4 weeks or 3 months) with sales."
    )
    revenue_change: float | None = strawberry.field(
        description="Revenue against the previous period with sales of the same key, as a fraction (0.1 = +10%)."
    )


@strawberry.enum(description="What ranks products: units sold, or revenue.")
class ProductMeasure(Enum):
    UNITS = "UNITS"
    REVENUE = "REVENUE"


@strawberry.type(description="One SKU's sales in the window and in the period of equal length just before it.")
class ProductSales:
    sku: str
    category: str = strawberry.field(description="The product's category (empty when it has none).")
    units: int = strawberry.field(description="Units sold in the window and not refunded or returned.")
    orders: int = strawberry.field(description="Paid, not cancelled orders with the SKU placed in the window.")
    revenue: list[Money] = strawberry.field(
        description="Per currency: its lines' value net of discounts, refunds and returns (as salesTrend by SKU)."
    )
    previous_units: int = strawberry.field(description="units in the previous period.")
    previous_orders: int = strawberry.field(description="orders in the previous period.")
    previous_revenue: list[Money] = strawberry.field(description="revenue in the previous period, per currency.")
    figure: float = strawberry.field(
        description="What ranks it: units, or revenue (the amounts of every currency added as they are)."
    )
    previous_figure: float = strawberry.field(description="The same figure in the previous period.")
    change: float | None = strawberry.field(
        description="(figure − previousFigure) ÷ previousFigure (0.1 = +10%); null when it sold nothing before."
    )


@strawberry.type(description="Best sellers and fastest risers of the window, against the period just before it.")
class TopProducts:
    previous_from: date = strawberry.field(
        description="The first day of the previous period (as long as the window, ending where it starts)."
    )
    top: list[ProductSales] = strawberry.field(description="The largest figures, largest first (ties by SKU).")
    rising: list[ProductSales] = strawberry.field(
        description="The largest changes, largest first, among SKUs that sold something in the previous period, "
        "more in the window, and at least minUnits units in the window (ties by figure, then SKU)."
    )


@strawberry.type(description="Hours between two moments of an order: mean, median and 90th percentile.")
class HoursSummary:
    mean: float | None
    p50: float | None
    p90: float | None


@strawberry.type(description="Fulfilment KPIs of the orders placed in the window; each rate is null over an empty set.")
class FulfillmentKpiRow:
    key: str | None = strawberry.field(description="Channel or location code; null without groupBy.")
    orders: int = strawberry.field(description="Orders not cancelled.")
    completion_rate: float | None = strawberry.field(
        description="Orders DELIVERED or COMPLETED ÷ orders not cancelled."
    )
    cancellation_rate: float | None = strawberry.field(description="Orders CANCELLED ÷ all orders.")
    return_rate: float | None = strawberry.field(description="Units received back on returns ÷ units shipped.")
    late_shipment_rate: float | None = strawberry.field(
        description="Shipments dispatched after their order's promisedShipBy ÷ shipments dispatched."
    )
    split_shipment_rate: float | None = strawberry.field(
        description="Orders shipped in more than one shipment ÷ orders with a shipment."
    )
    hours_to_ship: HoursSummary = strawberry.field(description="First dispatch − paidAt.")
    hours_to_deliver: HoursSummary = strawberry.field(description="Last delivery − paidAt, delivered orders.")


@strawberry.type(description="Stock KPIs of one SKU at one location over the window, from the ledger.")
class InventoryKpiRow:
    sku: str
    location_code: str
    on_hand: int = strawberry.field(description="On hand at the end of the window.")
    units_shipped: int
    turnover: float | None = strawberry.field(description="Units shipped ÷ average closing on hand.")
    days_of_cover: float | None = strawberry.field(description="On hand at the end ÷ units shipped a day.")
    stock_out_days: int = strawberry.field(description="Days whose closing on hand was 0.")
    stock_out_rate: float | None = strawberry.field(description="stockOutDays ÷ days in the window.")
    dead_stock: bool = strawberry.field(description="Stock on hand and nothing shipped in the window.")


@strawberry.type(description="Forecast units of one day, with its prediction interval.")
class ForecastPoint:
    date: date
    quantity: float
    lower: float
    upper: float


@strawberry.type(description="What to order for one SKU at one location: lead-time demand + safety stock − position.")
class ReorderSuggestion:
    location_code: str
    lead_time_days: int = strawberry.field(description="The level's lead time (7 when it has none).")
    demand: float = strawberry.field(description="Forecast units over the lead time.")
    safety_stock: float = strawberry.field(description="z(service level) × σ × √lead time.")
    position: int = strawberry.field(description="On hand − reserved + in transit.")
    quantity: int = strawberry.field(description="Units to order now (0 when the position covers it).")


@strawberry.type(description="A SKU's daily demand forecast.")
class DemandForecast:
    sku: str
    method: str = strawberry.field(description="HOLT_WINTERS (weekly seasonality) or CROSTON_SBA (sparse series).")
    mase: float | None = strawberry.field(
        description="Backtest MAE on the last two held-out weeks ÷ that of the 7-day seasonal-naive forecast "
        "(< 1 beats it); null when the history is too short."
    )
    points: list[ForecastPoint]
    reorder: list[ReorderSuggestion]


@strawberry.type(description="A category or channel a segment's customers order from.")
class PreferenceShare:
    key: str = strawberry.field(description="The category (empty: products without one) or the channel code.")
    orders: int = strawberry.field(description="The segment's orders in the window with it.")
    share: float = strawberry.field(description="orders ÷ the segment's orders in the window.")


@strawberry.type(description="What a segment's customers order, most first (ties by key).")
class SegmentPreferences:
    top_categories: list[PreferenceShare] = strawberry.field(
        description="Its top 3 categories; an order with lines of two categories counts for both, so the shares "
        "can add up to more than 1."
    )
    top_channels: list[PreferenceShare] = strawberry.field(description="Its top 3 channels (shares add up to 1).")


@strawberry.type(description="Customers of one RFM segment in the window.")
class CustomerSegment:
    name: str = strawberry.field(
        description="CHAMPIONS, LOYAL, NEW, POTENTIAL, AT_RISK, NEEDS_ATTENTION or LOST (rules in the README)."
    )
    customers: int
    revenue: list[Money] = strawberry.field(description="Their revenue in the window, per currency.")
    repeat_rate: float = strawberry.field(description="Customers with two orders or more ÷ customers.")
    preferences: SegmentPreferences = strawberry.field(
        description="The categories and channels its customers order from (computed only when asked for)."
    )


@strawberry.type(description="Customers whose first order ever fell in one month, and how many came back.")
class CustomerCohort:
    month: date = strawberry.field(description="The first day of the cohort's month.")
    customers: int
    retention: list[float] = strawberry.field(
        description="Share of the cohort ordering in month 0, 1, 2 … after the first (month 0 is 1.0)."
    )


@strawberry.type(
    description="A stored forecast reorder suggestion of one SKU at one location: low-stock alerts size their "
    "suggested quantity from it and transferSuggest takes its dailyDemand as the location's sales, while it is "
    "under 48 hours old (else they use the recent sales rule)."
)
class StoredReorderForecast:
    sku: str
    location_code: str
    method: str = strawberry.field(description="HOLT_WINTERS or CROSTON_SBA.")
    lead_time_days: int = strawberry.field(description="The level's lead time (7 when it has none).")
    daily_demand: float = strawberry.field(
        description="Forecast units a day at this location: the SKU's forecast × the location's share of the "
        "SKU's units allocated over the last 28 days (an equal split when none were)."
    )
    demand: float = strawberry.field(description="This location's forecast units over the lead time.")
    safety_stock: float = strawberry.field(description="z(95%) × σ × √lead time, for this location's share.")
    quantity: int = strawberry.field(
        description="Units to order as computed: demand + safety stock − (on hand − reserved + in transit)."
    )
    computed_at: datetime


@strawberry.input(description="Which SKUs' stored reorder forecasts to recompute.")
class ReorderForecastRefreshInput:
    skus: list[str] | None = strawberry.field(
        default=None,
        description="Up to 50 SKUs, recomputed now (from the 182 days before today) and returned; without "
        "skus, every stocked SKU is queued for the refresh_demand_forecasts job.",
    )


@strawberry.type(description="Result of reorderForecastRefresh.")
class ReorderForecastRefreshPayload:
    forecasts: list[StoredReorderForecast] = strawberry.field(
        default_factory=list, description="What was stored, per SKU and location (empty when queued)."
    )
    queued: bool = strawberry.field(default=False, description="True when every stocked SKU was queued.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)
