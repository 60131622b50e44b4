"""Order pages: keyset cursors that keep their place while orders arrive, in every sort and
both directions, at the same cost however deep; relations prefetched for the whole page."""

from __future__ import annotations

import base64
import json

import pytest

from oms_graphql.schema.ids import from_global_id
from tests.support import add_product, place_order
from tests.test_query_cost import counting_queries

PAGE = """query($s: String!, $sort: OrderSort!, $first: Int, $after: String, $last: Int, $before: String) {
  orders(filter: {search: $s}, sort: $sort, first: $first, after: $after, last: $last, before: $before) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id number placedAt total { amount } lines { sku quantity } } } } }"""


def _place(admin, uid: str, sku: str, prices: list[str]) -> list[dict]:
    return [place_order(admin, [(sku, 1, price)], customer={"name": f"Pages {uid}"}) for price in prices]


def _key(sort: str, node: dict) -> tuple:
    key = from_global_id(node["id"])[1]
    return {
        "PLACED_AT_DESC": lambda: (node["placedAt"], key),
        "PLACED_AT_ASC": lambda: (node["placedAt"], key),
        "NUMBER_ASC": lambda: (node["number"],),
        "TOTAL_DESC": lambda: (float(node["total"]["amount"]), key),
    }[sort]()


def _walk(admin, uid: str, sort: str, backwards: bool, size: int = 2) -> list[dict]:
    """Every page of the list, first to last (or last to first), as the client sees them."""
    nodes: list[dict] = []
    cursor = None
    while True:
        variables = {"s": f"Pages {uid}", "sort": sort}
        variables.update({"last": size, "before": cursor} if backwards else {"first": size, "after": cursor})
        page = admin(PAGE, variables)["orders"]
        edges = page["edges"]
        nodes = [e["node"] for e in edges] + nodes if backwards else nodes + [e["node"] for e in edges]
        info = page["pageInfo"]
        assert [e["cursor"] for e in edges[:1]] == ([info["startCursor"]] if edges else [])
        if not (info["hasPreviousPage"] if backwards else info["hasNextPage"]):
            return nodes
        cursor = info["startCursor"] if backwards else info["endCursor"]


@pytest.mark.parametrize("sort", ["PLACED_AT_DESC", "PLACED_AT_ASC", "NUMBER_ASC", "TOTAL_DESC"])
def test_every_sort_read_forwards_or_backwards_returns_every_order_once_in_order(admin, uid, sort):
    sku = f"PG-{uid}"
    add_product(admin, sku)
    placed = _place(admin, uid, sku, ["5.00", "9.00", "5.00", "7.00", "9.00"])  # equal totals: the id decides

    forwards, backwards = _walk(admin, uid, sort, backwards=False), _walk(admin, uid, sort, backwards=True)

    assert sorted(n["id"] for n in forwards) == sorted(o["id"] for o in placed)
    assert [n["id"] for n in backwards] == [n["id"] for n in forwards]
    keys = [_key(sort, n) for n in forwards]
    assert keys == sorted(keys, reverse=sort.endswith("DESC"))
    assert all(n["lines"] == [{"sku": sku, "quantity": 1}] for n in forwards)


def test_orders_arriving_between_two_pages_neither_shift_nor_repeat_the_next_page(admin, uid):
    sku = f"PG-{uid}"
    add_product(admin, sku)
    placed = _place(admin, uid, sku, ["1.00", "2.00", "3.00", "4.00"])
    newest_first = [o["id"] for o in reversed(placed)]
    first = admin(PAGE, {"s": f"Pages {uid}", "sort": "PLACED_AT_DESC", "first": 2})["orders"]

    _place(admin, uid, sku, ["5.00", "6.00"])  # newer than every order of the first page
    after = admin(
        PAGE, {"s": f"Pages {uid}", "sort": "PLACED_AT_DESC", "first": 2, "after": first["pageInfo"]["endCursor"]}
    )["orders"]

    assert [e["node"]["id"] for e in first["edges"]] == newest_first[:2]
    assert [e["node"]["id"] for e in after["edges"]] == newest_first[2:]
    assert after["pageInfo"]["hasNextPage"] is False and after["pageInfo"]["hasPreviousPage"] is True
    assert after["totalCount"] == 6


def test_a_deep_page_runs_the_same_statements_as_the_first_and_no_offset(admin, uid, database_url):
    sku = f"PG-{uid}"
    add_product(admin, sku)
    _place(admin, uid, sku, [f"{n}.00" for n in range(1, 9)])
    variables = {"s": f"Pages {uid}", "sort": "PLACED_AT_DESC", "first": 2}
    costs, cursor = [], None
    for _ in range(4):
        with counting_queries() as statements:
            page = admin(PAGE, {**variables, "after": cursor})["orders"]
        costs.append(statements)
        cursor = page["pageInfo"]["endCursor"]

    assert len({len(statements) for statements in costs}) == 1, [len(s) for s in costs]
    deep_page = [s for s in costs[-1] if s.lstrip().startswith("SELECT orders.id")]
    # A range on the sort key (the index ix_orders_placed_id), not rows skipped by an offset
    # (SQLite's dialect always writes "LIMIT ? OFFSET ?", with 0 here; PostgreSQL's writes none).
    assert len(deep_page) == 1 and "(orders.placed_at, orders.id) < " in deep_page[0], deep_page
    if database_url.startswith("postgresql"):
        assert "OFFSET" not in deep_page[0].upper(), deep_page


def test_a_cursor_from_another_list_or_sort_or_an_old_offset_cursor_is_refused(admin, uid):
    sku = f"PG-{uid}"
    add_product(admin, sku)
    _place(admin, uid, sku, ["1.00", "2.00"])
    by_number = admin(PAGE, {"s": f"Pages {uid}", "sort": "NUMBER_ASC", "first": 1})["orders"]["pageInfo"]
    forged = base64.urlsafe_b64encode(json.dumps(["placedAt-", ["not a time", 1]]).encode()).decode()
    overflow = base64.urlsafe_b64encode(json.dumps(["placedAt-", ["2026-01-01T00:00:00+00:00", 2**70]]).encode())
    for field, cursor in (
        ("after", by_number["endCursor"]),
        ("before", base64.urlsafe_b64encode(b"offset:1").decode()),
        ("after", forged),
        ("after", overflow.decode()),
        ("after", "junk"),
    ):
        body = admin.raw(PAGE, {"s": f"Pages {uid}", "sort": "PLACED_AT_DESC", "first": 1, field: cursor})
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "INVALID_CURSOR", body
        assert field in body["errors"][0]["message"]


def test_a_page_read_with_fragments_prefetches_what_they_ask_and_masks_as_order_by_id_does(admin, viewer, uid):
    sku = f"PG-{uid}"
    add_product(admin, sku)
    order = place_order(admin, [(sku, 2, "3.00")], customer={"name": f"Pages {uid}", "phone": "+86 13812345678"})
    fields = "number customer { name phone } shippingAddress { line1 city } lines { sku quantity } channel { code }"
    query = f"""query($s: String!) {{ orders(filter: {{search: $s}}) {{ edges {{ node {{ ...O }} }} }} }}
      fragment O on Order {{ ... on Order {{ {fields} }} }}"""
    one = f"query($id: ID!) {{ order(id: $id) {{ {fields} }} }}"
    for client in (admin, viewer):
        with counting_queries() as statements:
            page = client(query, {"s": f"Pages {uid}"})["orders"]["edges"]
        assert [edge["node"] for edge in page] == [client(one, {"id": order["id"]})["order"]]
        assert len(statements) <= 6, statements  # page, customer, address, lines, channel (+ the caller)
    masked = viewer(one, {"id": order["id"]})["order"]
    assert masked["customer"]["phone"] != "+86 13812345678" and masked["shippingAddress"]["line1"] == "****"
