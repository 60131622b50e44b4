"""inventoryKpis from the daily stock aggregate equal the same KPIs computed from the raw ledger.

Ten days of stock history are written through the domain functions the app uses (receive,
reserve one by one and in a batch, release, ship, a cancelled dispatch, adjust, count,
transfer, return to stock, write off), on a database of the test's own. Only the clock of
the ledger is moved from day to day, so the rows land on the days of the scenario.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select

from oms_graphql.db.engine import Database
from oms_graphql.db.migrate import alembic_config, upgrade
from oms_graphql.db.models import ReportDailyStock
from oms_graphql.domain import catalog, inventory, transfers
from oms_graphql.domain.inventory import MovementReason, Reference, Take
from oms_graphql.domain.reports.common import ReportFilter, check_window
from oms_graphql.domain.reports.inventory import inventory_kpis, inventory_kpis_from_ledger
from oms_graphql.domain.reports.stock_days import rebuild_stock_days
from tests.support import run_async

ZONE = ZoneInfo("Asia/Shanghai")  # the report time zone of the tests (the default)
DAY0 = datetime(2021, 6, 1, tzinfo=ZONE)
DAYS = 10
ADDRESS = catalog.AddressDetails(country="CN", line1="1 Test Road")


class Clock:
    def __init__(self) -> None:
        self.now = DAY0

    def __call__(self) -> datetime:
        return self.now

    def at(self, day: int, hour: float = 10) -> None:
        self.now = (DAY0 + timedelta(days=day, hours=hour)).astimezone(UTC)  # as utcnow() gives it


async def write_history(database: Database, clock: Clock) -> None:
    async def step(day: int, hour: float, work) -> None:
        clock.at(day, hour)
        async with database.session() as session, session.begin():
            await work(session)

    async def setup(session) -> None:
        for sku in ("KPI-A", "KPI-B"):
            await catalog.create_product(
                session, catalog.ProductDetails(sku=sku, name=sku, price_amount=Decimal("10"), price_currency="CNY")
            )
        for code in ("KPI-W1", "KPI-W2"):
            await catalog.create_location(
                session, catalog.LocationDetails(code=code, name=code, kind="WAREHOUSE", address=ADDRESS)
            )

    async def move(session, sku: str, code: str, reason: MovementReason, **change: int) -> None:
        product, location = await inventory.product_and_location(session, sku, code)
        assert await inventory.move_stock(
            session, product=product, location=location, reason=reason, reference=Reference(text="test"), **change
        )

    async def ship(session, sku: str, code: str, units: int) -> None:
        await inventory.ship_reserved(session, sku=sku, location_code=code, quantity=units, reference=Reference())

    async def reserve_batch(session) -> None:
        a, w1 = await inventory.product_and_location(session, "KPI-A", "KPI-W1")
        b, _ = await inventory.product_and_location(session, "KPI-B", "KPI-W1")
        takes = [[Take(a, w1, 2, Reference()), Take(b, w1, 5, Reference())]]
        assert await inventory.reserve_many(session, takes) == [True]

    async def transfer(session) -> None:
        made = await transfers.create_transfer(
            session,
            from_location_code="KPI-W1",
            to_location_code="KPI-W2",
            lines=[transfers.TransferLineRequest("KPI-A", 3)],
        )
        await transfers.ship_transfer(session, made.id, "test")

    async def arrive(session) -> None:
        [made] = (await session.execute(select(transfers.Transfer))).scalars()
        await transfers.receive_transfer(session, made.id, lines=None, close=True, actor="test")

    await step(0, 9, setup)  # day 0: nothing in stock anywhere
    await step(
        1,
        10,
        lambda s: inventory.receive_stock(s, sku="KPI-A", location_code="KPI-W1", quantity=10, reference=Reference()),
    )
    await step(
        1,
        23.9,
        lambda s: inventory.receive_stock(s, sku="KPI-B", location_code="KPI-W1", quantity=5, reference=Reference()),
    )  # 15:54 UTC, still day 1
    await step(2, 0.1, reserve_batch)  # 16:06 UTC the day before: Shanghai's day 2
    await step(2, 11, lambda s: move(s, "KPI-A", "KPI-W1", MovementReason.RESERVE, reserved=3))
    await step(2, 12, lambda s: move(s, "KPI-A", "KPI-W1", MovementReason.RELEASE, reserved=-1))
    await step(2, 15, lambda s: ship(s, "KPI-A", "KPI-W1", 4))
    await step(3, 9, lambda s: move(s, "KPI-A", "KPI-W1", MovementReason.SHIP_CANCELLED, on_hand=1, reserved=1))
    await step(3, 10, lambda s: ship(s, "KPI-B", "KPI-W1", 5))  # B is out from day 3
    await step(
        3,
        16,
        lambda s: inventory.adjust_stock(
            s, sku="KPI-A", location_code="KPI-W1", delta=-1, reason="damaged", actor="test"
        ),
    )
    await step(  # 01:30 in Shanghai is 17:30 UTC of the day before: the count is on day 4
        4,
        1.5,
        lambda s: inventory.count_stock(
            s, sku="KPI-A", location_code="KPI-W1", counted_quantity=7, reason="cycle count", actor="test"
        ),
    )
    await step(4, 12, transfer)  # 3 of A in transit to W2
    await step(5, 12, arrive)
    await step(
        6, 10, lambda s: inventory.restock(s, sku="KPI-B", location_code="KPI-W1", quantity=2, reference=Reference())
    )  # B back on day 6
    await step(
        6,
        18,
        lambda s: inventory.write_off(
            s, sku="KPI-B", location_code="KPI-W1", quantity=2, reference=Reference(text="broken")
        ),
    )  # and out again
    await step(7, 10, lambda s: move(s, "KPI-A", "KPI-W1", MovementReason.RESERVE, reserved=3))
    await step(7, 11, lambda s: ship(s, "KPI-A", "KPI-W1", 4))  # W1 is out of A on days 7 and 8
    await step(8, 0.2, lambda s: move(s, "KPI-A", "KPI-W2", MovementReason.RESERVE, reserved=1))
    await step(8, 0.5, lambda s: ship(s, "KPI-A", "KPI-W2", 1))  # a day-8 shipment, 16:30 UTC of day 7
    await step(
        9,
        10,
        lambda s: inventory.receive_stock(s, sku="KPI-A", location_code="KPI-W1", quantity=4, reference=Reference()),
    )


async def day_rows(database: Database) -> list[tuple]:
    async with database.session() as session:
        rows = await session.execute(select(ReportDailyStock).order_by(ReportDailyStock.__table__.primary_key.columns))
        return [(r.product_id, r.location_id, r.day, r.on_hand_delta, r.units_shipped) for r in rows.scalars()]


def test_the_daily_aggregate_answers_as_the_ledger_does(scratch_database_url, monkeypatch):
    url = scratch_database_url
    upgrade(url)
    clock = Clock()
    monkeypatch.setattr(inventory, "utcnow", clock)

    async def scenario() -> tuple[list[tuple], list[tuple[object, object]], list[tuple]]:
        database = Database(url)
        try:
            await write_history(database, clock)
            kept = await day_rows(database)
            answers = []
            async with database.session() as session:
                filters = [None, ReportFilter(skus=("KPI-A",)), ReportFilter(location_codes=("KPI-W2",))]
                for first in range(-1, DAYS + 1):
                    for last in range(first + 1, DAYS + 2):
                        for wanted in filters:
                            window = check_window(
                                DAY0 + timedelta(days=first), DAY0 + timedelta(days=last, hours=-13), ZONE, wanted
                            )
                            answers.append(
                                (
                                    await inventory_kpis(session, window),
                                    await inventory_kpis_from_ledger(session, window),
                                )
                            )
            async with database.session() as session, session.begin():
                await rebuild_stock_days(session, ZONE)
            rebuilt = await day_rows(database)
            return kept, answers, rebuilt
        finally:
            await database.dispose()

    kept, answers, rebuilt = run_async(scenario())
    for from_days, from_ledger in answers:
        assert [dataclasses.asdict(k) for k in from_days] == [dataclasses.asdict(k) for k in from_ledger]
    # The scenario is varied: stock-outs, shipments, dead stock and a full window all occur.
    every = [kpis for from_days, _ in answers for kpis in from_days]
    assert any(k.stock_out_days and k.units_shipped for k in every)
    assert any(k.dead_stock for k in every) and any(k.turnover for k in every)
    assert max(k.stock_out_days for k in every) >= 5
    # One row per level and day whose on hand moved.
    assert rebuilt == kept and len(kept) > 10

    # The migration fills the same rows from the ledger.
    from alembic import command

    command.downgrade(alembic_config(url), "0020")
    upgrade(url)

    async def migrated() -> list[tuple]:
        database = Database(url)
        try:
            return await day_rows(database)
        finally:
            await database.dispose()

    assert run_async(migrated()) == kept
