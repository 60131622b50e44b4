"""A realistic demo data set, built through the same domain functions the API uses."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from decimal import Decimal

from rich.progress import Progress
from sqlalchemy import func, select

from oms_graphql.config import Settings
from oms_graphql.db.engine import Database
from oms_graphql.db.migrate import describe
from oms_graphql.db.models import Channel, Order, utcnow
from oms_graphql.domain import catalog, inventory, orders
from oms_graphql.domain.allocation import allocate_order
from oms_graphql.domain.customers import CustomerDetails

PRODUCTS = [
    ("TEA-LJ-250", "West Lake Longjing tea 250 g", "Tea", "168.00", 300, []),
    ("TEA-PU-357", "Pu'er cake 357 g", "Tea", "298.00", 500, []),
    ("CUP-CER-01", "Celadon tea cup", "Tableware", "49.00", 120, ["FRAGILE"]),
    ("POT-YX-200", "Yixing clay teapot 200 ml", "Tableware", "399.00", 450, ["FRAGILE"]),
    ("MOON-6PK", "Mooncakes, box of 6", "Food", "128.00", 900, ["COLD_CHAIN"]),
    ("RICE-5KG", "Wuchang rice 5 kg", "Food", "89.90", 5100, ["OVERSIZE"]),
    ("SILK-SCF", "Hangzhou silk scarf", "Apparel", "259.00", 80, []),
    ("FAN-BAMB", "Bamboo hand fan", "Gifts", "35.00", 90, []),
    ("HONEY-500", "Longan honey 500 g", "Food", "78.00", 650, []),
    ("CHOP-EBN", "Ebony chopsticks, 5 pairs", "Tableware", "66.00", 200, []),
    ("LANT-RED", "Red paper lantern", "Gifts", "25.00", 150, ["FRAGILE"]),
    ("WOK-CI-32", "Cast-iron wok 32 cm", "Kitchen", "219.00", 3200, ["OVERSIZE"]),
]
LOCATIONS = [
    ("WH-SH", "Shanghai warehouse", "WAREHOUSE", "Shanghai", "Shanghai", "Pudong", 31.2304, 121.4737, 10),
    ("WH-GZ", "Guangzhou warehouse", "WAREHOUSE", "Guangdong", "Guangzhou", "Baiyun", 23.1291, 113.2644, 20),
    ("ST-HZ", "Hangzhou West Lake store", "STORE", "Zhejiang", "Hangzhou", "Xihu", 30.2741, 120.1551, 50),
    ("ST-BJ", "Beijing Sanlitun store", "STORE", "Beijing", "Beijing", "Chaoyang", 39.9042, 116.4074, 60),
]
CITIES = [
    ("Shanghai", "Shanghai", 31.23, 121.47),
    ("Beijing", "Beijing", 39.90, 116.40),
    ("Zhejiang", "Hangzhou", 30.27, 120.15),
    ("Guangdong", "Shenzhen", 22.54, 114.06),
    ("Sichuan", "Chengdu", 30.57, 104.07),
    ("Jiangsu", "Nanjing", 32.06, 118.80),
]
NAMES = [
    "Wang Fang",
    "Li Wei",
    "Zhang Min",
    "Liu Yang",
    "Chen Jing",
    "Yang Lei",
    "Zhao Li",
    "Huang Qiang",
    "Zhou Xin",
    "Wu Ting",
    "Xu Hao",
    "Sun Yue",
    "Ma Lin",
    "Zhu Hong",
    "Hu Jun",
    "Guo Mei",
]


async def _load(settings: Settings, order_count: int, seed: int) -> bool:
    rng = random.Random(seed)
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            if await session.scalar(select(func.count()).select_from(Order)):
                return False
        with Progress() as progress:
            setup_task = progress.add_task("Catalog, locations and stock", total=len(PRODUCTS) + len(LOCATIONS))
            async with database.session() as session, session.begin():
                for code, name, kind, region, city, district, lat, lon, priority in LOCATIONS:
                    await catalog.create_location(
                        session,
                        catalog.LocationDetails(
                            code=code,
                            name=name,
                            kind=kind,
                            priority=priority,
                            address=orders.AddressDetails(
                                country="CN",
                                region=region,
                                city=city,
                                district=district,
                                line1=f"{rng.randint(1, 999)} {district} Road",
                                latitude=lat,
                                longitude=lon,
                            ),
                        ),
                    )
                    progress.advance(setup_task)
                for sku, name, category, price, grams, handling in PRODUCTS:
                    await catalog.create_product(
                        session,
                        catalog.ProductDetails(
                            sku=sku,
                            name=name,
                            category=category,
                            price_amount=Decimal(price),
                            price_currency="CNY",
                            weight_grams=grams,
                            handling=handling,
                        ),
                    )
                    for code, *_ in LOCATIONS:
                        await inventory.receive_stock(
                            session,
                            sku=sku,
                            location_code=code,
                            quantity=rng.randint(0, 60),
                            reference=inventory.Reference("RECEIPT", text="Opening stock", actor="demo"),
                        )
                    progress.advance(setup_task)
                session.add_all(
                    [
                        Channel(code="tmall-flagship", name="Tmall flagship store", kind="taobao", active=False),
                        Channel(code="jd-self", name="JD shop", kind="jd", active=False),
                    ]
                )
            order_task = progress.add_task("Orders", total=order_count)
            now = utcnow()
            for index in range(order_count):
                async with database.session() as session, session.begin():
                    region, city, lat, lon = rng.choice(CITIES)
                    name = rng.choice(NAMES)
                    phone = f"+86 13{rng.randint(100000000, 999999999)}"
                    chosen = rng.sample(PRODUCTS, rng.randint(1, 3))
                    order, _ = await orders.create_order(
                        session,
                        orders.NewOrder(
                            channel_code="manual",
                            currency="CNY",
                            external_id=f"DEMO-{index:05d}",
                            customer=CustomerDetails(name=name, phone=phone),
                            shipping_address=orders.AddressDetails(
                                country="CN",
                                region=region,
                                city=city,
                                line1=f"{rng.randint(1, 300)} Renmin Road",
                                name=name,
                                phone=phone,
                                latitude=lat + rng.uniform(-0.1, 0.1),
                                longitude=lon + rng.uniform(-0.1, 0.1),
                            ),
                            lines=[
                                orders.LineDetails(sku=sku, quantity=rng.randint(1, 3), unit_price=Decimal(price))
                                for sku, _n, _c, price, _g, _h in chosen
                            ],
                            shipping_fee=Decimal(rng.choice(["0", "10", "12"])),
                            paid=rng.random() < 0.8,
                            placed_at=now - timedelta(days=rng.uniform(0, 60)),
                            actor="demo",
                        ),
                    )
                    if order.status == orders.OrderStatus.CONFIRMED:
                        await allocate_order(session, order.id, actor="demo")
                    roll = rng.random()
                    if roll < 0.07 and order.status != orders.OrderStatus.CANCELLED:
                        await orders.cancel_order(session, order, "Customer changed their mind", "demo")
                    elif roll < 0.12 and orders.can_transition(order.status, orders.OrderStatus.ON_HOLD):
                        await orders.place_hold(
                            session,
                            order,
                            orders.HoldReason.BUYER_NOTE,
                            note="Buyer asked to deliver after 6 pm",
                            actor="demo",
                        )
                progress.advance(order_task)
        return True
    finally:
        await database.dispose()


def load_demo_data(settings: Settings, order_count: int = 300, seed: int = 7) -> None:
    """Load the demo data set into an empty, migrated database (the caller checks it is one)."""
    loaded = asyncio.run(_load(settings, order_count, seed))
    where = describe(settings.database_url)
    if loaded:
        print(f"Demo data loaded into {where}: {order_count} orders.")
    else:
        print(f"{where} already has orders; demo data not loaded. `oms reset --yes` empties it first.")
