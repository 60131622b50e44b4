"""Every operation checks the caller's role; a customer sees only their own orders."""

from __future__ import annotations

from oms_graphql.schema.ids import to_global_id
from tests.support import (
    GraphQLClient,
    add_location,
    add_product,
    create_token,
    customer_id_of,
    place_order,
    receive,
)


def test_every_root_field_declares_who_may_call_it():
    from strawberry.permission import PermissionExtension

    from oms_graphql.resolvers import schema

    unguarded = []
    for root in (schema.query, schema.mutation, schema.subscription):
        definition = root.__strawberry_definition__  # type: ignore[union-attr]
        for field in definition.fields:
            if not any(isinstance(ext, PermissionExtension) and ext.permissions for ext in field.extensions):
                unguarded.append(f"{definition.name}.{field.name}")
    assert unguarded == []


def test_no_token_means_no_access(anonymous):
    body = anonymous.raw("{ orders(first: 1) { totalCount } }")
    assert body["data"] is None
    assert "Not allowed" in body["errors"][0]["message"]
    assert anonymous.raw("{ me { role } }")["errors"]


def test_a_bad_token_is_an_authentication_error_not_a_permission_error(server, viewer, uid):
    client = GraphQLClient(server, "oms_not-a-real-token")
    body = client.raw("{ products(first: 1) { totalCount } }")
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "not a valid API token" in body["errors"][0]["message"]
    refused = viewer.raw(f'mutation {{ productCreate(input: {{sku: "B-{uid}", name: "x"}}) {{ product {{ sku }} }} }}')
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_a_viewer_reads_but_cannot_change_anything(viewer, uid):
    assert viewer("{ me { role } }") == {"me": {"role": "VIEWER"}}
    assert viewer("{ products(first: 1) { totalCount } }")["products"]["totalCount"] >= 0
    body = viewer.raw(f'mutation {{ productCreate(input: {{sku: "V-{uid}", name: "x"}}) {{ product {{ sku }} }} }}')
    assert body["data"] is None and "Not allowed" in body["errors"][0]["message"]
    assert viewer("query($s: String!) { product(sku: $s) { sku } }", {"s": f"V-{uid}"})["product"] is None


def test_an_operator_cannot_create_locations(server, database_url, uid):
    operator = GraphQLClient(server, create_token(database_url, "OPERATOR", "ops"))
    body = operator.raw(
        f'mutation {{ locationCreate(input: {{code: "L{uid}", name: "x", kind: STORE, '
        'address: {country: "CN", line1: "x"}}) { location { code } } }'
    )
    assert "Not allowed" in body["errors"][0]["message"]


def test_a_customer_sees_only_their_own_orders(admin, server, database_url, uid):
    sku = f"C-{uid}"
    add_product(admin, sku)
    add_location(admin, f"C-{uid}")
    receive(admin, sku, f"C-{uid}", 5)
    mine = place_order(admin, [(sku, 1, "5.00")], customer={"name": "Me", "phone": f"+86 1{uid[:6]}1"})
    theirs = place_order(admin, [(sku, 1, "5.00")], customer={"name": "Them", "phone": f"+86 1{uid[:6]}2"})
    customer_id = customer_id_of(database_url, mine["id"])
    customer = GraphQLClient(server, create_token(database_url, "CUSTOMER", "shopper", customer_id=customer_id))

    listed = customer("{ orders(first: 100) { totalCount edges { node { number } } } }")["orders"]
    assert [edge["node"]["number"] for edge in listed["edges"]] == [mine["number"]]
    assert listed["totalCount"] == 1
    assert customer("query($id: ID!) { order(id: $id) { number } }", {"id": theirs["id"]})["order"] is None
    assert (
        customer("query($n: String!) { orderByNumber(number: $n) { number } }", {"n": theirs["number"]})[
            "orderByNumber"
        ]
        is None
    )
    assert customer("query($id: ID!) { node(id: $id) { id } }", {"id": theirs["id"]})["node"] is None
    assert customer("{ me { customerId } }")["me"]["customerId"] == to_global_id("Customer", customer_id)
    assert "Not allowed" in customer.raw("{ products(first: 1) { totalCount } }")["errors"][0]["message"]
