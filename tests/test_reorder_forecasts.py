"""The stored forecast reorder suggestions feed the low-stock alert and transferSuggest.

One SKU sold once, 4 units on the first of the 182 history days (Shanghai) before today, and
nothing since: a sparse series, so Croston/SBA. Its first demand sets size 4 and interval 1:
0.95 × 4 ÷ 1 = 3.8 units a day. The one-step residuals are 4 (day 0, nothing forecast yet) and
−3.8 on the other 181 days, so σ = √((4² + 181 × 3.8²) ÷ 182). The only location with the SKU
serves all of it (share 1). Lead time 7 (the level has none): demand 7 × 3.8 = 26.6, safety
stock z(95%) × σ × √7 ≈ 19.71, position 30 on hand − 4 reserved = 26, so 26.6 + 19.71 − 26 →
21 to order.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from statistics import NormalDist
from zoneinfo import ZoneInfo

import pytest

from tests.support import add_location, add_product, eventually, place_order, receive, run_async, wait_for_status

REFRESH = """mutation($skus: [String!]) { reorderForecastRefresh(input: {skus: $skus}) {
  forecasts { sku locationCode method leadTimeDays dailyDemand demand safetyStock quantity computedAt }
  queued userErrors { field message code } } }"""
POLICY = """mutation($input: ReorderPolicySetInput!) { reorderPolicySet(input: $input) {
  userErrors { field message code } } }"""
ALERTS = """query($sku: String!) { alerts(filter: {sku: $sku}) {
  edges { node { kind locationCode message suggestedQuantity resolvedAt } } } }"""
SUGGEST = """mutation($input: TransferSuggestInput!) { transferSuggest(input: $input) {
  suggestions { fromLocationCode toLocationCode quantity toCoverDaysBefore toCoverDaysAfter }
  userErrors { field message code } } }"""

SIGMA = math.sqrt((4**2 + 181 * 3.8**2) / 182)
SAFETY = NormalDist().inv_cdf(0.975) * SIGMA * math.sqrt(7)


def test_the_stored_forecast_sizes_the_low_stock_alert_and_the_transfer_cover(admin, uid):
    sku, warehouse, store = f"RF-{uid}", f"RF-WH-{uid}", f"RF-ST-{uid}"
    add_product(admin, sku, "10.00")
    add_location(admin, warehouse)
    receive(admin, sku, warehouse, 30)
    zone = ZoneInfo("Asia/Shanghai")
    first_day = datetime.now(zone).date() - timedelta(days=182)
    placed = datetime.combine(first_day, time(4), zone).astimezone(UTC).isoformat()
    order = place_order(admin, [(sku, 4, "10.00")], paid=True, placedAt=placed)
    wait_for_status(admin, order["id"], "ALLOCATED")

    def refreshed() -> list[dict] | None:
        payload = admin.mutate("reorderForecastRefresh", REFRESH, {"skus": [sku]})
        assert payload["userErrors"] == [], payload
        return payload["forecasts"] if payload["forecasts"] and payload["forecasts"][0]["dailyDemand"] else None

    [stored] = eventually(refreshed)  # once the order's report refresh has run
    assert (stored["sku"], stored["locationCode"], stored["method"], stored["leadTimeDays"]) == (
        sku,
        warehouse,
        "CROSTON_SBA",
        7,
    )
    assert stored["dailyDemand"] == pytest.approx(3.8)
    assert stored["demand"] == pytest.approx(26.6)
    assert stored["safetyStock"] == pytest.approx(SAFETY) and pytest.approx(19.71, abs=0.01) == SAFETY
    assert stored["quantity"] == math.ceil(26.6 + SAFETY - 26) == 21

    # Raising the reorder point to 40 raises the alert. Today's rule would buy back to the reorder
    # point (40 − 26 = 14, no lead time set); the forecast buys up to demand + safety stock:
    # ⌈26.6 + 19.71⌉ = 47 (above 40) − 26 available = 21.
    policy = {"sku": sku, "locationCode": warehouse, "reorderPoint": 40}
    assert admin.mutate("reorderPolicySet", POLICY, {"input": policy})["userErrors"] == []
    [alert] = [e["node"] for e in admin(ALERTS, {"sku": sku})["alerts"]["edges"]]
    assert alert["suggestedQuantity"] == 21
    assert "forecast 26.6 over the 7-day lead time" in alert["message"] and "CROSTON_SBA" in alert["message"]

    # A store with 10 units and no sales: transferSuggest moves them to the warehouse, and measures
    # the warehouse's cover at the forecast's 3.8 a day (26 ÷ 3.8 = 6.8 days, then 36 ÷ 3.8 = 9.5, to
    # one decimal as the API gives them),
    # not at the 4 units allocated over the last 28 days (26 ÷ (4/28) = 182 days).
    add_location(admin, store, kind="STORE")
    receive(admin, sku, store, 10)
    payload = admin.mutate("transferSuggest", SUGGEST, {"input": {"skus": [sku]}})
    assert payload["userErrors"] == []
    [move] = payload["suggestions"]
    assert (move["fromLocationCode"], move["toLocationCode"], move["quantity"]) == (store, warehouse, 10)
    assert (move["toCoverDaysBefore"], move["toCoverDaysAfter"]) == (round(26 / 3.8, 1), round(36 / 3.8, 1))


def test_without_a_forecast_the_alert_keeps_today_s_rule():
    from oms_graphql.domain.low_stock import suggest_purchase

    # Back to the reorder point 10 plus 5 days × 2 a day, less the 2 available: 18.
    assert (
        suggest_purchase(
            available=2, in_transit=0, reorder_point=10, reorder_quantity=None, lead_time_days=5, daily_rate=2.0
        ).quantity
        == 18
    )


def test_a_forecast_older_than_48_hours_is_not_used(database_url, admin, uid):
    import asyncio

    from sqlalchemy import select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Location, Product
    from oms_graphql.domain.low_stock import fresh_forecasts
    from tests.test_cli import oms

    sku, warehouse = f"RF-OLD-{uid}", f"RF-OLD-WH-{uid}"
    add_product(admin, sku, "10.00")
    add_location(admin, warehouse)
    receive(admin, sku, warehouse, 5)
    # The job's work as `oms report forecasts` runs it (nightly from cron): nothing sold, so a
    # forecast of 0 a day and nothing to order.
    done = oms("report", "forecasts", "--sku", sku, database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert "Stored 1 reorder forecasts" in done.stdout

    async def found(hours_later: float) -> int:
        database = Database(database_url)
        try:
            async with database.session() as session:
                product = await session.scalar(select(Product.id).where(Product.sku == sku))
                location = await session.scalar(select(Location.id).where(Location.code == warehouse))
                assert product is not None and location is not None
                later = datetime.now(UTC) + timedelta(hours=hours_later)
                found = await fresh_forecasts(session, product, [location], now=later)
                assert all(row.daily_demand == 0 and row.quantity == 0 for row in found.values())
                return len(found)
        finally:
            await database.dispose()

    assert asyncio.run(found(47)) == 1
    assert asyncio.run(found(49)) == 0


def stock_skus(database_url: str, skus: list[str], warehouse: str) -> None:
    from oms_graphql.db.engine import Database
    from oms_graphql.domain import catalog, inventory

    address = catalog.AddressDetails(country="CN", line1="1 Test Road")

    async def stock() -> None:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                await catalog.create_location(
                    session, catalog.LocationDetails(code=warehouse, name=warehouse, kind="WAREHOUSE", address=address)
                )
                for sku in skus:
                    details = catalog.ProductDetails(
                        sku=sku, name=sku, price_amount=Decimal("10"), price_currency="CNY"
                    )
                    await catalog.create_product(session, details)
                    await inventory.receive_stock(
                        session, sku=sku, location_code=warehouse, quantity=5, reference=inventory.Reference()
                    )
        finally:
            await database.dispose()

    run_async(stock())


def stored_forecasts(database_url: str, count: int) -> dict[str, str] | None:
    """SKU -> location code of every stored forecast, once there are ``count``."""
    from sqlalchemy import select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Location, Product, ReorderForecast

    async def read() -> dict[str, str]:
        database = Database(database_url)
        try:
            async with database.session() as session:
                rows = await session.execute(
                    select(Product.sku, Location.code)
                    .join(ReorderForecast, ReorderForecast.product_id == Product.id)
                    .join(Location, Location.id == ReorderForecast.location_id)
                )
                return dict(rows.all())
        finally:
            await database.dispose()

    found = run_async(read())
    return found if len(found) == count else None


def test_the_scheduler_refreshes_every_stocked_sku_s_forecast_and_next_at_the_set_hour(scratch_database_url):
    from oms_graphql.db.engine import Database
    from oms_graphql.db.migrate import upgrade
    from oms_graphql.db.models import Lease
    from oms_graphql.jobs.reports import FORECAST_LEASE
    from tests.test_subscriptions import oms_serve

    upgrade(scratch_database_url)
    stock_skus(scratch_database_url, ["RF-DAY-1", "RF-DAY-2"], "RF-DAY-WH")
    zone = ZoneInfo("Asia/Shanghai")
    hour = (datetime.now(zone).hour + 12) % 24  # not now: no refresh ran yet, so the first tick catches up
    env = {"OMS_FORECAST_REFRESH_HOUR": str(hour), "OMS_CHANNEL_TICK_SECONDS": "0.5"}
    with oms_serve(scratch_database_url, "memory", **env):
        stored = eventually(lambda: stored_forecasts(scratch_database_url, 2), timeout=60)  # a loaded machine
    assert stored == {"RF-DAY-1": "RF-DAY-WH", "RF-DAY-2": "RF-DAY-WH"}

    async def lease_expiry() -> datetime:
        database = Database(scratch_database_url)
        try:
            async with database.session() as session:
                lease = await session.get(Lease, FORECAST_LEASE)
                assert lease is not None
                return lease.expires_at
        finally:
            await database.dispose()

    # The next refresh: the next time it is that hour in the report time zone.
    expires = run_async(lease_expiry()).astimezone(zone)
    assert (expires.hour, expires.minute) == (hour, 0)
    assert timedelta(0) < expires - datetime.now(zone) < timedelta(hours=24)


def test_of_several_schedulers_only_one_asks_for_the_day_s_refresh(scratch_database_url):
    import asyncio

    from sqlalchemy import func, select

    from oms_graphql.db.engine import Database
    from oms_graphql.db.migrate import upgrade
    from oms_graphql.db.models import OutboxEntry
    from oms_graphql.jobs.reports import claim_forecast_refresh

    upgrade(scratch_database_url)
    zone = ZoneInfo("Asia/Shanghai")

    async def schedulers() -> tuple[list[bool], int]:
        database = Database(scratch_database_url)
        try:

            async def one(holder: str) -> bool:
                async with database.session() as session, session.begin():
                    return await claim_forecast_refresh(session, holder, zone, 3)

            claims = await asyncio.gather(*(one(f"worker-{n}") for n in range(4)))
            later = await one("worker-late")  # the same day: the lease holds until the next 03:00
            async with database.session() as session:
                jobs = await session.scalar(
                    select(func.count()).select_from(OutboxEntry).where(OutboxEntry.topic == "refresh_demand_forecasts")
                )
            return [*claims, later], int(jobs or 0)
        finally:
            await database.dispose()

    claims, jobs = run_async(schedulers())
    assert sorted(claims) == [False, False, False, False, True] and jobs == 1


def test_without_skus_the_refresh_is_queued_and_its_job_stores_every_stocked_sku(scratch_database_url):
    from oms_graphql.db.migrate import upgrade
    from tests.support import GraphQLClient, create_token
    from tests.test_subscriptions import oms_serve

    upgrade(scratch_database_url)
    stock_skus(scratch_database_url, ["RF-Q-1", "RF-Q-2"], "RF-Q-WH")
    with oms_serve(scratch_database_url, "memory") as api:  # the schedule is off: only the mutation asks
        admin = GraphQLClient(api, create_token(scratch_database_url, "ADMIN", "forecasts"))
        payload = admin.mutate("reorderForecastRefresh", REFRESH, {"skus": None})
        assert payload == {"forecasts": [], "queued": True, "userErrors": []}
        stored = eventually(lambda: stored_forecasts(scratch_database_url, 2), timeout=60)  # a loaded machine
    assert stored == {"RF-Q-1": "RF-Q-WH", "RF-Q-2": "RF-Q-WH"}
