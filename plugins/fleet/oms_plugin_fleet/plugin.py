"""Hook implementations of the ``fleet`` carrier kind: the merchant's own vehicles, same day.

No outside API: the "waybill" is the OMS's own delivery reference; the day's
routes come from the OMS's route planner. The service takes addresses within
``maxDistanceKm`` of the shipping location (the OMS checks the distance).
"""

from __future__ import annotations

from oms_graphql.plugins.carrier_contract import (
    CarrierConfig,
    CarrierKind,
    CarrierService,
    DeliveryKind,
    Handling,
    ShipmentRequest,
    Waybill,
)
from oms_graphql.plugins.contract import SettingField
from oms_graphql.plugins.hookspecs import hookimpl

KIND = "fleet"
DEFAULT_MAX_DISTANCE_KM = 30
DEFAULT_MAX_WEIGHT_GRAMS = 30_000


@hookimpl
def oms_carrier_kinds() -> list[CarrierKind]:
    return [
        CarrierKind(
            kind=KIND,
            name="Own fleet (same day)",
            creates_waybills=False,
            settings=(
                SettingField(
                    "maxDistanceKm",
                    "Farthest delivery from the shipping location, in km",
                    kind="int",
                    required=False,
                    default=DEFAULT_MAX_DISTANCE_KM,
                ),
                SettingField(
                    "maxWeightGrams",
                    "Heaviest parcel a vehicle takes, in grams",
                    kind="int",
                    required=False,
                    default=DEFAULT_MAX_WEIGHT_GRAMS,
                ),
            ),
        )
    ]


@hookimpl
def oms_carrier_check_settings(kind: str, settings: dict) -> list[tuple[str, str]] | None:
    if kind != KIND:
        return None
    return [
        (key, "Give a positive whole number")
        for key in ("maxDistanceKm", "maxWeightGrams")
        if settings.get(key) is not None and settings[key] <= 0
    ]


@hookimpl
def oms_carrier_services(carrier: CarrierConfig) -> list[CarrierService] | None:
    if carrier.kind != KIND:
        return None
    return [
        CarrierService(
            code="SAME_DAY",
            name="Same-day delivery by our own vehicles",
            kind=DeliveryKind.SAME_DAY,
            handling=(Handling.FRAGILE, Handling.COLD_CHAIN, Handling.OVERSIZE),
            max_weight_grams=int(carrier.settings.get("maxWeightGrams") or DEFAULT_MAX_WEIGHT_GRAMS),
            transit_days=0,
        )
    ]


@hookimpl
def oms_carrier_create_waybill(carrier: CarrierConfig, request: ShipmentRequest) -> Waybill | None:
    if carrier.kind != KIND:
        return None
    return Waybill(tracking_number=f"FL-{request.reference}")


@hookimpl
def oms_carrier_cancel(carrier: CarrierConfig, waybill: Waybill) -> bool | None:
    if carrier.kind != KIND:
        return None
    # Our own vehicles: nothing to tell anyone; the next route plan leaves the stop out.
    return True
