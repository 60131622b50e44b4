"""The calculated query cost: refused over the caller's limit before anything runs, reported
on every answer, and a per-caller bucket that empties (HTTP 429, Retry-After) and refills."""

from __future__ import annotations

import time

from tests.conftest import REDIS_URL, requires_redis
from tests.support import GraphQLClient, add_product, create_token, customer_id_of, place_order, serve_variant
from tests.test_query_cost import counting_queries


def aliases(count: int, field: str) -> str:
    return "{ " + " ".join(f"a{n}: {field}" for n in range(count)) + " }"


def reading(table: str, statements: list[str]) -> list[str]:
    """The SELECTs among ``statements`` that read ``table``."""
    return [statement for statement in statements if f"FROM {table}" in statement]


def test_285_pages_of_orders_as_a_customer_are_refused_before_running(admin, server, database_url, uid):
    add_product(admin, f"COST-{uid}")
    order = place_order(admin, [(f"COST-{uid}", 1, "5.00")], customer={"name": "Cost", "phone": f"+86 1{uid[:6]}7"})
    customer_id = customer_id_of(database_url, order["id"])
    customer = GraphQLClient(server, create_token(database_url, "CUSTOMER", "cost shopper", customer_id=customer_id))
    with counting_queries() as allowed:
        assert customer("{ orders(first: 100) { totalCount } }")["orders"]["totalCount"] == 1
    assert reading("orders", allowed)  # the counter sees a page that runs
    with counting_queries() as refused:
        body = customer.raw(aliases(285, "orders(first: 100) { totalCount }"))
    assert reading("orders", refused) == []  # refused before any resolver read an order
    assert body.get("data") is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED", error
    assert error["extensions"]["cost"] == {"requested": 285 * 101, "limit": 2000}
    assert "28785" in error["message"] and "2000" in error["message"]


def test_450_counts_of_stock_movements_as_a_viewer_are_refused_before_running(viewer):
    with counting_queries() as allowed:
        assert "errors" not in viewer.raw(aliases(2, "stockMovements(first: 100) { totalCount }"))
    assert reading("stock_movements", allowed)
    with counting_queries() as refused:
        body = viewer.raw(aliases(450, "stockMovements(first: 100) { totalCount }"))
    assert reading("stock_movements", refused) == []
    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert body["errors"][0]["extensions"]["cost"]["requested"] == 450 * 101


def test_a_normal_page_runs_and_reports_its_cost(viewer):
    query = "query($n: Int!) { orders(first: $n) { totalCount edges { node { number } } } }"
    body = viewer.raw(query, {"n": 10})
    assert "errors" not in body and body["data"]["orders"]["totalCount"] >= 0
    cost = body["extensions"]["cost"]
    # orders 1 + 10 × (totalCount 1 + edges 1 + node 1 + number 1)
    assert cost["requested"] == 41 and cost["limit"] == 10000
    assert cost["bucketSize"] == 100000 and cost["restoreRate"] == 10000
    assert 0 <= cost["remaining"] <= 100000 - 41


def test_no_page_size_counts_as_the_default_page(viewer):
    body = viewer.raw("{ products { edges { node { sku } } } }")
    assert body["extensions"]["cost"]["requested"] == 1 + 100 * 3


def test_mutations_are_costed_too(admin, uid):
    create = (
        'mutation($s: String!) { productCreate(input: {sku: $s, name: "C"}) { product { sku } userErrors { field } } }'
    )
    body = admin.raw(create, {"s": f"COST-{uid}"})
    assert "errors" not in body and body["extensions"]["cost"]["requested"] == 5


def test_the_bucket_empties_and_refills(settings, database_url):
    # VIEWER: 100 per operation, a bucket of 300 refilled at 50 a second.
    limits = {**settings.cost_limits, "VIEWER": 100}
    with serve_variant(settings, cost_limits=limits, cost_bucket_factor=3.0, cost_restore_factor=0.5) as url:
        client = GraphQLClient(url, create_token(database_url, "VIEWER", "bucket viewer"))
        page = "{ stockMovements(first: 99) { totalCount } }"  # costs 100
        remaining = [client.raw(page)["extensions"]["cost"]["remaining"] for _ in range(3)]
        assert remaining[0] > remaining[1] > remaining[2] >= 0, remaining

        refused = client.post(page)
        assert refused.status_code == 429
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 2
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "THROTTLED" and error["extensions"]["cost"]["retryAfterSeconds"]

        other = GraphQLClient(url, create_token(database_url, "VIEWER", "another viewer"))
        assert "errors" not in other.raw(page)  # buckets are per token

        time.sleep(retry_after)
        again = client.post(page)
        assert again.status_code == 200 and "errors" not in again.json()


@requires_redis
def test_processes_sharing_redis_share_the_bucket(settings, database_url):
    limits = {**settings.cost_limits, "VIEWER": 100}
    variant = {"cost_limits": limits, "cost_bucket_factor": 2.0, "cost_restore_factor": 0.01, "redis_url": REDIS_URL}
    token = create_token(database_url, "VIEWER", "shared bucket viewer")
    page = "{ stockMovements(first: 99) { totalCount } }"
    with serve_variant(settings, **variant) as first_url, serve_variant(settings, **variant) as second_url:
        first, second = GraphQLClient(first_url, token), GraphQLClient(second_url, token)
        assert "errors" not in first.raw(page)
        assert "errors" not in second.raw(page)
        assert first.post(page).status_code == 429
        assert second.post(page).status_code == 429
