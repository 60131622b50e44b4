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
