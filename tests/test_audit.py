"""The audit log: every mutation call is recorded (who, what, when, input with secrets redacted,
result), in the transaction of its change; refused and failed calls are recorded too."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLType,
)

from tests.support import GraphQLClient, add_product, create_token

AUDIT = """query($first: Int, $after: String, $filter: AuditLogFilter) {
  auditLog(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id actor role operation input result detail createdAt } } } }"""
PRODUCT_CREATE = """mutation($input: ProductCreateInput!) {
  productCreate(input: $input) { product { sku } userErrors { field message code } } }"""
STOCK_ADJUST = """mutation($input: StockAdjustInput!) {
  stockAdjust(input: $input) { stockLevel { onHand } userErrors { field code } } }"""
CARRIER_CREATE = """mutation($input: CarrierCreateInput!) {
  carrierCreate(input: $input) { carrier { code } userErrors { field message code } } }"""


def entries(admin: GraphQLClient, **filter: Any) -> list[dict[str, Any]]:
    data = admin(AUDIT, {"first": 100, "filter": filter})["auditLog"]
    return [edge["node"] for edge in data["edges"]]


def test_a_change_is_recorded_with_who_what_when_and_its_input(admin, uid):
    before = datetime.now(UTC) - timedelta(seconds=1)
    sku = f"AUD-{uid}"
    add_product(admin, sku, price="12.50")

    [entry] = [e for e in entries(admin, operation="productCreate") if e["input"]["input"]["sku"] == sku]
    assert entry["actor"] == "admin:test admin" and entry["role"] == "ADMIN"
    assert entry["result"] == "OK" and entry["detail"] is None
    recorded = entry["input"]["input"]
    assert (recorded["sku"], recorded["name"]) == (sku, f"Product {sku}")
    assert recorded["price"] == {"amount": "12.50", "currency": "CNY"}  # keys as the schema names them
    assert before <= datetime.fromisoformat(entry["createdAt"]) <= datetime.now(UTC)


def test_a_call_refused_by_a_business_rule_is_recorded_and_changes_nothing(admin, uid):
    adjust = {"sku": f"NOPE-{uid}", "locationCode": f"NOWHERE-{uid}", "delta": 5, "reason": "found"}
    payload = admin.mutate("stockAdjust", STOCK_ADJUST, {"input": adjust})
    assert payload["userErrors"] and payload["stockLevel"] is None

    [entry] = [e for e in entries(admin, operation="stockAdjust") if e["input"]["input"]["sku"] == adjust["sku"]]
    assert entry["result"] == "USER_ERROR"
    assert payload["userErrors"][0]["code"] in entry["detail"]


def test_a_call_refused_for_its_role_is_recorded_as_an_error(server, database_url, admin, uid):
    name = f"auditor {uid}"
    viewer = GraphQLClient(server, create_token(database_url, "VIEWER", name))
    body = viewer.raw(PRODUCT_CREATE, {"input": {"sku": f"V-{uid}", "name": "x"}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    [entry] = entries(admin, actor=name)
    assert entry["operation"] == "productCreate" and entry["result"] == "ERROR" and entry["role"] == "VIEWER"
    assert entry["detail"].startswith("FORBIDDEN")
    assert admin("query($s: String!) { product(sku: $s) { sku } }", {"s": f"V-{uid}"})["product"] is None


def test_secrets_in_an_input_are_redacted_by_key(admin, uid):
    api_key, webhook_secret = f"EZAK-{uid}-live-key", f"whsec-{uid}"
    payload = admin.mutate(
        "carrierCreate",
        CARRIER_CREATE,
        {
            "input": {
                "code": f"ep-{uid}",
                "name": "EasyPost",
                "kind": "easypost",
                "settings": {"apiKey": api_key, "webhookSecret": webhook_secret, "services": ["USPS:Priority"]},
            }
        },
    )
    assert payload["userErrors"] == [], payload
    refused = admin.mutate(
        "carrierCreate",
        CARRIER_CREATE,
        {"input": {"code": f"ep2-{uid}", "name": "x", "kind": "easypost", "settings": {"apiKey": api_key, "x": 1}}},
    )
    assert refused["userErrors"]

    recorded = [e for e in entries(admin, operation="carrierCreate") if uid in e["input"]["input"]["code"]]
    assert [e["result"] for e in recorded] == ["USER_ERROR", "OK"]
    for entry in recorded:
        assert entry["input"]["input"]["settings"]["apiKey"] == "[redacted]"
        assert api_key not in json.dumps(entry) and webhook_secret not in json.dumps(entry)
    assert recorded[1]["input"]["input"]["settings"]["webhookSecret"] == "[redacted]"
    assert recorded[1]["input"]["input"]["settings"]["services"] == ["USPS:Priority"]


def test_the_audit_log_is_for_admins_newest_first_and_filtered(admin, viewer, anonymous, uid):
    for n in range(3):
        add_product(admin, f"AUDP-{uid}-{n}")
    assert viewer.raw(AUDIT, {"first": 1})["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert anonymous.raw(AUDIT, {"first": 1})["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    page = admin(AUDIT, {"first": 2, "filter": {"operation": "productCreate", "result": "OK"}})["auditLog"]
    assert page["pageInfo"]["hasNextPage"] and len(page["edges"]) == 2
    newest = [edge["node"]["input"]["input"]["sku"] for edge in page["edges"]]
    assert newest == [f"AUDP-{uid}-2", f"AUDP-{uid}-1"]
    following = admin(
        AUDIT, {"first": 1, "after": page["pageInfo"]["endCursor"], "filter": {"operation": "productCreate"}}
    )["auditLog"]
    assert following["edges"][0]["node"]["input"]["input"]["sku"] == f"AUDP-{uid}-0"

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert admin(AUDIT, {"first": 5, "filter": {"since": future}})["auditLog"]["edges"] == []
    naive = admin.raw(AUDIT, {"first": 5, "filter": {"since": "2026-01-01T00:00:00"}})
    # Refused where every DateTime is read (schema/scalars.py), before the resolver.
    assert naive["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT" and "offset" in naive["errors"][0]["message"]


def _value_for(kind: GraphQLType) -> Any:
    """The smallest value of a GraphQL input type that passes validation (the resolver may still refuse it)."""
    if isinstance(kind, GraphQLNonNull):
        return _value_for(kind.of_type)
    if isinstance(kind, GraphQLList):
        return [_value_for(kind.of_type)]
    if isinstance(kind, GraphQLEnumType):
        return next(iter(kind.values))
    if isinstance(kind, GraphQLInputObjectType):
        return {
            name: _value_for(field.type)
            for name, field in kind.fields.items()
            if isinstance(field.type, GraphQLNonNull)
        }
    assert isinstance(kind, GraphQLScalarType)
    return {
        "String": "x",
        "ID": "eA",
        "Int": 1,
        "Float": 1.0,
        "Boolean": False,
        "Decimal": "1",
        "DateTime": "2026-12-01T00:00:00Z",
        "Date": "2026-12-01",
        "JSON": {},
    }[kind.name]


def test_every_mutation_is_recorded_even_when_refused(server, database_url, admin, uid):
    from oms_graphql.resolvers import schema

    mutation_type = schema._schema.mutation_type
    assert mutation_type is not None
    name = f"prober {uid}"
    viewer = GraphQLClient(server, create_token(database_url, "VIEWER", name))

    for field_name, field in mutation_type.fields.items():
        names = [f"${arg}: {field.args[arg].type}" for arg in field.args]
        call = ", ".join(f"{arg}: ${arg}" for arg in field.args)
        document = f"mutation({', '.join(names)}) {{ {field_name}({call}) {{ __typename }} }}"
        variables = {arg: _value_for(field.args[arg].type) for arg in field.args}
        body = viewer.raw(document, variables)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (field_name, body)

    recorded = admin(AUDIT, {"first": 100, "filter": {"actor": name}})["auditLog"]
    assert sorted(edge["node"]["operation"] for edge in recorded["edges"]) == sorted(mutation_type.fields)
    assert {edge["node"]["result"] for edge in recorded["edges"]} == {"ERROR"}


def test_a_call_without_a_token_is_recorded_without_its_input(anonymous, admin, uid):
    body = anonymous.raw(PRODUCT_CREATE, {"input": {"sku": f"ANON-{uid}", "name": "x" * 5000}})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    recorded = [e for e in entries(admin, actor="anonymous", operation="productCreate")]
    assert recorded and recorded[0]["result"] == "ERROR"
    assert recorded[0]["input"] == {"omitted": "the caller sent no token"}
    assert f"ANON-{uid}" not in json.dumps(recorded)
