"""Nothing is stored that cannot be read back: amounts and quantities are bounded before writing.

A price of 1e999 or two receipts of 2,147,483,647 used to be stored, after which every
`products { price }` or `stockLevels` read failed for everyone. Each is now a userError
naming the field, nothing is written, and the database's CHECK constraints (migration
0007) refuse such a row even from code that skips the checks.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.exc import DBAPIError

from tests.support import (
    ORDER_CREATE,
    PRODUCT_CREATE,
    STOCK_RECEIVE,
    add_location,
    add_product,
    order_input,
    receive,
    run_async,
)

LEVELS = """query($sku: String!) { stockLevels(filter: {sku: $sku}) { edges { node { onHand reserved available } } }
  availableToPromise(sku: $sku) { total locations { available } } }"""
PRICES = "query($s: String!) { products(first: 100, filter: {search: $s}) { edges { node { sku price { amount } } } } }"
STOCK_ADJUST = """mutation($i: StockAdjustInput!) { stockAdjust(input: $i) { userErrors { field code message } } }"""
STOCK_COUNT = """mutation($i: StockCountInput!) { stockCount(input: $i) { userErrors { field code message } } }"""
REORDER = """mutation($i: ReorderPolicySetInput!) { reorderPolicySet(input: $i) { userErrors { field code } } }"""
TRANSFER = """mutation($i: TransferCreateInput!) { transferCreate(input: $i) { userErrors { field code } } }"""


def problems(payload: dict) -> dict[tuple[str, ...], str]:
    return {tuple(error["field"]): error["code"] for error in payload["userErrors"]}


def test_a_price_too_large_or_too_precise_is_refused_and_prices_stay_readable(admin, uid):
    add_product(admin, f"PRICE-{uid}-OK", price="19.90")
    for amount, code in (("1e999", "TOO_LARGE"), ("1e13", "TOO_LARGE"), ("0.00001", "TOO_PRECISE")):
        payload = admin.mutate(
            "productCreate",
            PRODUCT_CREATE,
            {"input": {"sku": f"PRICE-{uid}-{code}", "name": "x", "price": {"amount": amount, "currency": "CNY"}}},
        )
        assert payload["product"] is None
        assert problems(payload) == {("input", "price", "amount"): code}
    nodes = [edge["node"] for edge in admin(PRICES, {"s": f"PRICE-{uid}"})["products"]["edges"]]
    assert nodes == [{"sku": f"PRICE-{uid}-OK", "price": {"amount": "19.90"}}]
    # A unit price may be finer than the currency's minor unit (marketplaces split line prices).
    add_product(admin, f"PRICE-{uid}-FINE", price="0.1250")


def test_stock_is_bounded_per_movement_and_per_sku_so_every_figure_reads_back(admin, uid):
    sku, here, there = f"BIG-{uid}", f"BIG-{uid}-A", f"BIG-{uid}-B"
    add_product(admin, sku)
    add_location(admin, here, priority=900)
    add_location(admin, there, priority=900)

    too_many = admin.mutate(
        "stockReceive", STOCK_RECEIVE, {"input": {"sku": sku, "locationCode": here, "quantity": 2_147_483_647}}
    )
    assert problems(too_many) == {("input", "quantity"): "TOO_LARGE"} and too_many["stockLevel"] is None

    for _ in range(10):
        receive(admin, sku, here, 100_000_000)
    # The SKU now holds 1,000,000,000 units: not one more, at any location, by any movement.
    refused = admin.mutate("stockReceive", STOCK_RECEIVE, {"input": {"sku": sku, "locationCode": there, "quantity": 1}})
    assert problems(refused) == {("input", "quantity"): "TOO_LARGE"}
    assert "1,000,000,000" in refused["userErrors"][0]["message"]
    adjust = admin(STOCK_ADJUST, {"i": {"sku": sku, "locationCode": here, "delta": 1, "reason": "found"}})
    assert problems(adjust["stockAdjust"]) == {("input", "delta"): "TOO_LARGE"}
    count = admin(STOCK_COUNT, {"i": {"sku": sku, "locationCode": there, "countedQuantity": 5}})
    assert problems(count["stockCount"]) == {("input", "countedQuantity"): "TOO_LARGE"}
    huge_count = admin(STOCK_COUNT, {"i": {"sku": sku, "locationCode": there, "countedQuantity": 2_147_483_647}})
    assert problems(huge_count["stockCount"]) == {("input", "countedQuantity"): "TOO_LARGE"}
    huge_delta = admin(STOCK_ADJUST, {"i": {"sku": sku, "locationCode": here, "delta": -2_147_483_647, "reason": "x"}})
    assert problems(huge_delta["stockAdjust"]) == {("input", "delta"): "TOO_LARGE"}

    read = admin(LEVELS, {"sku": sku})
    assert [edge["node"]["onHand"] for edge in read["stockLevels"]["edges"]] == [1_000_000_000]
    assert read["availableToPromise"]["total"] == 1_000_000_000

    # Taking some away makes room again.
    assert (
        admin(STOCK_ADJUST, {"i": {"sku": sku, "locationCode": here, "delta": -5, "reason": "broken"}})["stockAdjust"][
            "userErrors"
        ]
        == []
    )
    receive(admin, sku, there, 5)


def test_order_amounts_and_quantities_are_bounded_per_field_and_in_total(admin, uid):
    sku = f"ORD-{uid}"
    add_product(admin, sku)

    def create(**changes):
        payload = admin.mutate("orderCreate", ORDER_CREATE, {"input": {**order_input([]), **changes}})
        assert payload["order"] is None, payload
        return problems(payload)

    line = {"sku": sku, "quantity": 1, "unitPrice": "1.00"}
    assert create(lines=[{**line, "quantity": 2_147_483_647}]) == {("input", "lines", "0", "quantity"): "TOO_LARGE"}
    assert create(lines=[{**line, "unitPrice": "1e999"}]) == {("input", "lines", "0", "unitPrice"): "TOO_LARGE"}
    assert create(lines=[line], shippingFee="0.001") == {("input", "shippingFee"): "TOO_PRECISE"}
    assert create(lines=[line], currency="JPY", discount="0.5") == {("input", "discount"): "TOO_PRECISE"}
    assert create(lines=[{**line, "quantity": 100_000_000, "unitPrice": "999999999999"}]) == {
        ("input", "lines"): "TOO_LARGE"
    }
    orders = admin("query($s: String!) { orders(filter: {search: $s}) { totalCount } }", {"s": sku})
    assert orders["orders"]["totalCount"] == 0


def test_thresholds_transfers_and_channel_buffers_are_bounded(admin, uid):
    sku, here, there = f"THR-{uid}", f"THR-{uid}-A", f"THR-{uid}-B"
    add_product(admin, sku)
    add_location(admin, here, priority=900)
    add_location(admin, there, priority=900)
    policy = admin(REORDER, {"i": {"sku": sku, "locationCode": here, "reorderPoint": 2_147_483_647}})
    assert problems(policy["reorderPolicySet"]) == {("input", "reorderPoint"): "TOO_LARGE"}
    transfer = admin(
        TRANSFER,
        {
            "i": {
                "fromLocationCode": here,
                "toLocationCode": there,
                "lines": [{"sku": sku, "quantity": 2_000_000_000}],
            }
        },
    )
    assert ("input", "lines", "0", "quantity") in problems(transfer["transferCreate"])
    channel = admin(
        "mutation($i: ChannelCreateInput!) { channelCreate(input: $i) { channel { code } userErrors { field code } } }",
        {
            "i": {
                "code": f"buf-{uid}".lower(),
                "name": "x",
                "kind": "manual",
                "settings": {},
                "stockBuffer": 2_000_000_000,
                "pollIntervalSeconds": 2_000_000_000,
            }
        },
    )["channelCreate"]
    assert channel["channel"] is None
    assert set(problems(channel)) >= {("input", "stockBuffer"), ("input", "pollIntervalSeconds")}


@pytest.mark.parametrize(
    ("table", "values"),
    [
        ("products", {"price_amount": Decimal("1e999")}),
        ("stock_levels", {"on_hand": 4_294_967_294}),
    ],
)
def test_the_database_refuses_unreadable_values_even_from_code_that_skips_the_checks(
    admin, database_url, uid, table, values
):
    from sqlalchemy import update

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Product, StockLevel

    sku = f"CK-{uid}"
    add_product(admin, sku)
    add_location(admin, sku, priority=900)
    receive(admin, sku, sku, 1)

    async def write() -> None:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                product_id = (await session.execute(Product.__table__.select().where(Product.sku == sku))).one().id
                model = Product if table == "products" else StockLevel
                key = model.id if table == "products" else StockLevel.product_id
                await session.execute(update(model).where(key == product_id).values(**values))
        finally:
            await database.dispose()

    # SQLite: the CHECK constraint; PostgreSQL: the column type already (INTEGER, NUMERIC(18, 4)).
    with pytest.raises(DBAPIError, match=r"within|out of|overflow"):
        run_async(write())
