"""Identities: API tokens (GraphQL and `oms token`), JWTs from a front-end's identity provider,
websocket connection_init, and an extensions.code on every error.

A token that is sent but does not hold is UNAUTHENTICATED, and says why; a caller whose role
may not do something is FORBIDDEN.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from gql import Client
from gql.transport.exceptions import TransportConnectionFailed

from oms_graphql.schema.ids import to_global_id
from tests.support import GraphQLClient, add_location, add_product, customer_id_of, place_order, receive
from tests.test_cli import oms

TOKEN_CREATE = """mutation($input: ApiTokenCreateInput!) { apiTokenCreate(input: $input) {
  token apiToken { id name role customerId expiresAt lastUsedAt revokedAt } userErrors { field message code } } }"""
TOKEN_REVOKE = """mutation($id: ID!) { apiTokenRevoke(input: {id: $id}) {
  apiToken { id revokedAt } userErrors { field code } } }"""
TOKENS = "{ apiTokens(first: 100) { edges { node { id name role lastUsedAt revokedAt expiresAt } } } }"
ME = "{ me { name role customerId } }"


def error_of(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("errors"), body
    return body["errors"][0]


def code_of(body: dict[str, Any]) -> str:
    return str(error_of(body)["extensions"]["code"])


def make_token(admin: GraphQLClient, **given: Any) -> dict[str, Any]:
    payload = admin.mutate("apiTokenCreate", TOKEN_CREATE, {"input": given})
    assert payload["userErrors"] == [], payload
    return payload


def a_customer(
    admin: GraphQLClient, database_url: str, uid: str, email: str | None = None
) -> tuple[int, dict[str, Any]]:
    """A customer with one order (customers are made by their orders); returns its id and the order."""
    sku = f"ID-{uid}"
    add_product(admin, sku)
    add_location(admin, f"ID-{uid}")
    receive(admin, sku, f"ID-{uid}", 5)
    customer = {"name": "Li Lei", "phone": f"+86 139{int(uid, 16) % 10**8:08d}"}
    if email:
        customer["email"] = email
    order = place_order(admin, [(sku, 1, "5.00")], customer=customer)
    return customer_id_of(database_url, order["id"]), order


# --- API tokens over GraphQL ------------------------------------------------------


def test_an_admin_makes_a_token_that_is_shown_once_used_and_revoked(admin, server, uid):
    made = make_token(admin, name=f"console {uid}", role="VIEWER")
    token, listed_id = made["token"], made["apiToken"]["id"]
    assert token.startswith("oms_") and made["apiToken"]["lastUsedAt"] is None

    viewer = GraphQLClient(server, token)
    assert viewer(ME)["me"] == {"name": f"console {uid}", "role": "VIEWER", "customerId": None}
    listed = {edge["node"]["id"]: edge["node"] for edge in admin(TOKENS)["apiTokens"]["edges"]}
    assert listed[listed_id]["lastUsedAt"] is not None
    assert token not in json.dumps(admin(TOKENS))  # the token itself is never shown again

    revoked = admin.mutate("apiTokenRevoke", TOKEN_REVOKE, {"id": listed_id})
    assert revoked["userErrors"] == [] and revoked["apiToken"]["revokedAt"] is not None
    refused = viewer.raw(ME)
    assert code_of(refused) == "UNAUTHENTICATED"
    assert "revoked" in error_of(refused)["message"]


def test_a_token_is_a_node_only_an_admin_can_fetch(admin, viewer, uid):
    made = make_token(admin, name=f"node {uid}", role="OPERATOR")
    query = "query($id: ID!) { node(id: $id) { id ... on ApiToken { name role } } }"
    assert admin(query, {"id": made["apiToken"]["id"]})["node"] == {
        "id": made["apiToken"]["id"],
        "name": f"node {uid}",
        "role": "OPERATOR",
    }
    assert viewer(query, {"id": made["apiToken"]["id"]})["node"] is None


def test_only_an_admin_manages_tokens_and_bad_input_names_the_field(admin, viewer, anonymous, uid):
    assert code_of(viewer.raw(TOKENS)) == "FORBIDDEN"
    # (A small page: 100 tokens would cost more than a caller without a token may ask for.)
    assert code_of(anonymous.raw("{ apiTokens(first: 1) { edges { node { id } } } }")) == "UNAUTHENTICATED"
    refused = viewer.raw(TOKEN_CREATE, {"input": {"name": "x", "role": "ADMIN"}})
    assert code_of(refused) == "FORBIDDEN"

    def problems(**given: Any) -> list[tuple[list[str], str]]:
        payload = admin.mutate("apiTokenCreate", TOKEN_CREATE, {"input": given})
        assert payload["token"] is None and payload["apiToken"] is None
        return [(error["field"], error["code"]) for error in payload["userErrors"]]

    assert problems(name=f"n {uid}", role="WIZARD") == [(["input", "role"], "INVALID")]
    assert problems(name=f"n {uid}", role="CUSTOMER") == [(["input", "customerId"], "REQUIRED")]
    assert problems(name="", role="VIEWER") == [(["input", "name"], "INVALID")]
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert problems(name=f"n {uid}", role="VIEWER", expiresAt=past) == [(["input", "expiresAt"], "INVALID")]
    nobody = to_global_id("Customer", 2**62)
    assert problems(name=f"n {uid}", role="CUSTOMER", customerId=nobody) == [(["input", "customerId"], "NOT_FOUND")]
    assert admin.mutate("apiTokenRevoke", TOKEN_REVOKE, {"id": to_global_id("ApiToken", 2**62)})["userErrors"] == [
        {"field": ["input", "id"], "code": "NOT_FOUND"}
    ]


def test_a_customer_token_names_its_customer_and_sees_only_its_orders(admin, server, database_url, uid):
    customer_id, order = a_customer(admin, database_url, uid)
    made = make_token(admin, name=f"app {uid}", role="CUSTOMER", customerId=to_global_id("Customer", customer_id))
    assert made["apiToken"]["customerId"] == to_global_id("Customer", customer_id)

    customer = GraphQLClient(server, made["token"])
    assert customer(ME)["me"]["customerId"] == to_global_id("Customer", customer_id)
    numbers = [
        edge["node"]["number"]
        for edge in customer("{ orders(first: 10) { edges { node { number } } } }")["orders"]["edges"]
    ]
    assert numbers == [order["number"]]


def test_a_token_stops_working_when_it_expires(admin, server, uid):
    expires = datetime.now(UTC) + timedelta(seconds=2)
    made = make_token(admin, name=f"short {uid}", role="VIEWER", expiresAt=expires.isoformat())
    assert datetime.fromisoformat(made["apiToken"]["expiresAt"]) == expires.replace(microsecond=expires.microsecond)
    client = GraphQLClient(server, made["token"])
    assert client(ME)["me"]["role"] == "VIEWER"

    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.3)
    refused = client.raw(ME)
    assert code_of(refused) == "UNAUTHENTICATED"
    assert "expired" in error_of(refused)["message"]


# --- `oms token` --------------------------------------------------------------


def test_the_command_line_creates_lists_and_revokes_tokens(admin, server, database_url, uid):
    customer_id, order = a_customer(admin, database_url, uid)

    created = oms(
        "token",
        "create",
        "--role",
        "CUSTOMER",
        "--name",
        f"cli {uid}",
        "--customer",
        str(customer_id),
        "--expires",
        "30d",
        database_url=database_url,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.split()[-1]
    customer = GraphQLClient(server, token)
    assert customer("query($id: ID!) { order(id: $id) { number } }", {"id": order["id"]})["order"] == {
        "number": order["number"]
    }

    listed = oms("token", "list", database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if f"cli {uid}" in line)
    assert "CUSTOMER" in row and str(customer_id) in row and "active" in row
    assert token not in listed.stdout
    token_id = row.split("│")[1].strip() if "│" in row else row.split()[0]

    revoked = oms("token", "revoke", token_id, database_url=database_url)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in next(
        line for line in oms("token", "list", database_url=database_url).stdout.splitlines() if f"cli {uid}" in line
    )


def test_the_command_line_refuses_a_customer_token_without_its_customer(database_url, uid):
    result = oms("token", "create", "--role", "CUSTOMER", "--name", f"x {uid}", database_url=database_url)
    assert result.returncode == 2 and "--customer" in result.stderr and "Traceback" not in result.stderr
    result = oms("token", "create", "--role", "VIEWER", "--name", "x", "--expires", "soon", database_url=database_url)
    assert result.returncode == 2 and "--expires" in result.stderr
    result = oms("token", "revoke", "999999999", database_url=database_url)
    assert result.returncode == 2 and "No API token" in result.stderr


# --- JWTs ---------------------------------------------------------------------

ISSUER = "https://id.example.test/"
AUDIENCE = "oms-storefront"
HS_SECRET = "a-shared-secret-of-at-least-thirty-two-bytes!"


class Keys:
    """An identity provider's keys: one of each kind the OMS verifies."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key()))
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key()))
        secret = base64.urlsafe_b64encode(HS_SECRET.encode()).decode().rstrip("=")
        return {
            "keys": [
                {**rsa_jwk, "kid": "rsa-1", "use": "sig", "alg": "RS256"},
                {**ec_jwk, "kid": "ec-1", "use": "sig", "alg": "ES256"},
                {"kty": "oct", "k": secret, "kid": "hs-1", "alg": "HS256"},
            ]
        }

    def sign(self, algorithm: str, *, kid: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300, **claims}
        body = {key: value for key, value in body.items() if value is not None}
        key: Any = {"RS256": self.rsa, "ES256": self.ec, "HS256": HS_SECRET}[algorithm]
        default_kid = {"RS256": "rsa-1", "ES256": "ec-1", "HS256": "hs-1"}[algorithm]
        return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid or default_kid})


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def jwt_server(settings, keys, tmp_path_factory) -> Iterator[str]:
    """The app as a shop with an identity provider configures it: a JWKS file, issuer and audience;
    customers known by the e-mail claim. Same database as the main test server."""
    from oms_graphql.app import create_app
    from tests.fakes.server import serve

    jwks = tmp_path_factory.mktemp("idp") / "jwks.json"
    jwks.write_text(json.dumps(keys.jwks()))
    configured = replace(
        settings,
        jwt_jwks_file=str(jwks),
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_identity_kind="email",
        jwt_identity_claim="email",
    )
    with serve(create_app(configured, run_background=False), lifespan="on") as base_url:
        yield base_url


@pytest.mark.parametrize("algorithm", ["HS256", "RS256", "ES256"])
def test_a_jwt_of_each_algorithm_lets_a_staff_front_end_in(algorithm, jwt_server, keys, uid):
    client = GraphQLClient(jwt_server, keys.sign(algorithm, sub=f"staff-{uid}", oms_role="VIEWER"))
    assert client(ME)["me"] == {"name": f"staff-{uid}", "role": "VIEWER", "customerId": None}
    assert client("{ products(first: 1) { totalCount } }")["products"]["totalCount"] >= 0


def test_a_jwt_without_a_key_id_or_with_a_far_expiry_is_read_not_failed(jwt_server, keys):
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "no-kid", "exp": now + 300, "oms_role": "VIEWER"}
    no_kid = jwt.encode(claims, keys.ec, algorithm="ES256")
    assert GraphQLClient(jwt_server, no_kid)(ME)["me"]["name"] == "no-kid"
    far = keys.sign("HS256", sub="far", exp=10**20, oms_role="VIEWER")
    assert GraphQLClient(jwt_server, far)(ME)["me"]["name"] == "far"


def test_a_customer_jwt_maps_to_its_customer_by_id_or_by_identity(jwt_server, keys, admin, database_url, uid):
    email = f"li.{uid.lower()}@example.test"
    customer_id, order = a_customer(admin, database_url, uid, email=email)
    global_id = to_global_id("Customer", customer_id)

    by_id = GraphQLClient(jwt_server, keys.sign("RS256", sub=f"u-{uid}", oms_customer_id=global_id))
    assert by_id(ME)["me"] == {"name": f"u-{uid}", "role": "CUSTOMER", "customerId": global_id}
    by_email = GraphQLClient(jwt_server, keys.sign("ES256", sub=f"u-{uid}", email=email.upper()))
    assert by_email(ME)["me"]["customerId"] == global_id
    numbers = by_email("{ orders(first: 10) { edges { node { number } } } }")["orders"]["edges"]
    assert [edge["node"]["number"] for edge in numbers] == [order["number"]]


def _alg_confusion(keys: Keys) -> str:
    """An HS256 token "signed" with the RSA public key as the secret (the classic algorithm confusion)."""
    header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 300, "oms_role": "VIEWER"}
    pem = keys.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    import hashlib
    import hmac

    signing_input = f"{part(json.dumps(header).encode())}.{part(json.dumps(claims).encode())}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


REFUSED_JWTS = {
    "another issuer": (lambda k: k.sign("RS256", iss="https://evil.test/", oms_role="VIEWER"), "issuer"),
    "another audience": (lambda k: k.sign("ES256", aud="someone-else", oms_role="VIEWER"), "audience"),
    "expired": (lambda k: k.sign("HS256", exp=int(time.time()) - 120, oms_role="VIEWER"), "expired"),
    "no expiry": (lambda k: k.sign("HS256", exp=None, oms_role="VIEWER"), "'exp'"),
    "signed by another key": (
        lambda k: jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 300, "oms_role": "VIEWER"},
            k.other_rsa,
            algorithm="RS256",
            headers={"kid": "rsa-1"},
        ),
        "signature",
    ),
    "tampered claims": (
        lambda k: ".".join(
            [
                (t := k.sign("ES256", oms_role="VIEWER").split("."))[0],
                base64.urlsafe_b64encode(
                    json.dumps(
                        {
                            "iss": ISSUER,
                            "aud": AUDIENCE,
                            "sub": "x",
                            "exp": int(time.time()) + 300,
                            "oms_role": "OPERATOR",
                        }
                    ).encode()
                )
                .decode()
                .rstrip("="),
                t[2],
            ]
        ),
        "signature",
    ),
    "alg none": (
        lambda k: jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 300},
            None,
            algorithm="none",
            headers={"kid": "hs-1"},
        ),
        "none",
    ),
    "HS256 with the RSA public key as secret": (_alg_confusion, "RS256 only"),
    "unknown key id": (lambda k: k.sign("RS256", kid="rsa-9", oms_role="VIEWER"), "key id"),
    "ADMIN from the identity provider": (lambda k: k.sign("RS256", oms_role="ADMIN"), "ADMIN"),
    "a customer nobody knows": (lambda k: k.sign("RS256", email="nobody@example.test"), "matches no customer"),
    "not a JWT at all": (lambda k: "eyJ.not.ajwt", "well-formed"),
}


@pytest.mark.parametrize("case", REFUSED_JWTS)
def test_a_jwt_that_does_not_hold_is_unauthenticated_and_says_why(case, jwt_server, keys):
    make, says = REFUSED_JWTS[case]
    body = GraphQLClient(jwt_server, make(keys)).raw(ME)
    assert body.get("data") is None
    assert code_of(body) == "UNAUTHENTICATED"
    assert says in error_of(body)["message"], error_of(body)["message"]


def test_a_single_pem_key_verifies_jwts_and_a_server_without_one_refuses_them(settings, keys, tmp_path, server):
    from oms_graphql.app import create_app
    from tests.fakes.server import serve

    pem = tmp_path / "idp.pem"
    pem.write_bytes(
        keys.ec.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    configured = replace(settings, jwt_key=f"@{pem}", jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    with serve(create_app(configured, run_background=False), lifespan="on") as base_url:
        assert GraphQLClient(base_url, keys.sign("ES256", oms_role="OPERATOR"))(ME)["me"]["role"] == "OPERATOR"
        refused = GraphQLClient(base_url, keys.sign("RS256", oms_role="OPERATOR")).raw(ME)
        assert code_of(refused) == "UNAUTHENTICATED" and "ES256 only" in error_of(refused)["message"]

    unconfigured = GraphQLClient(server, keys.sign("ES256", oms_role="VIEWER")).raw(ME)
    assert code_of(unconfigured) == "UNAUTHENTICATED" and "accepts no JWTs" in error_of(unconfigured)["message"]


# --- websockets: the same tokens in connection_init ---------------------------------


def test_a_websocket_authenticates_with_a_jwt_in_connection_init(jwt_server, keys, admin, uid):
    from tests.test_subscriptions import ALERTS, POLICY, gql_events, gql_transport

    sku, code = f"WSJ-{uid}", f"WSJ-{uid}"
    add_product(admin, sku)
    add_location(admin, code)
    receive(admin, sku, code, 3)
    token = keys.sign("RS256", sub=f"ops-{uid}", oms_role="OPERATOR")

    events = asyncio.run(
        gql_events(
            gql_transport(jwt_server, init_payload={"Authorization": f"Bearer {token}"}),
            ALERTS,
            {},
            lambda: admin(POLICY, {"input": {"sku": sku, "locationCode": code, "reorderPoint": 8}}),
            lambda event: event["alerts"]["sku"] == sku,
        )
    )
    assert events[-1]["alerts"] == {"kind": "LOW_STOCK", "sku": sku, "locationCode": code}


@pytest.mark.parametrize("which", ["expired JWT", "revoked API token"])
def test_a_websocket_with_a_token_that_does_not_hold_is_closed_with_4403(which, jwt_server, keys, admin, uid):
    from tests.test_subscriptions import gql_transport

    if which == "expired JWT":
        token = keys.sign("RS256", exp=int(time.time()) - 120, oms_role="VIEWER")
    else:
        made = make_token(admin, name=f"ws {uid}", role="VIEWER")
        admin.mutate("apiTokenRevoke", TOKEN_REVOKE, {"id": made["apiToken"]["id"]})
        token = made["token"]

    async def attempt() -> None:
        async with Client(transport=gql_transport(jwt_server, init_payload={"authToken": token})):
            pass

    with pytest.raises(TransportConnectionFailed) as refused:
        asyncio.run(attempt())
    closed = refused.value.__cause__
    assert isinstance(closed, websockets.ConnectionClosed) and closed.rcvd is not None
    assert closed.rcvd.code == 4403


# --- every error carries a code ---------------------------------------------------


def test_every_error_of_a_spread_of_broken_requests_carries_a_code(server, admin, viewer, anonymous):
    too_deep = "{ orders(first: 1) { edges { node { " + "customer { orders(first: 1) { edges { node { " * 6
    too_deep += "number" + " } } } }" * 6 + " } } } }"
    cases: list[tuple[str, Any, dict[str, Any] | None, str]] = [
        ("syntax", "{ orders(", None, "GRAPHQL_PARSE_FAILED"),
        ("unknown field", "{ noSuchField }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("unknown argument", "{ orders(nope: 1) { totalCount } }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("too deep", too_deep, None, "MAX_DEPTH_EXCEEDED"),
        ("missing variable", "query($n: String!) { orderByNumber(number: $n) { id } }", {}, "BAD_USER_INPUT"),
        ("wrong variable type", "query($f: Int) { orders(first: $f) { totalCount } }", {"f": "ten"}, "BAD_USER_INPUT"),
        ("page too large", "{ orders(first: 1000) { totalCount } }", None, "PAGE_SIZE"),
        ("bad cursor", '{ orders(first: 1, after: "junk") { totalCount } }', None, "INVALID_CURSOR"),
        ("subscription over HTTP", "subscription { alerts { kind } }", None, "BAD_REQUEST"),
    ]
    for name, query, variables, expected in cases:
        body = admin.raw(query, variables)
        assert body.get("errors"), name
        assert all(error.get("extensions", {}).get("code") for error in body["errors"]), (name, body)
        assert body["errors"][0]["extensions"]["code"] == expected, (name, body)

    assert code_of(anonymous.raw("{ orders(first: 1) { totalCount } }")) == "UNAUTHENTICATED"
    assert (
        code_of(
            viewer.raw(
                'mutation { stockAdjust(input: {sku: "x", locationCode: "y", delta: 1, reason: "r"}) '
                "{ userErrors { code } } }"
            )
        )
        == "FORBIDDEN"
    )
    assert code_of(GraphQLClient(server, "oms_made-up").raw(ME)) == "UNAUTHENTICATED"

    # Requests that are not GraphQL at all still answer GraphQL-shaped errors with a code.
    http = httpx.Client(base_url=server, headers={"authorization": f"Bearer {admin.token}"})
    for name, response in [
        ("not JSON", http.post("/graphql", content=b'{"query": ', headers={"content-type": "application/json"})),
        ("no query", http.post("/graphql", json={})),
        ("unknown operation name", http.post("/graphql", json={"query": "{ me { role } }", "operationName": "X"})),
        ("variables not an object", http.post("/graphql", json={"query": "{ me { role } }", "variables": 3})),
        ("a mutation over GET", http.get("/graphql", params={"query": "mutation { __typename }"})),
        ("not acceptable", http.post("/graphql", json={"query": "{ me { role } }"}, headers={"accept": "text/csv"})),
    ]:
        assert 400 <= response.status_code < 500, name
        assert response.json()["errors"][0]["extensions"]["code"], (name, response.text)


def test_errors_over_a_websocket_carry_codes_too(server, viewer):
    async def codes(token: str | None, documents: list[str]) -> list[str]:
        url = server.replace("http", "ws", 1) + "/graphql"
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"authToken": token} if token else {}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            found = []
            for n, document in enumerate(documents):
                await ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": {"query": document}}))
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
                found.append(errors[0]["extensions"]["code"])
            return found

    assert asyncio.run(codes(None, ["subscription { alerts { kind } }"])) == ["UNAUTHENTICATED"]
    assert asyncio.run(
        codes(viewer.token, ["subscription { noSuchField }", "{ orders(first: 1000) { totalCount } }"])
    ) == ["GRAPHQL_VALIDATION_FAILED", "PAGE_SIZE"]
