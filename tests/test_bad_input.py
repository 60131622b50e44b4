"""Bad input gets a clear error naming the field, and nothing is half-written."""

from __future__ import annotations

from tests.support import ORDER_CREATE, PRODUCT_CREATE, STOCK_RECEIVE, add_location, add_product, order_input

COUNT_ORDERS = "query($s: String!) { orders(filter: {search: $s}) { totalCount } }"


def create_order(admin, **changes):
    return admin.raw(ORDER_CREATE, {"input": {**order_input([]), **changes}})


def test_wrong_types_and_unknown_enum_values_are_graphql_validation_errors(admin, uid):
    wrong_type = admin.raw(ORDER_CREATE, {"input": order_input([(f"X-{uid}", "two", "1.00")])})  # type: ignore[list-item]
    assert wrong_type.get("data") is None and "quantity" in wrong_type["errors"][0]["message"]
    bad_enum = admin.raw(ORDER_CREATE, {"input": order_input([], deliveryOption="TELEPORT")})
    assert "TELEPORT" in bad_enum["errors"][0]["message"]
    bad_decimal = admin.raw(ORDER_CREATE, {"input": order_input([(f"X-{uid}", 1, "12,50")])})
    assert "not a decimal number" in bad_decimal["errors"][0]["message"]
    float_money = admin.raw(ORDER_CREATE, {"input": order_input([(f"X-{uid}", 1, 12.5)])})  # type: ignore[list-item]
    assert "sent as strings" in float_money["errors"][0]["message"]


def test_order_problems_are_user_errors_naming_each_field_and_nothing_is_written(admin, uid):
    sku = f"BAD-{uid}"
    add_product(admin, sku)
    lines = [
        {"sku": sku, "quantity": 0, "unitPrice": "1.00"},
        {"sku": sku, "quantity": -2, "unitPrice": "-1.00"},
        {"sku": f"NOPE-{uid}", "quantity": 1, "unitPrice": "1.00"},
    ]
    body = admin(
        ORDER_CREATE,
        {
            "input": {
                **order_input([]),
                "lines": lines,
                "externalId": f"BAD-{uid}",
                "currency": "yuan",
                "note": "x" * 2001,
            }
        },
    )
    payload = body["orderCreate"]
    assert payload["order"] is None
    problems = {tuple(error["field"]): error["code"] for error in payload["userErrors"]}
    assert problems[("input", "lines", "0", "quantity")] == "NOT_POSITIVE"
    assert problems[("input", "lines", "1", "quantity")] == "NOT_POSITIVE"
    assert problems[("input", "lines", "1", "unitPrice")] == "NEGATIVE"
    assert problems[("input", "currency")] == "INVALID"
    assert problems[("input", "note")] == "TOO_LONG"
    assert admin(COUNT_ORDERS, {"s": f"BAD-{uid}"})["orders"]["totalCount"] == 0

    unknown = admin(ORDER_CREATE, {"input": order_input([(f"NOPE-{uid}", 1, "1.00")], externalId=f"BAD-{uid}")})
    assert unknown["orderCreate"]["userErrors"] == [
        {
            "field": ["input", "lines", "0", "sku"],
            "message": f"No product has SKU 'NOPE-{uid}'.",
            "code": "NOT_FOUND",
        }
    ]
    no_lines = admin(ORDER_CREATE, {"input": order_input([], externalId=f"BAD-{uid}")})["orderCreate"]
    assert no_lines["userErrors"][0]["field"] == ["input", "lines"]
    too_much_discount = admin(
        ORDER_CREATE, {"input": order_input([(sku, 1, "5.00")], discount="6.00", externalId=f"BAD-{uid}")}
    )["orderCreate"]
    assert too_much_discount["userErrors"][0]["field"] == ["input", "discount"]
    bad_address = admin(
        ORDER_CREATE,
        {
            "input": order_input(
                [(sku, 1, "5.00")],
                externalId=f"BAD-{uid}",
                shippingAddress={"country": "China", "line1": " "},
            )
        },
    )
    fields = [e["field"] for e in bad_address["orderCreate"]["userErrors"]]
    assert ["input", "shippingAddress", "country"] in fields and [
        "input",
        "shippingAddress",
        "line1",
    ] in fields
    assert admin(COUNT_ORDERS, {"s": f"BAD-{uid}"})["orders"]["totalCount"] == 0


def test_duplicate_skus_and_location_codes_are_refused(admin, uid):
    add_product(admin, f"DUP-{uid}")
    again = admin(PRODUCT_CREATE, {"input": {"sku": f"DUP-{uid}", "name": "again"}})["productCreate"]
    assert again["product"] is None
    assert again["userErrors"][0]["field"] == ["input", "sku"] and again["userErrors"][0]["code"] == "DUPLICATE"
    add_location(admin, f"DUP-{uid}")
    location = admin(
        """mutation($i: LocationCreateInput!) { locationCreate(input: $i) { userErrors { field code } } }""",
        {
            "i": {
                "code": f"DUP-{uid}",
                "name": "x",
                "kind": "STORE",
                "address": {"country": "CN", "line1": "x"},
            }
        },
    )["locationCreate"]
    assert location["userErrors"] == [{"field": ["input", "code"], "code": "DUPLICATE"}]


def test_oversized_and_blank_product_fields(admin, uid):
    body = admin(PRODUCT_CREATE, {"input": {"sku": "S" * 65, "name": " ", "weightGrams": -1}})["productCreate"]
    problems = {tuple(error["field"]): error["code"] for error in body["userErrors"]}
    assert problems == {
        ("input", "sku"): "TOO_LONG",
        ("input", "name"): "REQUIRED",
        ("input", "weightGrams"): "NOT_POSITIVE",
    }


def test_stock_receipts_must_be_positive_for_known_skus_and_locations(admin, uid):
    add_product(admin, f"RCV-{uid}")
    add_location(admin, f"RCV-{uid}")
    for quantity in (0, -5):
        payload = admin(
            STOCK_RECEIVE,
            {"input": {"sku": f"RCV-{uid}", "locationCode": f"RCV-{uid}", "quantity": quantity}},
        )["stockReceive"]
        assert payload["userErrors"][0]["field"] == ["input", "quantity"]
    unknown = admin(STOCK_RECEIVE, {"input": {"sku": f"RCV-{uid}", "locationCode": "NOWHERE", "quantity": 1}})[
        "stockReceive"
    ]
    assert unknown["userErrors"][0] == {
        "field": ["input", "locationCode"],
        "code": "NOT_FOUND",
        "message": "No location has code 'NOWHERE'. Create it with locationCreate first.",
    }
    adjust = admin(
        """mutation($i: StockAdjustInput!) { stockAdjust(input: $i) { userErrors { field code } } }""",
        {"i": {"sku": f"RCV-{uid}", "locationCode": f"RCV-{uid}", "delta": -1, "reason": "broken"}},
    )
    assert adjust["stockAdjust"]["userErrors"] == [{"field": ["input", "delta"], "code": "INSUFFICIENT_STOCK"}]


def test_an_update_that_blanks_a_code_sku_or_name_is_refused(admin, uid):
    # Found by tests/test_fuzz_mutations.py: a second location (or product) renamed to ""
    # collided with the first on the unique code and answered "Internal error".
    first, second = add_location(admin, f"BLK-{uid}-1"), add_location(admin, f"BLK-{uid}-2")
    update = """mutation($i: LocationUpdateInput!) {
      locationUpdate(input: $i) { location { code } userErrors { field code } } }"""
    for location in (first, second):
        for field in ("code", "name"):
            payload = admin(update, {"i": {"id": location["id"], field: " "}})["locationUpdate"]
            assert payload == {"location": None, "userErrors": [{"field": ["input", field], "code": "REQUIRED"}]}
    product = add_product(admin, f"BLK-{uid}")
    payload = admin(
        "mutation($i: ProductUpdateInput!) { productUpdate(input: $i) { product { sku } userErrors { field code } } }",
        {"i": {"id": product["id"], "sku": ""}},
    )["productUpdate"]
    assert payload == {"product": None, "userErrors": [{"field": ["input", "sku"], "code": "REQUIRED"}]}
