"""One customer across channels, through GraphQL over HTTP: matching by phone (E.164), e-mail and
channel buyer id; the profile's history and figures; search; update; merge; export; erase."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.channel_support import create_channel, ensure_product, sync_until, taobao_settings
from tests.conftest import requires_postgres
from tests.fakes import taobao
from tests.fakes.server import serve
from tests.support import ORDER_CREATE, GraphQLClient, add_product, create_token, order_input, place_order, run_async
from tests.test_query_cost import counting_queries
from tests.test_returns import RECEIVE, REFUND, approved, ledger_differences, shipped_order

PROFILE = """query($id: ID!) { customer(id: $id) {
  id name phone email tags note erasedAt orderCount firstOrderAt lastOrderAt
  lifetimeValue { amount currency }
  identities { kind value channelCode buyerId }
  preferences { topSkus topCategories preferredChannel preferredDeliveryOption }
  orders(first: 10) { totalCount edges { node { number channel { code } } } } } }"""
ORDER_CUSTOMER = "query($id: ID!) { order(id: $id) { customer { id } } }"
ORDER_AFTER_ERASE = """query($id: ID!) { order(id: $id) { status total { amount } refundTotal { amount }
  customer { id name phone email }
  shippingAddress { name phone email line1 line2 city country latitude longitude }
  lines { sku quantity returnedQuantity } } }"""
BY_EXTERNAL = """query($code: String!, $ext: String!) { orderByExternalId(channelCode: $code, externalId: $ext) {
  number customer { id name phone identities { kind value channelCode buyerId } } } }"""
SEARCH = """query($s: String!) { customers(first: 20, filter: {search: $s}) { totalCount edges { node { id } } } }"""
UPDATE = """mutation($input: CustomerUpdateInput!) { customerUpdate(input: $input) {
  customer { id name phone email tags note identities { kind value } } userErrors { field message code } } }"""
MERGE = """mutation($id: ID!, $dup: ID!) { customerMerge(input: {id: $id, duplicateId: $dup}) {
  customer { id orderCount } userErrors { field message code } } }"""
EXPORT = """mutation($id: ID!) { customerExport(input: {id: $id}) { data userErrors { field message code } } }"""
ERASE = """mutation($id: ID!) { customerErase(input: {id: $id}) {
  customer { id name phone email erasedAt identities { kind } } userErrors { field message code } } }"""
CANCEL = """mutation($id: ID!) { orderCancel(input: {id: $id, reason: "customer asked"}) {
  userErrors { field message code } } }"""
MOVEMENTS = """query($sku: String!) { stockMovements(first: 100, filter: {sku: $sku}) {
  totalCount edges { node { reason quantity } } } }"""
PAGE = """query($s: String!, $n: Int!) { customers(first: $n, filter: {search: $s}) { edges { node {
  name orderCount lifetimeValue { amount currency } firstOrderAt lastOrderAt
  identities { kind value } preferences { topSkus topCategories preferredChannel preferredDeliveryOption } } } } }"""


def mobile(uid: str, prefix: str = "139") -> str:
    """An 11-digit Chinese mobile number of this test's own."""
    return f"{prefix}{int(uid, 16) % 10**8:08d}"


def customer_of(admin: GraphQLClient, order: dict) -> str:
    return admin(ORDER_CUSTOMER, {"id": order["id"]})["order"]["customer"]["id"]


def profile(client: GraphQLClient, customer_id: str) -> dict:
    return client(PROFILE, {"id": customer_id})["customer"]


def us_address(phone: str | None = None) -> dict:
    return {"country": "US", "region": "CA", "city": "San Francisco", "line1": "1 Market St", "phone": phone}


@pytest.fixture
def taobao_fake() -> Iterator[tuple[str, taobao.TaobaoState]]:
    state = taobao.TaobaoState(load_samples=False)
    with serve(taobao.make_app(state)) as url:
        yield url, state


# --- matching --------------------------------------------------------------------------


def test_a_phone_order_and_a_taobao_trade_with_the_same_mobile_are_one_customer(admin, uid, taobao_fake):
    url, state = taobao_fake
    number = mobile(uid)
    sku = f"CU-TB-{uid}"
    add_product(admin, sku)
    for sample_sku in ("CX-DRESS-2025SS-RED-M", "CX-SOCK-001-WHT"):
        ensure_product(admin, sample_sku)
    by_phone = place_order(
        admin,
        [(sku, 1, "10.00")],
        customer={"name": f"Li Lei {uid}", "phone": f"{number[:3]} {number[3:7]} {number[7:]}"},
    )
    person = customer_of(admin, by_phone)
    assert profile(admin, person)["phone"] == f"+86{number}"

    # Taobao names the buyer by nick and open id only; the mobile comes as the receiver's.
    tid = state.add_order()
    state.trades[tid].update(buyer_open_uid=f"AAtb{uid}", buyer_nick=f"lilei_{uid}", receiver_mobile=f"+86{number}")
    state.touch(tid, datetime.now(UTC) - timedelta(seconds=5))
    code = f"tb-cu-{uid}".lower()
    create_channel(admin, code, "taobao", taobao_settings(url, state))
    sync_until(admin, code, tid)

    pulled = admin(BY_EXTERNAL, {"code": code, "ext": tid})["orderByExternalId"]
    assert pulled["customer"]["id"] == person
    seen = profile(admin, person)
    assert seen["name"] == f"Li Lei {uid}"  # the name the merchant typed stays
    assert seen["orderCount"] == 2
    assert {(i["kind"], i["value"]) for i in seen["identities"]} == {
        ("PHONE", f"+86{number}"),
        ("CHANNEL_BUYER", f"AAtb{uid}"),
    }
    [buyer] = [i for i in seen["identities"] if i["kind"] == "CHANNEL_BUYER"]
    assert buyer == {"kind": "CHANNEL_BUYER", "value": f"AAtb{uid}", "channelCode": code, "buyerId": f"AAtb{uid}"}
    assert {edge["node"]["channel"]["code"] for edge in seen["orders"]["edges"]} == {"manual", code}

    # Written yet another way, with the national trunk prefix: still the same person.
    again = place_order(admin, [(sku, 1, "10.00")], customer={"phone": f"+86 ({number[:3]}) {number[3:]}"})
    assert customer_of(admin, again) == person


def test_a_national_number_is_read_in_the_country_the_order_ships_to(admin, uid):
    sku = f"CU-US-{uid}"
    add_product(admin, sku)
    national = f"415{int(uid, 16) % 10**7:07d}"
    first = place_order(
        admin,
        [(sku, 1, "5.00")],
        currency="USD",
        customer={"name": f"Ann {uid}", "phone": f"({national[:3]}) {national[3:6]}-{national[6:]}"},
        shippingAddress=us_address(),
    )
    person = customer_of(admin, first)
    assert profile(admin, person)["phone"] == f"+1{national}"
    second = place_order(
        admin, [(sku, 1, "5.00")], currency="USD", customer={"phone": f"+1 {national}"}, shippingAddress=us_address()
    )
    assert customer_of(admin, second) == person
    # The same ten digits shipped to China are another number altogether.
    elsewhere = place_order(admin, [(sku, 1, "5.00")], customer={"phone": national})
    assert customer_of(admin, elsewhere) != person


def test_e_mails_match_without_case_plus_tags_or_gmail_dots(admin, uid):
    sku = f"CU-EM-{uid}"
    add_product(admin, sku)
    lower = uid.lower()
    first = place_order(admin, [(sku, 1, "5.00")], customer={"name": f"Mia {uid}", "email": f"Mia.{lower}@Example.com"})
    person = customer_of(admin, first)
    tagged = place_order(admin, [(sku, 1, "5.00")], customer={"email": f"mia.{lower}+sale@example.COM"})
    assert customer_of(admin, tagged) == person
    assert [i["value"] for i in profile(admin, person)["identities"]] == [f"mia.{lower}@example.com"]

    gmail = place_order(admin, [(sku, 1, "5.00")], customer={"email": f"Bo.{lower}.x@gmail.com"})
    dotless = place_order(admin, [(sku, 1, "5.00")], customer={"email": f"bo{lower}x+news@googlemail.com"})
    assert customer_of(admin, gmail) == customer_of(admin, dotless) != person
    # A masked marketplace phone is no identity: it would make strangers one person.
    masked = place_order(admin, [(sku, 1, "5.00")], customer={"name": f"Masked {uid}", "phone": "138****5678"})
    assert profile(admin, customer_of(admin, masked))["identities"] == []


@requires_postgres
@pytest.mark.parametrize("phones", ["the same phone", "two phones"])
def test_orders_of_one_new_buyer_placed_at_once_make_one_customer(admin, uid, phones):
    sku = f"CU-RACE-{uid}"
    add_product(admin, sku)
    email = f"race.{uid.lower()}@example.com"
    numbers = [mobile(uid, "137")] if phones == "the same phone" else [mobile(uid, "137"), mobile(uid, "136")]
    requests = 12
    clients = [GraphQLClient(admin.base_url, admin.token) for _ in range(requests)]
    barrier = threading.Barrier(requests)

    def send(n: int) -> dict:
        buyer = {"name": f"Racer {uid}", "email": email, "phone": numbers[n % len(numbers)]}
        barrier.wait()
        return clients[n].mutate(
            "orderCreate", ORDER_CREATE, {"input": order_input([(sku, 1, "5.00")], customer=buyer)}
        )

    with ThreadPoolExecutor(requests) as pool:
        payloads = list(pool.map(send, range(requests)))
    assert all(payload["userErrors"] == [] for payload in payloads), payloads
    [person] = {customer_of(admin, payload["order"]) for payload in payloads}
    seen = profile(admin, person)
    assert seen["orderCount"] == requests
    # As if the orders had come one after the other: the first made the profile, the others
    # found it by the e-mail and added the phone it lacked.
    assert {(i["kind"], i["value"]) for i in seen["identities"]} == {("EMAIL", email)} | {
        ("PHONE", f"+86{number}") for number in numbers
    }
    assert admin(SEARCH, {"s": email})["customers"]["totalCount"] == 1


def test_an_identity_left_on_a_merged_or_erased_profile_finds_the_live_one_or_a_new_one(database_url, uid):
    from sqlalchemy import select, update

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Customer, CustomerIdentity, utcnow
    from oms_graphql.domain.customers import CustomerDetails, find_or_create_customer_id

    phone, email = mobile(uid, "135"), f"left.{uid.lower()}@example.com"

    async def scenario() -> dict[str, object]:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                first = await find_or_create_customer_id(session, CustomerDetails(phone=phone, country="CN"))
                completed = await find_or_create_customer_id(
                    session, CustomerDetails(name=f"Lin {uid}", phone=phone, email=email, country="CN")
                )
                second = await find_or_create_customer_id(session, CustomerDetails(name="Second", email="x" + email))
                # What a merge or an erasure leaves for an instant to a concurrent order: the phone
                # still on the duplicate, merged into the second profile, which is then erased.
                await session.execute(update(Customer).where(Customer.id == first).values(merged_into_id=second))
                via_merge = await find_or_create_customer_id(session, CustomerDetails(phone=phone, country="CN"))
                await session.execute(update(Customer).where(Customer.id == second).values(erased_at=utcnow()))
                after_erase = await find_or_create_customer_id(
                    session, CustomerDetails(name="Third", phone=phone, country="CN")
                )
                owners = dict(
                    (
                        await session.execute(
                            select(CustomerIdentity.value, CustomerIdentity.customer_id).where(
                                CustomerIdentity.value.in_([f"+86{phone}", email])
                            )
                        )
                    ).all()
                )
                rows = {
                    row.id: (row.name, row.phone, row.email)
                    for row in await session.scalars(select(Customer).where(Customer.id.in_([first, after_erase])))
                }
            return {
                "first": first,
                "completed": completed,
                "second": second,
                "via_merge": via_merge,
                "after_erase": after_erase,
                "owners": owners,
                "rows": rows,
            }
        finally:
            await database.dispose()

    seen = run_async(scenario())
    first = seen["first"]
    assert seen["completed"] == first  # the same phone: the profile gains the name and e-mail it lacked
    assert seen["rows"][first] == (f"Lin {uid}", f"+86{phone}", email)
    assert seen["owners"] == {f"+86{phone}": first, email: first}
    assert seen["via_merge"] == seen["second"]
    assert seen["after_erase"] not in (first, seen["second"])  # an erased person is never matched again
    assert seen["rows"][seen["after_erase"]] == ("Third", f"+86{phone}", None)


@pytest.mark.parametrize(
    ("written", "country", "stored"),
    [
        ("138 0013 8000", "CN", "+8613800138000"),
        ("+86 138-0013-8000", "US", "+8613800138000"),
        ("0086 13800138000", "CN", "+8613800138000"),
        ("(415) 555-0134", "US", "+14155550134"),
        ("1-415-555-0134", "US", "+14155550134"),
        ("138****5678", "CN", None),
        ("n/a", "CN", None),
        ("12345", None, "12345"),
    ],
)
def test_phones_are_written_in_e164_as_read_in_the_orders_country(written, country, stored):
    from oms_graphql.domain.customers import normalise_phone

    assert normalise_phone(written, country) == stored


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("Wang.Fang@Example.com", "wang.fang@example.com"),
        ("wang.fang+shop@example.com", "wang.fang@example.com"),
        ("W.a.n.g+x@GoogleMail.com", "wang@gmail.com"),
        ("+only@example.com", "+only@example.com"),
    ],
)
def test_e_mails_are_compared_as_the_mailbox_they_reach(written, stored):
    from oms_graphql.domain.customers import normalise_email

    assert normalise_email(written) == stored


# --- the profile -------------------------------------------------------------------------


def test_merge_moves_orders_and_identities_and_the_figures_add_up_net_of_refunds(admin, viewer, uid):
    lower = uid.lower()
    kept_phone, dup_phone = mobile(uid, "137"), mobile(uid, "136")
    shipped = shipped_order(
        admin, uid, "CM", [("A", 2, "30.00")], customer={"name": f"Zhao {uid}", "phone": kept_phone}
    )
    sku = shipped["skus"]["A"]
    person = customer_of(admin, shipped)
    # One unit back and refunded at what it was paid (30.00).
    back = approved(admin, shipped["id"], [{"lineNo": 1, "quantity": 1, "reason": "SIZE_FIT"}])
    received = admin.mutate(
        "returnReceive",
        RECEIVE,
        {"input": {"id": back["id"], "lines": [{"lineNo": 1, "quantity": 1, "condition": "RESELLABLE"}]}},
    )
    assert received["userErrors"] == [], received
    refunded = admin.mutate("returnRefund", REFUND, {"input": {"id": back["id"]}})
    assert refunded["userErrors"] == [] and refunded["refund"]["amount"]["amount"] == "30.00", refunded

    other = f"CU-MG-{uid}"
    add_product(admin, other)
    duplicate_order = place_order(
        admin,
        [(other, 3, "12.50")],
        customer={"name": f"Zhao Jr {uid}", "phone": dup_phone, "email": f"zhao.{lower}@example.com"},
        deliveryOption="EXPRESS",
    )
    cancelled = place_order(admin, [(other, 1, "99.00")], customer={"phone": dup_phone})
    assert admin.mutate("orderCancel", CANCEL, {"id": cancelled["id"]})["userErrors"] == []
    usd = place_order(
        admin,
        [(other, 1, "8.00")],
        currency="USD",
        customer={"phone": f"+86 {dup_phone}"},
        shippingAddress=us_address(),
    )
    duplicate = customer_of(admin, duplicate_order)
    assert duplicate != person and customer_of(admin, usd) == duplicate
    before = profile(admin, person)
    assert before["orderCount"] == 1 and before["lifetimeValue"] == [{"amount": "30.00", "currency": "CNY"}]

    assert "Not allowed" in viewer.raw(MERGE, {"id": person, "dup": duplicate})["errors"][0]["message"]
    merged = admin.mutate("customerMerge", MERGE, {"id": person, "dup": duplicate})
    assert merged["userErrors"] == [] and merged["customer"] == {"id": person, "orderCount": 4}

    after = profile(admin, person)
    # 60.00 − 30.00 refunded + 37.50; the cancelled 99.00 counts as an order but not as value.
    assert after["lifetimeValue"] == [{"amount": "67.50", "currency": "CNY"}, {"amount": "8.00", "currency": "USD"}]
    assert after["orders"]["totalCount"] == 4
    assert {(i["kind"], i["value"]) for i in after["identities"]} == {
        ("PHONE", f"+86{kept_phone}"),
        ("PHONE", f"+86{dup_phone}"),
        ("EMAIL", f"zhao.{lower}@example.com"),
    }
    assert after["email"] == f"zhao.{lower}@example.com"  # the survivor had none: the duplicate's fills it
    assert after["name"] == f"Zhao {uid}"
    assert after["firstOrderAt"] <= after["lastOrderAt"]
    prefs = after["preferences"]
    # Kept units: 3 of the other SKU (the cancelled one not counted) against 2 − 1 returned.
    assert prefs["topSkus"][:2] == [other, sku]
    assert prefs["preferredChannel"] == "manual" and prefs["preferredDeliveryOption"] == "EXPRESS"
    # The duplicate's old id finds the person; the list shows the person once.
    assert profile(admin, duplicate)["id"] == person
    assert admin("query($id: ID!) { node(id: $id) { id } }", {"id": duplicate})["node"]["id"] == person
    listed = admin(SEARCH, {"s": f"{uid}"})["customers"]
    assert [edge["node"]["id"] for edge in listed["edges"]] == [person]
    # The duplicate's phone now brings new orders to the person.
    later = place_order(admin, [(other, 1, "1.00")], customer={"phone": f"+86 {dup_phone}"})
    assert customer_of(admin, later) == person


def test_merge_refuses_itself_unknown_and_erased_profiles_and_writes_nothing(admin, uid):
    sku = f"CU-BAD-{uid}"
    add_product(admin, sku)
    person = customer_of(admin, place_order(admin, [(sku, 1, "2.00")], customer={"phone": mobile(uid, "135")}))
    itself = admin.mutate("customerMerge", MERGE, {"id": person, "dup": person})
    assert itself["customer"] is None
    assert [(e["field"], e["code"]) for e in itself["userErrors"]] == [(["input", "duplicateId"], "SAME_CUSTOMER")]
    assert "itself" in itself["userErrors"][0]["message"]

    from oms_graphql.schema.ids import to_global_id

    unknown = admin.mutate("customerMerge", MERGE, {"id": person, "dup": to_global_id("Customer", 10**12)})
    assert [(e["field"], e["code"]) for e in unknown["userErrors"]] == [(["input", "duplicateId"], "NOT_FOUND")]
    not_a_customer = admin.mutate("customerMerge", MERGE, {"id": "bm9wZQ==", "dup": person})
    assert [(e["field"], e["code"]) for e in not_a_customer["userErrors"]] == [(["input", "id"], "NOT_FOUND")]

    gone = customer_of(admin, place_order(admin, [(sku, 1, "2.00")], customer={"phone": mobile(uid, "134")}))
    assert admin.mutate("customerErase", ERASE, {"id": gone})["userErrors"] == []
    erased = admin.mutate("customerMerge", MERGE, {"id": person, "dup": gone})
    assert [(e["field"], e["code"]) for e in erased["userErrors"]] == [(["input", "duplicateId"], "CUSTOMER_ERASED")]
    assert profile(admin, person)["orderCount"] == 1

    nobody = to_global_id("Customer", 10**12)
    for name, mutation, variables in (
        ("customerUpdate", UPDATE, {"input": {"id": nobody, "name": "X"}}),
        ("customerExport", EXPORT, {"id": nobody}),
        ("customerErase", ERASE, {"id": nobody}),
        ("customerUpdate", UPDATE, {"input": {"id": "not-an-id", "name": "X"}}),
    ):
        errors = admin.mutate(name, mutation, variables)["userErrors"]
        assert [(e["field"], e["code"]) for e in errors] == [(["input", "id"], "NOT_FOUND")], name


def test_search_finds_a_customer_by_name_phone_written_any_way_or_e_mail(admin, viewer, uid):
    sku = f"CU-SR-{uid}"
    add_product(admin, sku)
    number = mobile(uid, "133")
    order = place_order(
        admin,
        [(sku, 1, "2.00")],
        customer={"name": f"Searchable {uid}", "phone": number, "email": f"s.{uid.lower()}@Example.com"},
    )
    person = customer_of(admin, order)
    for text in (
        f"searchable {uid.lower()}",
        f"{number[:3]} {number[3:7]} {number[7:]}",
        f"+86{number}",
        number[-6:],
        f"S.{uid}+promo@example.com",
        f"s.{uid.lower()}@example",
    ):
        found = viewer(SEARCH, {"s": text})["customers"]
        assert [edge["node"]["id"] for edge in found["edges"]] == [person], text
    assert viewer(SEARCH, {"s": f"nobody {uid}"})["customers"]["totalCount"] == 0


def test_update_changes_identities_and_refuses_one_owned_by_another_customer(admin, viewer, uid, database_url):
    sku = f"CU-UP-{uid}"
    add_product(admin, sku)
    old, new, taken = mobile(uid, "132"), mobile(uid, "131"), mobile(uid, "130")
    person = customer_of(admin, place_order(admin, [(sku, 1, "2.00")], customer={"name": "Old", "phone": old}))
    other = customer_of(admin, place_order(admin, [(sku, 1, "2.00")], customer={"name": "Other", "phone": taken}))

    clash = admin.mutate("customerUpdate", UPDATE, {"input": {"id": person, "phone": f"+86 {taken}", "name": "X"}})
    assert clash["customer"] is None
    [error] = clash["userErrors"]
    assert error["field"] == ["input", "phone"] and error["code"] == "DUPLICATE" and "customerMerge" in error["message"]
    assert profile(admin, person)["name"] == "Old"  # nothing written

    bad = admin.mutate("customerUpdate", UPDATE, {"input": {"id": person, "email": "not an address", "phone": "***"}})
    assert {(tuple(e["field"]), e["code"]) for e in bad["userErrors"]} == {
        (("input", "email"), "INVALID"),
        (("input", "phone"), "INVALID"),
    }
    too_many = admin.mutate("customerUpdate", UPDATE, {"input": {"id": person, "tags": [f"t{n}" for n in range(21)]}})
    assert [(e["field"], e["code"]) for e in too_many["userErrors"]] == [(["input", "tags"], "TOO_MANY")]

    done = admin.mutate(
        "customerUpdate",
        UPDATE,
        {
            "input": {
                "id": person,
                "name": f"New {uid}",
                "phone": new,
                "tags": ["vip", "vip", " wholesale "],
                "note": "n",
            }
        },
    )
    assert done["userErrors"] == [], done
    assert done["customer"]["phone"] == f"+86{new}" and done["customer"]["tags"] == ["vip", "wholesale"]
    assert done["customer"]["identities"] == [{"kind": "PHONE", "value": f"+86{new}"}]
    assert customer_of(admin, place_order(admin, [(sku, 1, "2.00")], customer={"phone": new})) == person
    # The old number is nobody's now: an order with it makes a new profile.
    assert customer_of(admin, place_order(admin, [(sku, 1, "2.00")], customer={"phone": old})) not in (person, other)

    by_viewer = viewer.raw(UPDATE, {"input": {"id": person, "name": "V"}})  # a viewer changes nothing
    assert [e["extensions"]["code"] for e in by_viewer["errors"]] == ["FORBIDDEN"]

    from oms_graphql.schema.ids import from_global_id

    shopper = GraphQLClient(
        admin.base_url, create_token(database_url, "CUSTOMER", f"shopper-{uid}", customer_id=from_global_id(person)[1])
    )
    own_update = UPDATE.replace(" tags note ", " ")  # the merchant's tags and note are not the customer's to read
    mine = shopper.mutate("customerUpdate", own_update, {"input": {"id": person, "name": f"Mine {uid}"}})
    assert mine["userErrors"] == [] and mine["customer"]["name"] == f"Mine {uid}"
    note = shopper.mutate("customerUpdate", own_update, {"input": {"id": person, "note": "let me in"}})
    assert [(e["field"], e["code"]) for e in note["userErrors"]] == [(["input", "note"], "FORBIDDEN")]
    theirs = shopper.mutate("customerUpdate", own_update, {"input": {"id": other, "name": "Hacked"}})
    assert [e["code"] for e in theirs["userErrors"]] == ["FORBIDDEN"]
    assert shopper("query($id: ID!) { customer(id: $id) { id } }", {"id": other})["customer"] is None
    seen = shopper.raw("query($id: ID!) { customer(id: $id) { name tags note } }", {"id": person})
    assert seen["data"]["customer"]["tags"] == [] and seen["data"]["customer"]["note"] is None
    assert [e["extensions"]["code"] for e in seen["errors"]] == ["FORBIDDEN"]  # the note
    assert profile(admin, person)["note"] == "n"
    assert profile(admin, other)["name"] == "Other"


# --- privacy -------------------------------------------------------------------------------


def test_export_holds_everything_and_erase_anonymises_but_keeps_orders_totals_and_ledger(
    admin, viewer, uid, database_url
):
    number = mobile(uid, "158")
    lower = uid.lower()
    order = shipped_order(
        admin,
        uid,
        "CE",
        [("A", 2, "20.00")],
        customer={"name": f"Erin {uid}", "phone": number, "email": f"erin.{lower}@example.com"},
        shippingAddress={
            "country": "CN",
            "city": "Shanghai",
            "line1": "8 Secret Lane",
            "line2": "Flat 3",
            "name": f"Erin {uid}",
            "phone": number,
        },
    )
    sku = order["skus"]["A"]
    person = customer_of(admin, order)
    back = approved(admin, order["id"], [{"lineNo": 1, "quantity": 1, "reason": "DEFECTIVE"}])
    assert (
        admin.mutate(
            "returnReceive",
            RECEIVE,
            {"input": {"id": back["id"], "lines": [{"lineNo": 1, "quantity": 1, "condition": "DAMAGED"}]}},
        )["userErrors"]
        == []
    )
    assert admin.mutate("returnRefund", REFUND, {"input": {"id": back["id"], "amount": "15.00"}})["userErrors"] == []
    admin.mutate("customerUpdate", UPDATE, {"input": {"id": person, "tags": ["vip"], "note": "likes red"}})

    operator = GraphQLClient(admin.base_url, create_token(database_url, "OPERATOR", f"op-{uid}"))
    for client in (viewer, operator):
        assert "Not allowed" in client.raw(EXPORT, {"id": person})["errors"][0]["message"]
        assert "Not allowed" in client.raw(ERASE, {"id": person})["errors"][0]["message"]

    exported = admin.mutate("customerExport", EXPORT, {"id": person})
    assert exported["userErrors"] == []
    data = exported["data"]
    assert data["customer"]["name"] == f"Erin {uid}" and data["customer"]["phone"] == f"+86{number}"
    assert data["customer"]["tags"] == ["vip"] and data["customer"]["note"] == "likes red"
    assert {(i["kind"], i["value"]) for i in data["identities"]} == {
        ("phone", f"+86{number}"),
        ("email", f"erin.{lower}@example.com"),
    }
    assert any(a["line1"] == "8 Secret Lane" for a in data["addresses"])
    [exported_order] = data["orders"]
    assert exported_order["number"] == order["number"] and exported_order["channel"] == "manual"
    assert Decimal(exported_order["total"]) == Decimal("40.00")
    assert Decimal(exported_order["refundedTotal"]) == Decimal("15.00")
    assert exported_order["shippingAddress"]["line2"] == "Flat 3"
    assert [(line["sku"], line["quantity"], line["returnedQuantity"]) for line in exported_order["lines"]] == [
        (sku, 2, 1)
    ]
    [exported_return] = exported_order["returns"]
    assert exported_return["lines"] == [
        {
            "lineNo": 1,
            "quantity": 1,
            "reason": "DEFECTIVE",
            "resellableQuantity": 0,
            "damagedQuantity": 1,
            "missingQuantity": 0,
        }
    ]
    assert [(Decimal(r["amount"]), r["currency"]) for r in exported_order["refunds"]] == [(Decimal("15.00"), "CNY")]

    ledger_before = admin(MOVEMENTS, {"sku": sku})["stockMovements"]
    before = admin(ORDER_AFTER_ERASE, {"id": order["id"]})["order"]
    erased = admin.mutate("customerErase", ERASE, {"id": person})
    assert erased["userErrors"] == [], erased
    gone = erased["customer"]
    assert (gone["name"], gone["phone"], gone["email"], gone["identities"]) == (None, None, None, [])
    assert gone["erasedAt"]

    after = admin(ORDER_AFTER_ERASE, {"id": order["id"]})["order"]
    assert after["shippingAddress"] == {
        "name": None,
        "phone": None,
        "email": None,
        "line1": "",
        "line2": None,
        "city": "Shanghai",
        "country": "CN",
        "latitude": None,
        "longitude": None,
    }
    for kept in ("status", "total", "refundTotal", "lines"):
        assert after[kept] == before[kept], kept
    assert after["customer"]["id"] == person and after["customer"]["name"] is None
    assert admin(MOVEMENTS, {"sku": sku})["stockMovements"] == ledger_before
    assert ledger_differences(database_url, {sku}) == []
    erased_profile = profile(admin, person)
    assert (erased_profile["tags"], erased_profile["note"], erased_profile["orderCount"]) == ([], None, 1)
    assert erased_profile["lifetimeValue"] == [{"amount": "25.00", "currency": "CNY"}]

    again = admin.mutate("customerErase", ERASE, {"id": person})
    assert [(e["field"], e["code"]) for e in again["userErrors"]] == [(["input", "id"], "CUSTOMER_ERASED")]
    refill = admin.mutate("customerUpdate", UPDATE, {"input": {"id": person, "name": "Back"}})
    assert [e["code"] for e in refill["userErrors"]] == ["CUSTOMER_ERASED"]
    assert admin(SEARCH, {"s": number})["customers"]["totalCount"] == 0
    assert f"Erin {uid}" not in str(admin.mutate("customerExport", EXPORT, {"id": person})["data"])

    # The old phone is never matched again: a new order with it makes a new profile.
    newcomer = place_order(admin, [(sku, 1, "1.00")], customer={"name": "New", "phone": number})
    assert customer_of(admin, newcomer) != person


def test_a_page_of_customers_with_figures_costs_a_constant_number_of_queries(admin, uid):
    sku = f"CU-NP-{uid}"
    add_product(admin, sku)
    for n in range(30):
        place_order(admin, [(sku, 1 + n % 3, "4.00")], customer={"name": f"Page {uid} {n}"})
    costs = {}
    for size in (5, 30):
        with counting_queries() as statements:
            edges = admin(PAGE, {"s": f"Page {uid}", "n": size})["customers"]["edges"]
        assert len(edges) == size and all(edge["node"]["orderCount"] == 1 for edge in edges)
        costs[size] = len(statements)
    assert costs[30] == costs[5], costs
    print("queries for a page of customers with every figure:", costs)


# --- migration 0014 ------------------------------------------------------------------------


def test_migration_0014_rewrites_stored_phones_and_e_mails_in_the_matching_forms(scratch_database_url):
    from sqlalchemy import text

    from oms_graphql.db.engine import Database
    from oms_graphql.db.migrate import upgrade

    upgrade(scratch_database_url, "0013")
    now = datetime(2026, 11, 30, 10, tzinfo=UTC)

    async def arrange() -> None:
        database = Database(scratch_database_url)
        try:
            async with database.session() as session, session.begin():
                for statement in (
                    "INSERT INTO customers (id, name, phone, email, created_at) VALUES "
                    "(1, 'Wang', '13800138000', 'Wang.Fang+shop@Example.com', :now), "
                    "(2, 'Wang again', '+8613800138000', NULL, :now), (3, 'Masked', '*******5678', NULL, :now)",
                    "INSERT INTO customer_identities (customer_id, kind, value) VALUES "
                    "(1, 'phone', '13800138000'), (1, 'email', 'wang.fang+shop@example.com'), "
                    "(2, 'phone', '+8613800138000'), (2, 'email', 'w.a.n.g@googlemail.com'), "
                    "(3, 'phone', '*******5678'), (3, 'buyer:taobao', 'AAxyz')",
                    "INSERT INTO addresses (id, customer_id, country, line1) VALUES (1, 1, 'CN', '1 Road')",
                    "INSERT INTO orders (number, channel_id, status, customer_id, shipping_address_id, currency, "
                    "subtotal, discount, shipping_fee, tax, total, placed_at, created_at, updated_at) "
                    "SELECT 'M-1', id, 'PENDING', 1, 1, 'CNY', 1, 0, 0, 0, 1, :now, :now, :now FROM channels "
                    "WHERE code = 'manual'",
                ):
                    await session.execute(text(statement), {"now": now} if ":now" in statement else {})
        finally:
            await database.dispose()

    async def identities() -> tuple[list, list]:
        database = Database(scratch_database_url)
        try:
            async with database.session() as session:
                found = await session.execute(
                    text("SELECT customer_id, kind, value FROM customer_identities ORDER BY customer_id, kind")
                )
                phones = await session.execute(text("SELECT id, phone FROM customers ORDER BY id"))
                return [tuple(row) for row in found], [tuple(row) for row in phones]
        finally:
            await database.dispose()

    run_async(arrange())
    upgrade(scratch_database_url)
    found, phones = run_async(identities())
    # Customer 1's national number is read in China (its order's country): it is the number
    # customer 2 holds in that form already, so it stays customer 2's and the profiles stay
    # two (whether they are one person is for customerMerge). A masked number is dropped.
    assert found == [
        (1, "email", "wang.fang@example.com"),
        (2, "email", "wang@gmail.com"),
        (2, "phone", "+8613800138000"),
        (3, "buyer:taobao", "AAxyz"),
    ]
    assert phones == [(1, "+8613800138000"), (2, "+8613800138000"), (3, None)]
