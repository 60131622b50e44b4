"""`reports { salesTrend fulfillmentKpis inventoryKpis }`: parse the arguments, call the domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from oms_graphql.config import get_settings
from oms_graphql.domain.reports import common, customers, demand, fulfillment, inventory, products, sales
from oms_graphql.resolvers.common import context, run_mutation
from oms_graphql.schema.context import Caller
from oms_graphql.schema.permissions import OPERATE, STAFF
from oms_graphql.schema.reports import (
    CustomerCohort,
    CustomerSegment,
    DemandForecast,
    ForecastPoint,
    FulfillmentGroupBy,
    FulfillmentKpiRow,
    HoursSummary,
    InventoryKpiRow,
    PreferenceShare,
    ProductMeasure,
    ProductSales,
    ReorderForecastRefreshInput,
    ReorderForecastRefreshPayload,
    ReorderSuggestion,
    ReportFilter,
    ReportInterval,
    SalesGroupBy,
    SalesTrendPoint,
    SegmentPreferences,
    StoredReorderForecast,
    TopProducts,
)
from oms_graphql.schema.types import money

From = Annotated[
    datetime,
    strawberry.argument(name="from", description="Orders placed at or after (whole days in the report time zone)."),
]
To = Annotated[datetime, strawberry.argument(description="Orders placed before (whole days in the report time zone).")]


def report_zone() -> ZoneInfo:
    return ZoneInfo(get_settings().report_timezone)


def window_of(start: datetime, end: datetime, wanted: ReportFilter | None) -> common.Window:
    plain = (
        common.ReportFilter(
            channel_codes=tuple(wanted.channel_codes or ()),
            skus=tuple(wanted.skus or ()),
            categories=tuple(wanted.categories or ()),
            regions=tuple(wanted.regions or ()),
            location_codes=tuple(wanted.location_codes or ()),
        )
        if wanted
        else None
    )
    return common.check_window(start, end, report_zone(), plain)


def sales_point(point: sales.SalesPoint) -> SalesTrendPoint:
    return SalesTrendPoint(
        period=point.period,
        key=point.key,
        units=point.units,
        orders=point.orders,
        revenue=money(point.revenue, point.currency),
        average_order_value=money(point.average_order_value, point.currency),
        moving_average_revenue=money(point.moving_average_revenue, point.currency),
        revenue_change=point.revenue_change,
    )


def product_sales(found: products.ProductSales) -> ProductSales:
    return ProductSales(
        sku=found.sku,
        category=found.category,
        units=found.current.units,
        orders=found.current.orders,
        revenue=[money(amount, currency) for currency, amount in sorted(found.current.revenue.items())],
        previous_units=found.previous.units,
        previous_orders=found.previous.orders,
        previous_revenue=[money(amount, currency) for currency, amount in sorted(found.previous.revenue.items())],
        figure=float(found.figure),
        previous_figure=float(found.previous_figure),
        change=found.change,
    )


def asked_for(selections: list[Any], name: str) -> bool:
    """Whether the query selects ``name`` anywhere under these fields (fragments included)."""
    return any(
        getattr(selection, "name", None) == name or asked_for(getattr(selection, "selections", []), name)
        for selection in selections
    )


def segment_preferences(found: customers.Preferences) -> SegmentPreferences:
    def shares(items: list[customers.Preference]) -> list[PreferenceShare]:
        return [PreferenceShare(key=p.key, orders=p.orders, share=p.share) for p in items]

    return SegmentPreferences(top_categories=shares(found.top_categories), top_channels=shares(found.top_channels))


def hours(summary: fulfillment.Hours) -> HoursSummary:
    return HoursSummary(mean=summary.mean, p50=summary.p50, p90=summary.p90)


def fulfillment_row(kpis: fulfillment.FulfillmentKpis) -> FulfillmentKpiRow:
    return FulfillmentKpiRow(
        key=kpis.key,
        orders=kpis.orders,
        completion_rate=kpis.completion_rate,
        cancellation_rate=kpis.cancellation_rate,
        return_rate=kpis.return_rate,
        late_shipment_rate=kpis.late_shipment_rate,
        split_shipment_rate=kpis.split_shipment_rate,
        hours_to_ship=hours(kpis.hours_to_ship),
        hours_to_deliver=hours(kpis.hours_to_deliver),
    )


def inventory_row(kpis: inventory.InventoryKpis) -> InventoryKpiRow:
    return InventoryKpiRow(
        sku=kpis.sku,
        location_code=kpis.location_code,
        on_hand=kpis.on_hand,
        units_shipped=kpis.units_shipped,
        turnover=kpis.turnover,
        days_of_cover=kpis.days_of_cover,
        stock_out_days=kpis.stock_out_days,
        stock_out_rate=kpis.stock_out_rate,
        dead_stock=kpis.dead_stock,
    )


@strawberry.type(description='Reports, each over orders placed in [from, to) (see API.md, "Reports").')
class Reports:
    @strawberry.field(description="Units, orders, revenue and average order value per period.")
    async def sales_trend(
        self,
        info: Info,
        start: From,
        to: To,
        interval: ReportInterval = ReportInterval.DAY,
        group_by: SalesGroupBy | None = None,
        filter: ReportFilter | None = None,
    ) -> list[SalesTrendPoint]:
        window = window_of(start, to, filter)
        async with context(info).database.session() as session:
            points = await sales.sales_trend(
                session,
                window,
                common.Interval(interval.value),
                sales.SalesGroup(group_by.value) if group_by else None,
            )
        return [sales_point(point) for point in points]

    @strawberry.field(
        description="Top and rising products: each SKU's units or revenue in the window beside the period of "
        "equal length just before it. The filter narrows by SKU, category, channel and region."
    )
    async def top_products(
        self,
        info: Info,
        start: From,
        to: To,
        by: ProductMeasure = ProductMeasure.UNITS,
        limit: Annotated[int, strawberry.argument(description="How many in each list (1 to 100).")] = 10,
        min_units: Annotated[
            int, strawberry.argument(description="Units a SKU must sell in the window to be rising.")
        ] = 10,
        filter: ReportFilter | None = None,
    ) -> TopProducts:
        window = window_of(start, to, filter)
        async with context(info).database.session() as session:
            found = await products.top_products(session, window, products.ProductMeasure(by.value), limit, min_units)
        return TopProducts(
            previous_from=found.previous_from,
            top=[product_sales(p) for p in found.top],
            rising=[product_sales(p) for p in found.rising],
        )

    @strawberry.field(description="Completion, cancellation, return, late and split rates; hours to ship and deliver.")
    async def fulfillment_kpis(
        self,
        info: Info,
        start: From,
        to: To,
        group_by: FulfillmentGroupBy | None = None,
        filter: ReportFilter | None = None,
    ) -> list[FulfillmentKpiRow]:
        window = window_of(start, to, filter)
        async with context(info).database.session() as session:
            rows = await fulfillment.fulfillment_kpis(
                session, window, fulfillment.FulfillmentGroup(group_by.value) if group_by else None
            )
        return [fulfillment_row(row) for row in rows]

    @strawberry.field(description="Turnover, days of cover, stock-out days and dead stock per SKU and location.")
    async def inventory_kpis(
        self,
        info: Info,
        start: From,
        to: To,
        filter: ReportFilter | None = None,
    ) -> list[InventoryKpiRow]:
        window = window_of(start, to, filter)
        async with context(info).database.session() as session:
            rows = await inventory.inventory_kpis(session, window)
        return [inventory_row(row) for row in rows]

    @strawberry.field(
        description="Daily units forecast per SKU (the window is the history), with method, backtest MASE, "
        "intervals and a reorder suggestion per location."
    )
    async def demand_forecast(
        self,
        info: Info,
        start: From,
        to: To,
        skus: list[str] | None = None,
        horizon_days: int = 28,
        top: Annotated[int, strawberry.argument(description="Without skus: the top sellers of the window.")] = 10,
        service_level: Annotated[
            float, strawberry.argument(description="For the intervals and the safety stock (0.5 to 0.999).")
        ] = 0.95,
        filter: ReportFilter | None = None,
    ) -> list[DemandForecast]:
        window = window_of(start, to, filter)
        async with context(info).database.session() as session:
            found = await demand.demand_forecast(session, window, skus, horizon_days, top, service_level)
        return [forecast_of(each) for each in found]

    @strawberry.field(description="RFM segments of the customers who ordered in the window.")
    async def customer_segments(
        self, info: Info, start: From, to: To, filter: ReportFilter | None = None
    ) -> list[CustomerSegment]:
        window = window_of(start, to, filter)
        async with context(info).database.session() as session:
            found = await customers.customer_segments(session, window)
            wanted = asked_for(info.selected_fields, "preferences")
            preferences = await customers.segment_preferences(session, window) if wanted else {}
        return [
            CustomerSegment(
                name=s.name,
                customers=s.customers,
                revenue=[money(amount, currency) for currency, amount in s.revenue.items()],
                repeat_rate=s.repeat_rate,
                preferences=segment_preferences(preferences.get(s.name, customers.Preferences())),
            )
            for s in found
        ]

    @strawberry.field(description="Retention of the customers whose first order fell in the window, by month.")
    async def customer_cohorts(
        self, info: Info, start: From, to: To, filter: ReportFilter | None = None
    ) -> list[CustomerCohort]:
        window = window_of(start, to, filter)
        async with context(info).database.session() as session:
            found = await customers.customer_cohorts(session, window)
        return [CustomerCohort(month=c.month, customers=c.customers, retention=c.retention) for c in found]


def forecast_of(found: demand.SkuForecast) -> DemandForecast:
    return DemandForecast(
        sku=found.sku,
        method=found.method,
        mase=found.mase,
        points=[ForecastPoint(date=p.date, quantity=p.quantity, lower=p.lower, upper=p.upper) for p in found.points],
        reorder=[
            ReorderSuggestion(
                location_code=r.location_code,
                lead_time_days=r.lead_time_days,
                demand=r.suggestion.demand,
                safety_stock=r.suggestion.safety_stock,
                position=r.suggestion.position,
                quantity=r.suggestion.quantity,
            )
            for r in found.reorders
        ],
    )


@strawberry.type
class ReportsQuery:
    @strawberry.field(description="Sales, fulfilment and inventory reports (staff).", permission_classes=STAFF)
    def reports(self) -> Reports:
        return Reports()


@strawberry.type
class ReportsMutation:
    @strawberry.mutation(
        description="Recompute the stored forecast reorder suggestions (what low-stock alerts and transferSuggest "
        "read): of these SKUs now, or of every stocked SKU in the refresh_demand_forecasts job.",
        permission_classes=OPERATE,
    )
    async def reorder_forecast_refresh(
        self, info: Info, input: ReorderForecastRefreshInput
    ) -> ReorderForecastRefreshPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            if input.skus is None:
                demand.request_forecasts(session)
                return {"queued": True}
            stored = await demand.store_reorder_forecasts(session, report_zone(), input.skus)
            return {
                "forecasts": [
                    StoredReorderForecast(
                        sku=sku,
                        location_code=reorder.location_code,
                        method=row.method,
                        lead_time_days=row.lead_time_days,
                        daily_demand=row.daily_demand,
                        demand=row.demand,
                        safety_stock=row.safety_stock,
                        quantity=row.quantity,
                        computed_at=row.computed_at,
                    )
                    for sku, reorder, row in stored
                ]
            }

        return await run_mutation(info, ReorderForecastRefreshPayload, work)
