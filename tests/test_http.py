"""GraphQL over HTTP (media types, status codes, GET), GraphiQL, operations endpoints, schema drift."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support import add_product

GRAPHQL_RESPONSE = "application/graphql-response+json"


def test_post_with_graphql_response_media_type(admin, uid):
    add_product(admin, f"HTTP-{uid}")
    response = admin.http.post(
        "/graphql",
        json={"query": "query($s: String!) { product(sku: $s) { sku } }", "variables": {"s": f"HTTP-{uid}"}},
        headers={"accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    body = response.json()
    assert body["data"] == {"product": {"sku": f"HTTP-{uid}"}} and "errors" not in body
    assert body["extensions"]["cost"]["requested"] == 2


def test_a_request_error_is_400_without_data_for_graphql_response_json(admin):
    response = admin.http.post("/graphql", json={"query": "{ nope }"}, headers={"accept": GRAPHQL_RESPONSE})
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body and "nope" in body["errors"][0]["message"]


def test_legacy_application_json_keeps_200_for_validation_errors(admin):
    response = admin.http.post("/graphql", json={"query": "{ nope }"}, headers={"accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["errors"]


def test_unparseable_body_is_400(admin):
    response = admin.http.post("/graphql", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_an_unacceptable_accept_header_is_406(admin):
    response = admin.http.post("/graphql", json={"query": "{ me { name } }"}, headers={"accept": "text/csv"})
    assert response.status_code == 406


def test_queries_work_over_get_but_mutations_do_not(admin):
    response = admin.http.get("/graphql", params={"query": "{ me { role } }"}, headers={"accept": GRAPHQL_RESPONSE})
    assert response.status_code == 200 and response.json()["data"] == {"me": {"role": "ADMIN"}}
    mutation = 'mutation { productCreate(input: {sku: "X", name: "X"}) { product { sku } } }'
    refused = admin.http.get("/graphql", params={"query": mutation}, headers={"accept": GRAPHQL_RESPONSE})
    assert refused.status_code == 405


def test_graphiql_is_served_to_a_browser(server):
    response = httpx.get(f"{server}/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200 and "graphiql" in response.text.lower()


def test_health_readiness_and_metrics(server, admin):
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server}/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    admin("query ProductsForMetrics { products(first: 1) { totalCount } me { role } }")
    metrics = httpx.get(f"{server}/metrics").text
    assert 'oms_graphql_requests_total{outcome="ok",root_field="products",type="query"}' in metrics
    assert 'oms_graphql_requests_total{outcome="ok",root_field="me",type="query"}' in metrics
    assert "ProductsForMetrics" not in metrics
    assert "oms_graphql_request_seconds_bucket" in metrics


def test_client_chosen_operation_names_do_not_grow_the_metrics(server, admin):
    admin("query Warm { products(first: 1) { totalCount } }")
    before = httpx.get(f"{server}/metrics").text
    for n in range(300):
        admin(f"query Probe{n}x{'y' * 40} {{ products(first: 1) {{ totalCount }} }}")
    after = httpx.get(f"{server}/metrics").text
    assert "Probe" not in after
    # The counters grow in value, not in series: the same lines, give or take digits.
    assert len(after.splitlines()) == len(before.splitlines())
    assert len(after) < len(before) + 2000


def test_an_invalid_document_is_counted_without_its_text(server, admin):
    admin.raw("query Bad { noSuchFieldHere }")
    metrics = httpx.get(f"{server}/metrics").text
    assert "noSuchFieldHere" not in metrics and 'root_field="(invalid)"' in metrics


def test_metrics_can_require_a_token_and_a_network(settings):
    from tests.support import serve_variant

    with serve_variant(settings, metrics_token="scrape-secret") as url:
        assert httpx.get(f"{url}/metrics").status_code == 401
        assert httpx.get(f"{url}/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
        scraped = httpx.get(f"{url}/metrics", headers={"authorization": "Bearer scrape-secret"})
        assert scraped.status_code == 200 and "oms_graphql_requests_total" in scraped.text
    with serve_variant(settings, metrics_allow=("10.0.0.0/8",)) as url:
        assert httpx.get(f"{url}/metrics").status_code == 403
    with serve_variant(settings, metrics_allow=("127.0.0.0/8", "::1/128")) as url:
        assert httpx.get(f"{url}/metrics").status_code == 200


def test_unexpected_errors_do_not_leak_internals(admin):
    body = admin.raw('{ orders(first: 1, after: "not-a-cursor") { totalCount } }')
    assert body["errors"][0]["message"] == "after is not a cursor from this list."


def test_committed_schema_matches_the_code():
    from oms_graphql.resolvers import schema

    committed = (Path(__file__).parent.parent / "schema.graphql").read_text()
    assert committed == schema.as_str() + "\n", "schema.graphql is out of date: run `make schema` and commit it"


def test_query_depth_is_limited(admin):
    deep = "{ orders { edges { node { " + "channel { id } " + "} } } }"
    assert "errors" not in admin.raw(deep)
    nested = '{ node(id: "x") { ' + "... on Order { customer { " * 1 + "id } } } }"
    assert "errors" not in admin.raw(nested)
