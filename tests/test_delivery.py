"""Carriers through GraphQL: configure accounts of any installed carrier kind, see their services."""

from __future__ import annotations

CREATE = """mutation($input: CarrierCreateInput!) { carrierCreate(input: $input) {
  carrier { id code name kind active settings secretSettingsSet
            services { code name kind handling maxWeightGrams transitDays areas } }
  userErrors { field message code } } }"""
UPDATE = """mutation($input: CarrierUpdateInput!) { carrierUpdate(input: $input) {
  carrier { code name active settings services { code maxWeightGrams } } userErrors { field message code } } }"""
CARRIERS = "{ carriers { code kind } carrierKinds { kind name createsWaybills settings { key required default } } }"


def create(client, code: str, kind: str, settings: dict, name: str = "Carrier") -> dict:
    return client.mutate(
        "carrierCreate", CREATE, {"input": {"code": code, "name": name, "kind": kind, "settings": settings}}
    )


def test_store_pickup_and_own_fleet_are_carriers_with_their_services(admin, uid):
    pickup = create(admin, f"pickup-{uid}", "pickup", {})
    fleet = create(admin, f"fleet-{uid}", "fleet", {"maxDistanceKm": 25})

    assert pickup["userErrors"] == [] and fleet["userErrors"] == []
    assert pickup["carrier"]["services"] == [
        {
            "code": "PICKUP",
            "name": "Store pickup",
            "kind": "PICKUP",
            "handling": ["FRAGILE", "COLD_CHAIN", "OVERSIZE", "HAZMAT"],
            "maxWeightGrams": None,
            "transitDays": 0,
            "areas": [],
        }
    ]
    assert fleet["carrier"]["settings"] == {"maxDistanceKm": 25, "maxWeightGrams": 30000}  # defaults filled in
    assert [(s["code"], s["kind"]) for s in fleet["carrier"]["services"]] == [("SAME_DAY", "SAME_DAY")]
    data = admin(CARRIERS)
    assert {f"pickup-{uid}", f"fleet-{uid}"} <= {carrier["code"] for carrier in data["carriers"]}
    assert {"pickup", "fleet"} <= {kind["kind"] for kind in data["carrierKinds"]}


def test_bad_carrier_input_is_a_user_error_naming_the_field(admin, uid):
    unknown = create(admin, f"x-{uid}", "no-such-kind", {})
    bad_setting = create(admin, f"fleet-bad-{uid}", "fleet", {"maxDistanceKm": -3})
    not_a_number = create(admin, f"fleet-nan-{uid}", "fleet", {"maxDistanceKm": "far"})
    unknown_key = create(admin, f"fleet-key-{uid}", "fleet", {"colour": "red"})
    bad_code = create(admin, "has spaces", "pickup", {})
    create(admin, f"pickup-dup-{uid}", "pickup", {})
    duplicate = create(admin, f"pickup-dup-{uid}", "pickup", {})

    assert unknown["carrier"] is None and [e["field"] for e in unknown["userErrors"]] == [["input", "kind"]]
    assert [e["field"] for e in bad_setting["userErrors"]] == [["input", "settings", "maxDistanceKm"]]
    assert [e["field"] for e in not_a_number["userErrors"]] == [["input", "settings", "maxDistanceKm"]]
    assert [(e["field"], e["code"]) for e in unknown_key["userErrors"]] == [
        (["input", "settings", "colour"], "UNKNOWN_SETTING")
    ]
    assert [e["field"] for e in bad_code["userErrors"]] == [["input", "code"]]
    assert [e["code"] for e in duplicate["userErrors"]] == ["DUPLICATE"]


def test_a_carrier_is_changed_and_switched_off(admin, uid):
    create(admin, f"fleet-upd-{uid}", "fleet", {})

    changed = admin.mutate(
        "carrierUpdate",
        UPDATE,
        {
            "input": {
                "carrierCode": f"fleet-upd-{uid}",
                "name": "Vans",
                "active": False,
                "settings": {"maxWeightGrams": 8000},
            }
        },
    )
    refused = admin.mutate(
        "carrierUpdate", UPDATE, {"input": {"carrierCode": f"fleet-upd-{uid}", "settings": {"maxWeightGrams": 0}}}
    )
    missing = admin.mutate("carrierUpdate", UPDATE, {"input": {"carrierCode": "nope", "name": "x"}})

    assert changed["userErrors"] == []
    assert changed["carrier"]["name"] == "Vans" and changed["carrier"]["active"] is False
    assert changed["carrier"]["services"] == [{"code": "SAME_DAY", "maxWeightGrams": 8000}]
    assert [e["field"] for e in refused["userErrors"]] == [["input", "settings", "maxWeightGrams"]]
    assert [e["field"] for e in missing["userErrors"]] == [["input", "carrierCode"]]


def test_only_admins_configure_carriers(viewer, uid):
    body = viewer.raw(CREATE, {"input": {"code": f"v-{uid}", "name": "v", "kind": "pickup", "settings": {}}})
    assert body["data"] is None and body["errors"][0]["message"].startswith("Not allowed")


# --- delivery options ----------------------------------------------------------

OPTIONS = """query($id: ID!) { deliveryOptions(orderId: $id) {
  carrierCode serviceCode kind price { amount currency } estimatedDeliveryAt eligible meetsPromise chosen reason } }"""
PRODUCT = """mutation($input: ProductCreateInput!) {
  productCreate(input: $input) { product { sku } userErrors { message } } }"""


def product(admin, sku: str, grams: int, handling: list[str] | None = None) -> str:
    payload = admin.mutate(
        "productCreate",
        PRODUCT,
        {
            "input": {
                "sku": sku,
                "name": sku,
                "price": {"amount": "20.00", "currency": "CNY"},
                "weightGrams": grams,
                "handling": handling or [],
            }
        },
    )
    assert payload["userErrors"] == []
    return sku


def carriers_for(admin, uid: str) -> dict[str, str]:
    """An SF account, the own fleet and store pickup; returns kind → carrier code."""
    from tests.fakes.sf import SfState

    codes = {"sf": f"sf-opt-{uid}".lower(), "fleet": f"fleet-opt-{uid}".lower(), "pickup": f"pickup-opt-{uid}".lower()}
    sf = {"apiUrl": "http://127.0.0.1:9/std/service", **SfState().settings()}
    for kind, settings in (("sf", sf), ("fleet", {"maxDistanceKm": 30}), ("pickup", {})):
        assert create(admin, codes[kind], kind, settings)["userErrors"] == []
    return codes


def options_of(admin, order_id: str, codes: dict[str, str]) -> dict[tuple[str, str], dict]:
    """This test's carriers' options by (carrier kind, service code), and the chosen one as ("chosen", "")."""
    options = admin(OPTIONS, {"id": order_id})["deliveryOptions"]
    mine = {code: kind for kind, code in codes.items()}
    found = {(mine[o["carrierCode"]], o["serviceCode"]): o for o in options if o["carrierCode"] in mine}
    chosen = [option for option in options if option["chosen"]]
    assert len(chosen) <= 1
    if chosen:
        found[("chosen", "")] = chosen[0]
    return found


def allocated(admin, uid: str, sku: str, units: int, **extra) -> str:
    from tests.support import add_location, place_order, receive, wait_for_status

    where = f"WH-{sku}"
    add_location(admin, where, autoDispatch=False)  # in Shanghai, like the customer; shipped by hand
    receive(admin, sku, where, units)
    # Written as the channels write it; the test's stores elsewhere say "Shanghai", so none picks up here.
    address = {
        "country": "CN",
        "region": "上海",
        "city": "上海市",
        "line1": "88 Century Ave",
        "phone": "+86 13800000000",
    }
    order = place_order(admin, [(sku, units, "20.00")], paid=True, shippingAddress=address, **extra)
    wait_for_status(admin, order["id"], "ALLOCATED")
    return order["id"]


def test_every_service_is_listed_with_why_and_the_cheapest_on_time_one_is_chosen(admin, uid):
    codes = carriers_for(admin, uid)
    order_id = allocated(admin, uid, product(admin, f"OPT-A-{uid}", 800), 1)

    options = options_of(admin, order_id, codes)

    fleet, express, pickup = options[("fleet", "SAME_DAY")], options[("sf", "express")], options[("pickup", "PICKUP")]
    assert fleet["eligible"] and express["eligible"] and express["kind"] == "EXPRESS"
    assert fleet["price"] == {"amount": "25.00", "currency": "CNY"}  # the rate table: first kilogram
    assert not pickup["eligible"] and "no store picks up" in pickup["reason"]
    chosen = options[("chosen", "")]
    assert chosen["eligible"] and chosen["meetsPromise"] and chosen["reason"].startswith("Chosen:")
    on_time = [
        o
        for o in admin(OPTIONS, {"id": order_id})["deliveryOptions"]
        if o["eligible"] and o["meetsPromise"] and o["kind"] != "PICKUP"
    ]
    assert float(chosen["price"]["amount"]) == min(float(o["price"]["amount"]) for o in on_time)


def test_cold_chain_weight_and_the_customers_choice_rule_options_out(admin, uid):
    codes = carriers_for(admin, uid)
    cold = allocated(admin, uid, product(admin, f"OPT-C-{uid}", 500, ["COLD_CHAIN"]), 1)
    # Limits are per parcel: 32 kg in one unit fits no parcel of the fleet's 30 kg (two of 16 kg would go in two).
    heavy = allocated(admin, uid, product(admin, f"OPT-H-{uid}", 32_000), 1)
    express = allocated(admin, uid, product(admin, f"OPT-E-{uid}", 500), 1, deliveryOption="EXPRESS")

    cold_options = options_of(admin, cold, codes)
    heavy_options = options_of(admin, heavy, codes)
    express_options = options_of(admin, express, codes)

    assert not cold_options[("sf", "express")]["eligible"]
    assert "cannot carry COLD_CHAIN" in cold_options[("sf", "express")]["reason"]
    assert cold_options[("fleet", "SAME_DAY")]["eligible"]  # the own vans are refrigerated
    assert not heavy_options[("fleet", "SAME_DAY")]["eligible"]
    assert "one unit weighs 32 kg, over its 30 kg parcel limit" in heavy_options[("fleet", "SAME_DAY")]["reason"]
    assert express_options[("chosen", "")]["kind"] == "EXPRESS"
    assert "asked for EXPRESS" in express_options[("fleet", "SAME_DAY")]["reason"]


def test_delivery_options_of_an_unknown_order_is_an_error(admin):
    body = admin.raw(OPTIONS, {"id": "T3JkZXI6OTk5OTk5OTk="})
    assert body["errors"] and body["data"] is None
