"""Ordinary bad input at the scalar and id layer is a clear GraphQL error, never "Internal error".

Naive DateTimes (no offset) are refused, never guessed; times outside 1900–2999 are refused;
lone UTF-16 surrogates and non-finite numbers in variables are refused before any field runs;
global ids and cursors whose key cannot fit the database are "not found", not a driver crash.
"""

from __future__ import annotations

import base64
import json

from tests.support import (
    ORDER_CREATE,
    PRODUCT_CREATE,
    GraphQLClient,
    add_product,
    create_token,
    customer_id_of,
    order_input,
    place_order,
)

ORDER_HOLD = "mutation($i: OrderHoldInput!) { orderHold(input: $i) { userErrors { field code } } }"
ORDER_CANCEL = "mutation($i: OrderCancelInput!) { orderCancel(input: $i) { userErrors { field code } } }"
MY_ORDERS = """query($after: DateTime) { orders(filter: {placedAfter: $after}) { totalCount } }"""
COUNT_BY_SEARCH = "query($s: String!) { orders(filter: {search: $s}) { totalCount } }"


def post_raw(client: GraphQLClient, body: str) -> tuple[int, dict]:
    """POST a JSON body exactly as given (httpx's own encoder would refuse a lone surrogate)."""
    response = client.http.post("/graphql", content=body.encode(), headers={"content-type": "application/json"})
    return response.status_code, response.json()


def post_ascii(client: GraphQLClient, query: str, variables: dict) -> tuple[int, dict]:
    # ensure_ascii: a lone surrogate travels as the escape "\ud800", which is what a hostile client sends.
    return post_raw(client, json.dumps({"query": query, "variables": variables}, ensure_ascii=True))


def assert_refused(status: int, body: dict, *words: str) -> dict:
    assert status < 500, body
    assert body.get("errors"), body
    error = body["errors"][0]
    assert "Internal error" not in error["message"], body
    for word in words:
        assert word in error["message"], body
    return error


def global_id(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_a_time_without_an_offset_is_refused_not_guessed(admin, uid):
    sku = f"TZ-{uid}"
    add_product(admin, sku)
    naive = order_input([(sku, 1, "5.00")], externalId=f"TZ-{uid}", placedAt="2025-03-14T08:00:00")
    status, body = post_ascii(admin, ORDER_CREATE, {"input": naive})
    assert_refused(status, body, "offset")
    assert admin(COUNT_BY_SEARCH, {"s": f"TZ-{uid}"})["orders"]["totalCount"] == 0

    order = place_order(admin, [(sku, 1, "5.00")], externalId=f"TZ-{uid}", placedAt="2025-03-14T16:00:00+08:00")
    placed = admin("query($id: ID!) { order(id: $id) { placedAt } }", {"id": order["id"]})["order"]["placedAt"]
    assert placed == "2025-03-14T08:00:00+00:00"  # answered in UTC

    status, body = post_ascii(admin, ORDER_HOLD, {"i": {"id": order["id"], "deadline": "2025-03-15T08:00:00"}})
    assert_refused(status, body, "offset")
    status, body = post_ascii(
        admin,
        "mutation($i: OrderConfirmPaymentInput!) { orderConfirmPayment(input: $i) { userErrors { code } } }",
        {"i": {"id": order["id"], "paidAt": "2025-03-14 09:00"}},
    )
    assert_refused(status, body, "offset")


def test_a_customer_filtering_by_a_naive_time_gets_a_clear_error(admin, server, database_url, uid):
    sku = f"TZC-{uid}"
    add_product(admin, sku)
    order = place_order(admin, [(sku, 1, "5.00")])
    token = create_token(database_url, "CUSTOMER", f"buyer {uid}", customer_id_of(database_url, order["id"]))
    customer = GraphQLClient(server, token)
    status, body = post_ascii(customer, MY_ORDERS, {"after": "2025-01-01T00:00:00"})
    assert_refused(status, body, "offset")
    assert customer(MY_ORDERS, {"after": "2025-01-01T00:00:00Z"})["orders"]["totalCount"] >= 1


def test_times_out_of_range_are_refused(admin, uid):
    sku = f"TZR-{uid}"
    add_product(admin, sku)
    for moment in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "1850-06-01T00:00Z", "3000-01-01T00:00Z"):
        status, body = post_ascii(
            admin, ORDER_CREATE, {"input": order_input([(sku, 1, "5.00")], externalId=f"TZR-{uid}", placedAt=moment)}
        )
        assert_refused(status, body, "out of range")
        status, body = post_ascii(admin, MY_ORDERS, {"after": moment})
        assert_refused(status, body, "out of range")
    assert admin(COUNT_BY_SEARCH, {"s": f"TZR-{uid}"})["orders"]["totalCount"] == 0


def test_a_lone_surrogate_in_any_string_is_refused_before_anything_is_written(admin, uid):
    sku = f"SUR-{uid}"
    status, body = post_ascii(admin, PRODUCT_CREATE, {"input": {"sku": sku, "name": "mug \ud800"}})
    error = assert_refused(status, body, "surrogate", "$input.name")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert admin("query($s: String!) { product(sku: $s) { sku } }", {"s": sku})["product"] is None

    status, body = post_ascii(admin, COUNT_BY_SEARCH, {"s": "\udfff"})
    assert_refused(status, body, "surrogate")
    status, body = post_ascii(admin, PRODUCT_CREATE, {"input": {"sku": sku, "name": "mug\x00"}})
    assert_refused(status, body, "NUL", "$input.name")
    status, body = post_ascii(
        admin,
        "mutation($i: ChannelCreateInput!) { channelCreate(input: $i) { userErrors { code } } }",
        {"i": {"code": f"sur-{uid}".lower(), "name": "x", "kind": "taobao", "settings": {"appKey\ud800": "x"}}},
    )
    assert_refused(status, body, "key", "surrogate")
    # Literals in the document are the lexer's to refuse: a syntax error, not a crash.
    status, body = post_raw(admin, '{"query": "{ product(sku: \\"\\\\ud800\\") { sku } }"}')
    assert_refused(status, body)

    # A real pair is one character beyond U+FFFF: taken and read back as sent.
    status, body = post_ascii(admin, PRODUCT_CREATE, {"input": {"sku": sku, "name": "mug \ud83d\ude00"}})
    assert status == 200 and body["data"]["productCreate"]["userErrors"] == [], body
    assert admin("query($s: String!) { product(sku: $s) { name } }", {"s": sku})["product"]["name"] == "mug 😀"


def test_nan_and_infinity_in_json_variables_are_refused(admin, uid):
    query = "mutation($i: ChannelCreateInput!) { channelCreate(input: $i) { userErrors { code } } }"
    for constant in ("NaN", "Infinity", "-Infinity", "1e999", "123456789012345678901234567890"):
        variables = '{"i": {"code": "nan-CODE", "name": "x", "kind": "taobao", "settings": {"timeoutSeconds": NUMBER}}}'
        variables = variables.replace("CODE", uid.lower()).replace("NUMBER", constant)
        body = '{"query": ' + json.dumps(query) + ', "variables": ' + variables + "}"
        status, answer = post_raw(admin, body)
        error = assert_refused(status, answer, "$i.settings.timeoutSeconds")
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert admin("{ channels { code } }")["channels"] and all(
        c["code"] != f"nan-{uid.lower()}" for c in admin("{ channels { code } }")["channels"]
    )


def test_ids_and_cursors_too_large_for_the_database_are_not_found(admin, uid):
    for key in ("99999999999999999999", "9223372036854775808", "0", "١٢", "1" * 5000):
        huge = global_id(f"Order:{key}")
        status, body = post_ascii(admin, "query($id: ID!) { order(id: $id) { id } node(id: $id) { id } }", {"id": huge})
        assert status == 200 and body.get("errors") is None and body["data"] == {"order": None, "node": None}, body
        status, body = post_ascii(admin, ORDER_CANCEL, {"i": {"id": huge}})
        assert status == 200 and body["data"]["orderCancel"]["userErrors"] == [
            {"field": ["input", "id"], "code": "NOT_FOUND"}
        ], body
        customer = {"id": global_id(f"Customer:{key}")}
        status, body = post_ascii(admin, "query($id: ID!) { customer(id: $id) { id } }", customer)
        assert status == 200 and body.get("errors") is None, body
    cursor = base64.urlsafe_b64encode(b"offset:99999999999999999999").decode()
    status, body = post_ascii(admin, "query($c: String) { products(after: $c) { totalCount } }", {"c": cursor})
    assert_refused(status, body, "not a cursor from this list")
